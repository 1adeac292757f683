from rest_framework.authentication import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from .tokens import token_has_expired


class ExpiringTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, refusing tokens older than MICA_TOKEN_TTL seconds."""

    def authenticate_credentials(self, key):
        user, token = super().authenticate_credentials(key)
        if token_has_expired(token):
            raise AuthenticationFailed("This token has expired: ask POST /api/v1/auth/token/ for a new one.")
        return user, token
