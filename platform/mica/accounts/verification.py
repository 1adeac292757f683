"""E-mail verification at sign-up: the account stays inactive until its owner follows the link
sent to the address they gave. The link is single-use (its token hashes `is_active`, which the
click changes) and expires with PASSWORD_RESET_TIMEOUT."""

from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from mica.notifications.models import Kind, notify


class EmailVerificationTokenGenerator(PasswordResetTokenGenerator):
    key_salt = "mica.accounts.verification.EmailVerificationTokenGenerator"

    def _make_hash_value(self, user, timestamp):
        return f"{user.pk}{user.email}{user.is_active}{timestamp}"


verification_tokens = EmailVerificationTokenGenerator()


def send_verification(user):
    """An outbox row with the link; a worker e-mails it after the commit."""
    path = reverse("accounts:verify", args=[urlsafe_base64_encode(force_bytes(user.pk)),
                                            verification_tokens.make_token(user)])
    notify([user], Kind.VERIFY_EMAIL, "Confirm your e-mail address",
           f"Welcome to Mica, {user.username}. Follow this link to confirm your address and log in:", url=path)
