from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.exceptions import Throttled, ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from .throttling import FailedLoginThrottle
from .tokens import issue_token, revoke_tokens, token_expires_at


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()
    expires_at = serializers.DateTimeField()


class AuthTokenView(APIView):
    """Your API token: ask for it with your username and password, revoke it with DELETE.

    A token expires MICA_TOKEN_TTL seconds after it was issued; asking again then gives a new
    one. After too many failed attempts from an address or for a username, requests are
    answered 429, even with the right password, until the cool-off ends.
    """

    parser_classes = [FormParser, MultiPartParser, JSONParser]
    throttle_classes = [FailedLoginThrottle]

    def get_permissions(self):
        if self.request.method == "DELETE":
            return [permissions.IsAuthenticated()]
        return [permissions.AllowAny()]

    def get_throttles(self):
        return super().get_throttles() if self.request.method == "POST" else []

    @extend_schema(
        request={"application/x-www-form-urlencoded": AuthTokenSerializer,
                 "multipart/form-data": AuthTokenSerializer, "application/json": AuthTokenSerializer},
        responses={200: TokenSerializer},
    )
    def post(self, request):
        credentials = AuthTokenSerializer(data=request.data, context={"request": request})
        if not credentials.is_valid():
            FailedLoginThrottle().record_failure(request)
            if getattr(request, "axes_locked_out", False):
                raise Throttled(detail="Too many failed log-ins for this account or address: try again later.")
            raise ValidationError(credentials.errors)
        token = issue_token(credentials.validated_data["user"])
        return Response(TokenSerializer({"token": token.key, "expires_at": token_expires_at(token)}).data)

    @extend_schema(request=None, responses={204: OpenApiResponse(description="The token is revoked.")})
    def delete(self, request):
        revoke_tokens(request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
