"""At-least-once e-mail: the row is marked sent as soon as the mail server took the message,
before the SMTP session ends; a second sending carries the same Message-ID."""

import pytest
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend

from mica.notifications.email import email_for
from mica.notifications.models import Kind, Notification, notify
from mica.notifications.tasks import send_notification

pytestmark = pytest.mark.django_db


class StatusAtCloseBackend(EmailBackend):
    """The test outbox, noting each row's status when the worker ends the SMTP session (QUIT)."""

    status_at_close = []

    def close(self):
        self.status_at_close.extend(Notification.objects.order_by("pk").values_list("status", flat=True))


class RefusingCloseBackend(StatusAtCloseBackend):
    def close(self):
        super().close()
        raise ConnectionResetError("dropped before QUIT's answer")


@pytest.fixture
def recorded(settings):
    settings.EMAIL_BACKEND = f"{__name__}.StatusAtCloseBackend"
    StatusAtCloseBackend.status_at_close = []
    return StatusAtCloseBackend.status_at_close


def test_the_row_is_marked_sent_before_the_session_ends(recorded, participant):
    [row] = notify([participant], Kind.ANNOUNCEMENT, "Deadline", "moved")
    send_notification(row.pk)
    assert len(mail.outbox) == 1
    assert recorded == [Notification.Status.SENT]


def test_a_connection_dropped_after_the_message_was_taken_leaves_it_sent(settings, recorded, participant):
    settings.EMAIL_BACKEND = f"{__name__}.RefusingCloseBackend"
    [row] = notify([participant], Kind.ANNOUNCEMENT, "Deadline", "moved")
    send_notification(row.pk)
    row.refresh_from_db()
    assert row.status == Notification.Status.SENT and len(mail.outbox) == 1


def test_a_notification_sent_twice_has_one_message_id(settings, participant, outsider):
    settings.MICA_SITE_URL = "https://mica.example.org"
    mine, theirs = notify([participant, outsider], Kind.ANNOUNCEMENT, "Deadline", "moved")
    first, again = email_for(mine).message(), email_for(mine).message()
    assert first["Message-ID"] == again["Message-ID"] == f"<notification-{mine.pk}@mica.example.org>"
    assert email_for(theirs).message()["Message-ID"] != first["Message-ID"]
