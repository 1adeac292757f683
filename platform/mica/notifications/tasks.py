"""The sender of the outbox (``cpu`` queue) and the beat task that reminds of phase dates."""

import logging

from mica.core.tasks import mica_task

from .email import email_for
from .models import Notification, PhaseReminder

logger = logging.getLogger(__name__)


@mica_task(queue="cpu")
def send_notification(notification_pk):
    """Claims the row under a lease, e-mails it, marks it sent in one conditional update.
    A redelivered message finds the row sent (or held by a live lease) and does nothing."""
    notification = Notification.objects.select_related("user").filter(pk=notification_pk).first()
    if notification is None or not notification.claim("Sending."):
        return
    try:
        with notification.lease_held():
            email_for(notification).send()
    except Exception as error:  # smtplib's errors, a refused connection, a time-out
        logger.warning("notification %s not sent: %s", notification.pk, type(error).__name__)
        notification.send_failed(error)
        return
    notification.mark_sent()


@mica_task(queue="cpu")
def dispatch_outbox():
    Notification.dispatch_waiting()


@mica_task(queue="cpu")
def send_phase_reminders():
    PhaseReminder.send_due()
