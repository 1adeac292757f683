"""The sender of the outbox (``cpu`` queue) and the beat task that reminds of phase dates."""

import logging

from django.core.mail import get_connection

from mica.core.tasks import mica_task

from .email import email_for
from .models import Notification, PhaseReminder

logger = logging.getLogger(__name__)


@mica_task(queue="cpu")
def send_notification(notification_pk):
    """Claims the row under a lease, e-mails it, marks it sent in one conditional update.
    A redelivered message finds the row sent (or held by a live lease) and does nothing.

    Delivery is at least once: a worker killed after the mail server accepted the message
    ("250") and before the row is marked sent e-mails it again once its lease runs out. That
    window is kept to the marking UPDATE alone: the row is marked as soon as the server answers,
    inside the lease, before the connection is closed (QUIT) and the lease thread stopped."""
    notification = Notification.objects.select_related("user").filter(pk=notification_pk).first()
    if notification is None or not notification.claim("Sending."):
        return
    connection = get_connection()
    try:
        with notification.lease_held():
            try:
                connection.open()
                connection.send_messages([email_for(notification)])
            except Exception as error:  # smtplib's errors, a refused connection, a time-out
                logger.warning("notification %s not sent: %s", notification.pk, type(error).__name__)
                notification.send_failed(error)
                return
            notification.mark_sent()
    finally:
        _close(connection)


def _close(connection):
    """Ends the SMTP session; the message is delivered (or not) by then, so an error here only logs."""
    try:
        connection.close()
    except Exception as error:  # a server that drops the connection before QUIT's answer
        logger.info("closing the mail connection: %s", type(error).__name__)


@mica_task(queue="cpu")
def dispatch_outbox():
    Notification.dispatch_waiting()


@mica_task(queue="cpu")
def send_phase_reminders():
    PhaseReminder.send_due()
