"""E-mail verification at sign-up: the account stays inactive until its owner follows the link
sent to the address they gave. The link is single-use (its token hashes `is_active` and the last
log-in, which the click changes) and expires with PASSWORD_RESET_TIMEOUT. An account that has
logged in once is never activated by a link: staff deactivate accounts by the same flag."""

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.utils import timezone
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from mica.notifications.models import Kind, notify


class EmailVerificationTokenGenerator(PasswordResetTokenGenerator):
    key_salt = "mica.accounts.verification.EmailVerificationTokenGenerator"

    def _make_hash_value(self, user, timestamp):
        return f"{user.pk}{user.email}{user.is_active}{user.last_login}{timestamp}"

    def check_token(self, user, token):
        return user is not None and user.last_login is None and super().check_token(user, token)


verification_tokens = EmailVerificationTokenGenerator()


# Asking again within this many seconds sends nothing: the form cannot flood an inbox.
RESEND_PAUSE_SECONDS = 600


def send_verification(user):
    """An outbox row with the link; a worker e-mails it after the commit."""
    path = reverse("accounts:verify", args=[urlsafe_base64_encode(force_bytes(user.pk)),
                                            verification_tokens.make_token(user)])
    notify([user], Kind.VERIFY_EMAIL, "Confirm your e-mail address",
           f"Welcome to Mica, {user.username}. Follow this link to confirm your address and log in:", url=path)


def resend_verification(email):
    """Sends the link again to an account that never logged in, at most once per pause. Says
    nothing about whether such an account exists (the page answers the same either way)."""
    since = timezone.now() - timedelta(seconds=RESEND_PAUSE_SECONDS)
    for user in get_user_model().objects.filter(email__iexact=email, is_active=False, last_login__isnull=True):
        if not user.notifications.filter(kind=Kind.VERIFY_EMAIL, created_at__gte=since).exists():
            send_verification(user)
