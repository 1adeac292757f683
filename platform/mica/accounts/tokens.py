"""API tokens that expire after MICA_TOKEN_TTL seconds and can be revoked by their owner."""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token


def token_expires_at(token):
    return token.created + timedelta(seconds=settings.MICA_TOKEN_TTL)


def token_has_expired(token):
    return timezone.now() >= token_expires_at(token)


@transaction.atomic
def issue_token(user):
    """The user's current token, replaced by a new one when it has expired."""
    token, created = Token.objects.select_for_update().get_or_create(user=user)
    if not created and token_has_expired(token):
        token.delete()
        token = Token.objects.create(user=user)
    return token


def revoke_tokens(user):
    """Deletes the user's token: requests made with it are refused from now on."""
    Token.objects.filter(user=user).delete()
