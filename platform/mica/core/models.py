"""Behaviour shared by the models whose rows move through statuses, and by units of work."""

import logging
import os
import socket
import threading
import uuid
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import F, Q
from django.utils import timezone

logger = logging.getLogger(__name__)


class IllegalMove(Exception):
    pass


class StatusMachine(models.Model):
    """A row with one status field and the legal moves between statuses written in one place.

    Subclasses define ``status`` (a CharField with choices) and ``TRANSITIONS`` ({from: {to}}).
    `move` is a conditional update: it happens only if the row is still in the status this
    object holds, so two workers can never both claim the same row.
    """

    TRANSITIONS = {}

    status_reason = models.TextField(blank=True)
    status_changed_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True

    def move(self, to_status, reason="", **fields):
        """Moves to `to_status`; True when this call moved the row, False when another process
        changed it first. Extra fields are written in the same update."""
        from_status = self.status
        if to_status not in self.TRANSITIONS[from_status]:
            raise IllegalMove(f"a {self._meta.verbose_name} cannot move from {from_status} to {to_status}")
        with transaction.atomic():
            updated = type(self).objects.filter(pk=self.pk, status=from_status).update(
                status=to_status, status_reason=reason, status_changed_at=timezone.now(), **fields
            )
            if not updated:
                return False
            self.record_move(from_status, to_status, reason)
        self.refresh_from_db()
        return True

    def record_move(self, from_status, to_status, reason):
        """Called inside the move's transaction; a model that keeps a history writes it here."""


class StatusEvent(models.Model):
    """One recorded move of a StatusMachine row, with its reason (the row's history, shown to
    whoever may see the row). Subclasses add the row's foreign key and ``from_status`` /
    ``to_status`` with the row's choices."""

    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True
        ordering = ["created_at", "pk"]


def leased_work_moves(waiting, running, failed, *successes, cancelled=None):
    """The legal moves of leased work, the same for every kind: waiting → running; running →
    running (another worker took over an expired lease) or a success; failing (and cancelling,
    where the work has it) from either; every end is final."""
    stops = {failed, *([cancelled] if cancelled else [])}
    moves = {waiting: {running, *stops}, running: {running, *successes, *stops}}
    moves.update({end: set() for end in (*successes, *stops)})
    return moves


def worker_name():
    """Who holds a lease: the host, the process and a token of this claim."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@contextmanager
def lease_renewed(held, name):
    """Renews `lease_expires_at` of the rows `held` (a queryset that matches them only while this
    worker holds them) in a background thread while the block runs."""
    stop = threading.Event()
    interval = settings.MICA_LEASE_SECONDS / 4

    def renew():
        try:
            while not stop.wait(interval):
                held.update(lease_expires_at=timezone.now() + timedelta(seconds=settings.MICA_LEASE_SECONDS))
        finally:
            connection.close()

    thread = threading.Thread(target=renew, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


class LeasedWork(StatusMachine):
    """A row that is a unit of background work: it waits, a worker holds it under a lease, it ends.

    The row is its own outbox: it is written in the caller's transaction, and its task is sent
    after the commit; a broker that is down leaves it undispatched, and the sweep sends it once
    the broker is back. A worker *claims* the row with a lease (who, until when) and renews the
    lease while it works, so a redelivered message never takes work whose lease is live, and work
    whose worker died is taken over once its lease runs out. Attempts are counted and capped, so
    work that keeps killing its worker ends as failed instead of being redelivered forever.

    Subclasses set ``WAITING``, ``RUNNING`` and ``FAILED`` (statuses), ``ENDED`` (the final
    statuses) and ``task()`` (the Celery task that takes the primary key).
    """

    WAITING = RUNNING = FAILED = None
    ENDED = ()

    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_by = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    dispatch_count = models.PositiveIntegerField(default=0)
    redispatch_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @classmethod
    def task(cls):
        raise NotImplementedError

    # -- dispatch ---------------------------------------------------------------------------
    def dispatch(self):
        """Sends this row's task now; False (and the row left for the sweep) when the broker is down."""
        try:
            self.task().apply_async(args=[self.pk], retry=False)
        except Exception:  # kombu raises its OperationalError, or the socket's own error
            logger.warning("broker unreachable: %s %s stays in the outbox", self._meta.label, self.pk)
            return False
        now = timezone.now()
        # Another message is sent only after a growing pause, for the rare message a broker
        # loses (a restart without persistence): a long queue on deadline day is not flooded.
        pause = min(settings.MICA_REDISPATCH_SECONDS * 2 ** self.dispatch_count, 86400)
        type(self).objects.filter(pk=self.pk).update(
            dispatched_at=now, dispatch_count=F("dispatch_count") + 1, redispatch_at=now + timedelta(seconds=pause)
        )
        return True

    def dispatch_on_commit(self):
        transaction.on_commit(self.dispatch)

    # -- the worker's side ------------------------------------------------------------------
    @classmethod
    def claimable(cls, now):
        return Q(status=cls.WAITING) | Q(status=cls.RUNNING, lease_expires_at__lt=now)

    def claim(self, reason="Started."):
        """Takes the lease for this worker. False when the row ended, another worker holds a
        live lease, or the row has used its attempts (it is then failed with a reason)."""
        now = timezone.now()
        worker = worker_name()
        with transaction.atomic():
            row = type(self).objects.select_for_update().filter(self.claimable(now), pk=self.pk).first()
            if row is None:
                return False
            if row.attempts >= settings.MICA_MAX_ATTEMPTS:
                self.refresh_from_db()
                if self.move(self.FAILED, self.too_many_attempts_reason()):
                    self.tell_watchers(self.status_reason)
                return False
            type(self).objects.filter(pk=self.pk).update(
                status=self.RUNNING, status_reason=reason, status_changed_at=now, attempts=F("attempts") + 1,
                claimed_by=worker, lease_expires_at=now + timedelta(seconds=settings.MICA_LEASE_SECONDS),
                started_at=now,
            )
            self.record_move(row.status, self.RUNNING, reason)
        self.refresh_from_db()
        return True

    def too_many_attempts_reason(self):
        told = "; the organizers have been told." if self.watchers() else "."
        return f"It stopped its worker {self.attempts} times{told}"

    def watchers(self):
        """Who is told when this work fails for a reason of the site's own (a worker that keeps
        dying, an internal error): nobody here; work of a challenge names its organizers."""
        return []

    def tell_watchers(self, reason):
        """Notifies the watchers (an outbox row each, in the caller's transaction)."""
        from mica.notifications.models import Kind, notify  # the apps build on core, not the reverse

        notify(self.watchers(), Kind.WORK_FAILED, f"{self._meta.verbose_name.capitalize()} {self.pk} failed",
               reason, url=self.get_absolute_url() if hasattr(self, "get_absolute_url") else "")

    def lease_held(self):
        """Renews the lease in a background thread while the block runs."""
        held = type(self).objects.filter(pk=self.pk, status=self.RUNNING, claimed_by=self.claimed_by)
        return lease_renewed(held, f"lease-{self._meta.label}-{self.pk}")

    def finish(self, to_status, reason, **fields):
        """Ends the work this worker holds; False when the lease was lost (taken over, cancelled)."""
        with transaction.atomic():
            updated = type(self).objects.filter(pk=self.pk, status=self.RUNNING, claimed_by=self.claimed_by).update(
                status=to_status, status_reason=reason, status_changed_at=timezone.now(), lease_expires_at=None,
                **fields,
            )
            if not updated:
                return False
            self.record_move(self.RUNNING, to_status, reason)
        self.refresh_from_db()
        return True

    # -- the sweep --------------------------------------------------------------------------
    @classmethod
    def time_limit_seconds(cls):
        """How long this kind of work may run before the sweep fails it."""
        return settings.MICA_WORK_TIME_LIMIT

    @classmethod
    def sweep(cls, now=None):
        """Sends work whose message may be gone, and fails only work that used its attempts or
        ran past the time limit. Work waiting in the queue is never failed for waiting."""
        now = now or timezone.now()
        rows = cls.objects.all()
        for row in rows.filter(status=cls.RUNNING, lease_expires_at__lt=now):
            if row.attempts >= settings.MICA_MAX_ATTEMPTS:
                with transaction.atomic():
                    if row.move(cls.FAILED, row.too_many_attempts_reason()):
                        row.tell_watchers(row.status_reason)
            else:
                row.dispatch()  # the next worker's claim takes the expired lease over
        seconds = cls.time_limit_seconds()
        for row in rows.filter(status=cls.RUNNING, started_at__lt=now - timedelta(seconds=seconds)):
            row.move(cls.FAILED, f"It did not finish within {seconds / 60:g} minutes.")
        undispatched = Q(dispatched_at=None, created_at__lt=now - timedelta(seconds=5)) | Q(redispatch_at__lt=now)
        for row in rows.filter(undispatched, status=cls.WAITING):
            row.dispatch()
