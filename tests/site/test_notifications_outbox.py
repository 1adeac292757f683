"""The outbox on a real SMTP server (aiosmtpd, started and stopped here) and a real Celery worker:
notifications written while the mail server is down are each sent exactly once when it is back."""

import socket
from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from django.db import transaction
from django.utils import timezone

from mica.notifications.models import Kind, Notification, notify
from mica.notifications.tasks import send_notification

from .conftest import make_user
from .workers import Worker, flush_broker, wait_for


class Inbox:
    """An aiosmtpd handler that keeps what it received."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, envelope.content.decode("utf8", "replace")))
        return "250 Message accepted for delivery"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_port():
    return free_port()


def start_smtp(port):
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, inbox


def use_smtp(settings, port):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", port, 3
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False


@pytest.mark.django_db
def test_a_notification_waits_while_the_mail_server_is_down_and_is_sent_once_it_is_up(settings, smtp_port):
    use_smtp(settings, smtp_port)
    users = [make_user(name) for name in ("ada", "ben", "cy")]
    rows = notify(users, Kind.ANNOUNCEMENT, "Deadline moved", "The final phase ends a week later.")

    for row in rows:  # nothing listens on the port: the server is down
        send_notification(row.pk)
    for row in rows:
        row.refresh_from_db()
        assert row.status == Notification.Status.PENDING
        assert row.send_failures == 1 and row.redispatch_at > timezone.now()
        assert "mail server did not take it" in row.status_reason

    controller, inbox = start_smtp(smtp_port)
    try:
        for row in rows:
            send_notification(row.pk)
            send_notification(row.pk)  # a message delivered twice: the second finds the row sent
    finally:
        controller.stop()
    assert sorted(to for recipients, _ in inbox.messages for to in recipients) == [
        "ada@example.org", "ben@example.org", "cy@example.org"]
    assert all("Deadline moved" in text and "List-Unsubscribe" in text for _, text in inbox.messages)
    assert set(Notification.objects.values_list("status", flat=True)) == {Notification.Status.SENT}


@pytest.mark.django_db
def test_account_mail_has_no_unsubscribe_link_and_an_opted_out_kind_is_shown_on_the_site_only(settings, smtp_port):
    use_smtp(settings, smtp_port)
    user = make_user("ada")
    user.email_opt_outs.create(kind=Kind.FORUM_REPLY)
    [site_only] = notify([user], Kind.FORUM_REPLY, "A reply", "Text")
    [reset] = notify([user], Kind.PASSWORD_RESET, "Reset", "Link")
    assert site_only.status == Notification.Status.SITE_ONLY
    controller, inbox = start_smtp(smtp_port)
    try:
        send_notification(site_only.pk)
        send_notification(reset.pk)
    finally:
        controller.stop()
    assert len(inbox.messages) == 1
    assert "List-Unsubscribe" not in inbox.messages[0][1]


def sends_handled(worker):
    return sum("send_notification[" in line and "succeeded" in line for line in worker.output().splitlines())


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_a_celery_worker_sends_the_outbox_after_the_mail_server_comes_back(tmp_path, smtp_port):
    """A real worker (Redis broker) is woken by the commit and sends each row; the server is down,
    so each row waits; once it is up, the sweep sends them again and each arrives once."""
    flush_broker()
    worker = Worker(tmp_path / "worker.log", queues="cpu", EMAIL_URL=f"smtp://127.0.0.1:{smtp_port}",
                    MICA_MAIL_RETRY_SECONDS="1", EMAIL_TIMEOUT="3")
    controller = None
    try:
        users = [make_user(f"user{i}") for i in range(4)]
        with transaction.atomic():
            rows = notify(users, Kind.PRIVATE_REVEALED, "Final results", "The private leaderboard is out.")
        wait_for(lambda: Notification.objects.filter(send_failures__gte=1).count() == len(rows), timeout=60,
                 what="every row tried once while the server is down")
        assert not Notification.objects.filter(status=Notification.Status.SENT).exists()

        controller, inbox = start_smtp(smtp_port)
        later = timezone.now() + timedelta(seconds=5)  # past every row's pause
        Notification.sweep(now=later)
        wait_for(lambda: Notification.objects.filter(status=Notification.Status.SENT).count() == len(rows),
                 timeout=60, what="every row sent")
        Notification.sweep(now=later + timedelta(days=2))  # a later sweep finds nothing to send
        for row in rows:  # and a redelivered message sends nothing again
            send_notification.apply_async(args=[row.pk])
        wait_for(lambda: sends_handled(worker) >= 3 * len(rows), timeout=30, what="the redelivered messages handled")
    finally:
        worker.stop()
        if controller:
            controller.stop()
    recipients = sorted(to for tos, _ in inbox.messages for to in tos)
    assert recipients == sorted(user.email for user in users), worker.output()[-3000:]
