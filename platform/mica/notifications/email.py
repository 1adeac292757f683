"""A notification as an e-mail: its text, a link to the site, and a one-click unsubscribe
link (RFC 8058) for the kinds a person can turn off."""

from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMessage

from .models import ACCOUNT_KINDS, unsubscribe_url


def absolute(path):
    return f"{settings.MICA_SITE_URL.rstrip('/')}{path}"


def email_for(notification):
    lines = [notification.body]
    if notification.url:
        lines += ["", absolute(notification.url)]
    # One Message-ID per notification: should it be sent twice (a worker killed between the
    # server's "250" and marking the row sent), mail systems that drop duplicates by Message-ID
    # show it once.
    domain = urlsplit(settings.MICA_SITE_URL).hostname or "mica"
    headers = {"Message-ID": f"<notification-{notification.pk}@{domain}>"}
    if notification.kind not in ACCOUNT_KINDS:
        link = absolute(unsubscribe_url(notification))
        lines += ["", "--", f"Stop these e-mails ({notification.get_kind_display().lower()}): {link}",
                  f"All your e-mail settings: {absolute('/notifications/settings/')}"]
        headers |= {"List-Unsubscribe": f"<{link}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
    return EmailMessage(subject=f"[Mica] {notification.subject}", body="\n".join(lines),
                        to=[notification.user.email], headers=headers)
