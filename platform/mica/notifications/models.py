"""Notifications: a row per message to one person, written in the transaction of what caused it.

The row is its own outbox (mica.core.models.LeasedWork): it is committed with the event, its
task is sent after the commit, and a worker claims it under a lease, e-mails it and marks it
sent in one conditional update. A mail server that is down sends the row back to *pending*
with a growing pause; the sweep sends it again then. Nothing is e-mailed from a request.
The same row is what the person sees on the site (the unread count, the list page).
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import models, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from mica.core.models import LeasedWork, leased_work_moves

logger = logging.getLogger(__name__)


class Kind(models.TextChoices):
    """Every kind of notification; a person may turn off the e-mail of each kind they can opt out of."""

    SUBMISSION_SCORED = "submission_scored", "A submission of my team was scored"
    SUBMISSION_FAILED = "submission_failed", "A submission of my team failed"
    PHASE_OPENING = "phase_opening", "A phase of my challenges opens soon"
    PHASE_CLOSING = "phase_closing", "A phase of my challenges closes soon"
    PRIVATE_REVEALED = "private_revealed", "A private leaderboard was revealed"
    REGISTRATION_APPROVED = "registration_approved", "My registration was approved"
    FORUM_REPLY = "forum_reply", "Replies in forum threads I follow"
    ANNOUNCEMENT = "announcement", "Announcements of my challenges"
    WORK_FAILED = "work_failed", "Work in my challenges failed with an internal error (organizers)"
    # Account mail: always sent, never unsubscribed from (the person asked for it).
    VERIFY_EMAIL = "verify_email", "Confirm my e-mail address"
    PASSWORD_RESET = "password_reset", "Reset my password"


ACCOUNT_KINDS = {Kind.VERIFY_EMAIL, Kind.PASSWORD_RESET}
OPTIONAL_KINDS = [kind for kind in Kind if kind not in ACCOUNT_KINDS]
# Sent to the organizers of a challenge only: offered to those who organize one.
ORGANIZER_KINDS = {Kind.WORK_FAILED}
UNSUBSCRIBE_SALT = "mica.notifications.unsubscribe"


def notify(users, kind, subject, body, url="", challenge=None):
    """Writes one notification per user in the caller's transaction (one INSERT for them all:
    an announcement reaches thousands); after the commit one message wakes the sender, which
    e-mails each row (unless its user turned that kind's e-mail off)."""
    kind = Kind(kind)
    users = list({user.pk: user for user in users if user is not None}.values())
    opted_out = set() if kind in ACCOUNT_KINDS else set(
        EmailOptOut.objects.filter(kind=kind, user__in=users).values_list("user_id", flat=True))
    rows = Notification.objects.bulk_create([
        Notification(user=user, kind=kind, subject=subject[:200], body=body, url=url, challenge=challenge,
                     status=Notification.Status.PENDING if user.email and user.pk not in opted_out
                     else Notification.Status.SITE_ONLY)
        for user in users
    ])
    if any(row.status == Notification.Status.PENDING for row in rows):
        transaction.on_commit(Notification.wake_sender)
    return rows


def organizers_of(challenge):
    """The organizers and co-organizers: whom "the organizers have been told" tells."""
    return _holders(challenge, "organizer")


def participants_of(challenge):
    """Approved participants."""
    return _holders(challenge, "participant")


def _holders(challenge, role):
    return [held.user for held in challenge.roles.filter(role=role, approved_at__isnull=False).select_related("user")]


class Notification(LeasedWork):
    class Status(models.TextChoices):
        PENDING = "pending", "Waiting to be e-mailed"
        SENDING = "sending", "Being e-mailed"
        SENT = "sent", "E-mailed"
        FAILED = "failed", "Not e-mailed"
        SITE_ONLY = "site_only", "Shown on the site only"

    TRANSITIONS = leased_work_moves(Status.PENDING, Status.SENDING, Status.FAILED, Status.SENT)
    # A mail server that refused the message: back to the queue, to be sent again later.
    TRANSITIONS[Status.SENDING] = TRANSITIONS[Status.SENDING] | {Status.PENDING}
    TRANSITIONS[Status.SITE_ONLY] = set()
    WAITING, RUNNING, FAILED = Status.PENDING, Status.SENDING, Status.FAILED

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    challenge = models.ForeignKey("challenges.Challenge", on_delete=models.CASCADE, null=True, blank=True,
                                  related_name="+")
    subject = models.CharField(max_length=200)
    body = models.TextField()
    url = models.CharField(max_length=500, blank=True, help_text="A path on this site.")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    send_failures = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            models.Index(fields=["user", "read_at"]),
            models.Index(fields=["status", "redispatch_at"]),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} for {self.user} ({self.status})"

    @classmethod
    def task(cls):
        from .tasks import send_notification

        return send_notification

    @classmethod
    def wake_sender(cls):
        """Asks a worker to dispatch the rows not sent yet; a broker that is down leaves them
        to the sweep, which dispatches undispatched rows too."""
        from .tasks import dispatch_outbox

        try:
            dispatch_outbox.apply_async(retry=False)
        except Exception:  # kombu's OperationalError, or the socket's own
            logger.warning("broker unreachable: the notifications wait for the sweep")

    @classmethod
    def dispatch_waiting(cls):
        """One task per row not dispatched yet (each then sent, retried and leased on its own)."""
        for row in cls.objects.filter(status=cls.Status.PENDING, dispatched_at=None).order_by("pk"):
            row.dispatch()

    @classmethod
    def unread_count(cls, user):
        return cls.objects.filter(user=user, read_at__isnull=True).count()

    @classmethod
    def mark_read(cls, user, pks=None):
        rows = cls.objects.filter(user=user, read_at__isnull=True)
        if pks is not None:
            rows = rows.filter(pk__in=pks)
        return rows.update(read_at=timezone.now())

    def too_many_attempts_reason(self):
        return f"Its worker stopped {self.attempts} times while sending it."

    def unsubscribe_token(self):
        return signing.dumps({"user": self.user_id, "kind": self.kind}, salt=UNSUBSCRIBE_SALT)

    def send_failed(self, error):
        """The mail server refused or could not be reached: the row waits, and is sent again
        after a pause that doubles with each failure (at most a day); never dropped."""
        pause = min(settings.MICA_MAIL_RETRY_SECONDS * 2 ** self.send_failures, 86400)
        return self.finish(self.Status.PENDING, f"The mail server did not take it: {type(error).__name__}.",
                           send_failures=F("send_failures") + 1, attempts=0,
                           redispatch_at=timezone.now() + timedelta(seconds=pause))

    def mark_sent(self):
        return self.finish(self.Status.SENT, "E-mailed.", sent_at=timezone.now())


class EmailOptOut(models.Model):
    """The user turned off the e-mail of one kind (the notification still shows on the site)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="email_opt_outs")
    kind = models.CharField(max_length=30, choices=Kind.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "kind"], name="one_opt_out_per_kind")]

    @classmethod
    def set_for(cls, user, kinds_off):
        """Replaces the user's opt-outs with `kinds_off` (account mail cannot be turned off)."""
        kinds_off = {Kind(kind) for kind in kinds_off} - ACCOUNT_KINDS
        with transaction.atomic():
            cls.objects.filter(user=user).exclude(kind__in=kinds_off).delete()
            for kind in kinds_off:
                cls.objects.get_or_create(user=user, kind=kind)

    @classmethod
    def preferences(cls, user):
        """Each kind the user may turn off and can receive, and whether its e-mail is on, as the
        settings show them (the organizers' kinds to those who organize a challenge)."""
        off = set(cls.objects.filter(user=user).values_list("kind", flat=True))
        organizes = user.is_staff or user.challenge_roles.filter(role="organizer", approved_at__isnull=False).exists()
        return [{"kind": kind.value, "label": kind.label, "on": kind not in off} for kind in OPTIONAL_KINDS
                if organizes or kind not in ORGANIZER_KINDS]

    @classmethod
    def change_for(cls, user, wanted):
        """Turns the e-mail of each kind in `wanted` ({kind: on}) on or off; other kinds keep theirs."""
        off = {row["kind"] for row in cls.preferences(user) if not row["on"]}
        cls.set_for(user, (off | {kind for kind, on in wanted.items() if not on}) - {
            kind for kind, on in wanted.items() if on})

    @classmethod
    def from_token(cls, token):
        """(user id, kind) of a signed unsubscribe link; BadSignature for a forged or altered one."""
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
        kind = Kind(data["kind"])
        if kind in ACCOUNT_KINDS:
            raise signing.BadSignature("account mail cannot be unsubscribed from")
        return int(data["user"]), kind


class PhaseReminder(models.Model):
    """That the participants were told a phase opens or closes soon: the row makes the beat task
    tell them once, however often it runs."""

    phase = models.ForeignKey("challenges.Phase", on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=30, choices=[(Kind.PHASE_OPENING, "opening"), (Kind.PHASE_CLOSING, "closing")])
    # The time announced: moving the phase's date makes a new reminder due.
    at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["phase", "kind", "at"], name="one_reminder_per_phase_time")]

    @classmethod
    def send_due(cls, now=None):
        """Tells the participants of published challenges about phases that open or close
        within MICA_PHASE_REMINDER_HOURS; each (phase, kind, time) once."""
        from mica.challenges.models import Challenge, Phase

        now = now or timezone.now()
        horizon = now + timedelta(hours=settings.MICA_PHASE_REMINDER_HOURS)
        published = Phase.objects.filter(challenge__state=Challenge.State.PUBLISHED).select_related("challenge")
        due = [(phase, Kind.PHASE_OPENING, phase.starts_at) for phase in published.filter(starts_at__gt=now,
                                                                                             starts_at__lte=horizon)]
        due += [(phase, Kind.PHASE_CLOSING, phase.ends_at) for phase in published.filter(ends_at__gt=now,
                                                                                           ends_at__lte=horizon)]
        sent = 0
        for phase, kind, at in due:
            with transaction.atomic():
                _, created = cls.objects.get_or_create(phase=phase, kind=kind, at=at)
                if not created:
                    continue
                challenge = phase.challenge
                verb = "opens" if kind == Kind.PHASE_OPENING else "closes"
                when = at.strftime("%Y-%m-%d %H:%M UTC")
                notify(participants_of(challenge), kind, f"{challenge.title}: {phase.name} {verb} {when}",
                       f"The phase {phase.name!r} of {challenge.title} {verb} at {when}.",
                       url=challenge.get_absolute_url(), challenge=challenge)
                sent += 1
        return sent


def unsubscribe_url(notification):
    return reverse("notifications:unsubscribe", args=[notification.unsubscribe_token()])
