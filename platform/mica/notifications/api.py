"""A user's own notifications and e-mail preferences over the API (the same model calls as the pages)."""

from django.urls import path
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import generics, permissions, serializers
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from .models import OPTIONAL_KINDS, EmailOptOut, Notification


class JSONBooleanField(serializers.BooleanField):
    """true or false, as the schema says (DRF's BooleanField also takes 0, 1, "yes", "off"...)."""

    def to_internal_value(self, data):
        if isinstance(data, bool):
            return data
        self.fail("invalid")


class NotificationSerializer(serializers.ModelSerializer):
    challenge = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    web_url = serializers.SerializerMethodField(help_text="The page it is about, if any.")

    class Meta:
        model = Notification
        fields = ["id", "kind", "subject", "body", "challenge", "created_at", "read_at", "web_url"]

    def get_web_url(self, notification) -> str:
        return self.context["request"].build_absolute_uri(notification.url) if notification.url else ""


class MarkReadSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), required=False,
                                max_length=1000, help_text="The notifications to mark read; all of them when left out.")


class MarkedSerializer(serializers.Serializer):
    marked = serializers.IntegerField(help_text="How many were unread and are now read.")


class PreferenceSerializer(serializers.Serializer):
    kind = serializers.CharField()
    label = serializers.CharField()
    on = serializers.BooleanField(help_text="Whether this kind is also e-mailed.")


class PreferencesSerializer(serializers.Serializer):
    email = PreferenceSerializer(many=True, read_only=True, help_text="Account mail (address confirmation, "
                                                                      "password reset) is always sent: not listed.")


@extend_schema_field({"type": "object", "additionalProperties": False,
                      "properties": {kind.value: {"type": "boolean"} for kind in OPTIONAL_KINDS}})
class KindSwitches(serializers.DictField):
    """{kind: on}: the kinds of notification whose e-mail can be turned off, and nothing else."""

    child = JSONBooleanField()


class PreferencesChangeSerializer(serializers.Serializer):
    email = KindSwitches(required=False, default=dict,
                         help_text="{kind: on} for the kinds to change; the others keep their setting.")

    def validate_email(self, wanted):
        unknown = sorted(set(wanted) - set(OPTIONAL_KINDS))
        if unknown:
            raise serializers.ValidationError(
                f"Not a kind whose e-mail can be turned off: {', '.join(unknown)[:200]}. The kinds are "
                f"{', '.join(OPTIONAL_KINDS)}.")
        return wanted


class NotificationListView(generics.ListAPIView):
    """Your notifications, newest first."""

    serializer_class = NotificationSerializer
    permission_classes = [permissions.IsAuthenticated]

    def get_queryset(self):
        return Notification.objects.filter(user=self.request.user).select_related("challenge")


class MarkReadView(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(request=MarkReadSerializer, responses={200: MarkedSerializer})
    def post(self, request):
        """Marks your notifications read: those named, or all of them."""
        body = MarkReadSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        return Response({"marked": Notification.mark_read(request.user, body.validated_data.get("ids"))})


class PreferencesView(APIView):
    """Which kinds of notification are also e-mailed to you (every one shows on the site)."""

    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [JSONParser]

    @extend_schema(responses={200: PreferencesSerializer})
    def get(self, request):
        return Response({"email": EmailOptOut.preferences(request.user)})

    @extend_schema(request=PreferencesChangeSerializer, responses={200: PreferencesSerializer})
    def patch(self, request):
        body = PreferencesChangeSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        EmailOptOut.change_for(request.user, body.validated_data["email"])
        return Response({"email": EmailOptOut.preferences(request.user)})


urlpatterns = [
    path("notifications/", NotificationListView.as_view(), name="api-notifications"),
    path("notifications/read/", MarkReadView.as_view(), name="api-notifications-read"),
    path("notifications/preferences/", PreferencesView.as_view(), name="api-notification-preferences"),
]
