"""Leaderboards are computed by a worker when something that ranks changes, and stored: a page
view reads one row, whatever the number of submissions.

Anything that changes a phase's ranking (an evaluation that ends, a selection, a disqualified
or renamed team, an edited phase, a new truth version) calls `leaderboards_changed(phase)`: the
phase's snapshots are marked stale and a refresh is asked of its `BoardRefresh`, the row through
which every worker process coalesces and throttles the board's refreshes (see there).
"""

import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from django.db import models, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from django.conf import settings
from django.core.files.base import ContentFile

from mica.challenges.models import Split
from mica.core.models import LeasedWork, lease_renewed, leased_work_moves, worker_name
from mica.core.storage import private_storage

logger = logging.getLogger(__name__)

REFRESH_LOST_AFTER = timedelta(minutes=5)
# A board's refreshes start at least this many times the last one's duration apart (and never
# more than MICA_BOARD_REFRESH_SECONDS): a small board is refreshed near-immediately, and a
# large one takes at most a tenth of a worker until the setting caps the wait.
REFRESH_DURATIONS_APART = 10


@dataclass(frozen=True)
class Freshness:
    """When a board was last computed, whether a change arrived that it does not show yet (its
    refresh is waiting or running), and whether its refreshes failed and were given up."""

    computed_at: datetime
    pending: bool
    failed: bool = False

    @classmethod
    def of(cls, phase_pk, computed_at, stale):
        # Only a stale board can have failed refreshes: a fresh one costs no query.
        failed = stale and BoardRefresh.objects.filter(phase_id=phase_pk, failed_at__isnull=False).exists()
        return cls(computed_at, stale, failed)


class LeaderboardSnapshot(models.Model):
    phase = models.ForeignKey("challenges.Phase", on_delete=models.CASCADE, related_name="leaderboard_snapshots")
    split = models.CharField(max_length=10, choices=Split.choices)
    rows = models.JSONField(default=list)
    computed_at = models.DateTimeField(null=True)
    # A change arrived that no refresh has taken yet (BoardRefresh.claim clears it).
    stale = models.BooleanField(default=True)
    # {"comparison", "notes"} (mica.leaderboards.statistics), computed by the refresh; None until
    # the worker has computed them once. The plots ({name: plot}) are drawn by a task of their own
    # after each refresh, so a board's ranking is never held up by its drawing.
    statistics = models.JSONField(null=True)
    plots = models.JSONField(null=True)
    plots_drawn_at = models.DateTimeField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["phase", "split"], name="one_snapshot_per_board")]

    @classmethod
    def rows_for(cls, phase, split):
        """The stored rows and their `Freshness`. The first time, the rows alone are computed
        here (one query), and the worker is asked for the statistics."""
        snapshot = cls.objects.filter(phase=phase, split=split).defer("statistics", "plots").first()
        if snapshot is None or snapshot.computed_at is None:
            snapshot = cls.compute(phase, split, with_statistics=False)
            leaderboards_changed(phase)
        return [_row(row) for row in snapshot.rows], Freshness.of(phase.pk, snapshot.computed_at, snapshot.stale)

    @classmethod
    def statistics_for(cls, phase, split):
        """The stored statistics of a board ({"comparison", "notes", "plots", "freshness"}), or
        None before the worker computed them."""
        stored = cls.objects.filter(phase=phase, split=split).values_list(
            "statistics", "plots", "computed_at", "stale").first()
        if stored is None or stored[0] is None:
            return None
        return {**stored[0], "plots": stored[1] or {}, "freshness": Freshness.of(phase.pk, stored[2], stored[3])}

    @classmethod
    def compute(cls, phase, split, with_statistics=True):
        from .ranking import leaderboard  # it reads submissions, whose models mark boards stale
        from .statistics import board_statistics

        rows = leaderboard(phase, split)
        defaults = {"computed_at": timezone.now()}
        if with_statistics:
            rows, defaults["statistics"] = board_statistics(phase, split, rows)
        defaults["rows"] = [dict(asdict(row), submitted_at=row.submitted_at.isoformat()) for row in rows]
        # A new snapshot shows every change so far; an existing one keeps a mark that a change
        # made while it was computed (its refresh sends the next one).
        snapshot, _ = cls.objects.update_or_create(phase=phase, split=split, defaults=defaults,
                                                   create_defaults={**defaults, "stale": False})
        return snapshot

    @classmethod
    def refresh(cls, phase):
        """The worker's step: recomputes both boards, one refresh of the board at a time (a
        request arriving meanwhile is served by one more refresh afterwards: BoardRefresh)."""
        refresh = BoardRefresh.claim(phase)
        if refresh is None:
            return
        with refresh.lease_held():
            try:
                for split in Split.values:
                    cls.compute(phase, split)
            except Exception:
                logger.exception("the refresh of phase %s's boards failed", phase.pk)
                refresh.fail()
                return
        if not refresh.finish():
            return  # the lease ran out and another worker took the board over
        transaction.on_commit(lambda: cls.send_drawing(phase.pk))
        PhaseReport.remake_if_truth_changed(phase)

    @classmethod
    def draw(cls, phase):
        """The drawing task's step: the plots of each board computed since it was last drawn."""
        from .statistics import board_plots

        undrawn = models.Q(plots_drawn_at=None) | models.Q(plots_drawn_at__lt=models.F("computed_at"))
        for snapshot in cls.objects.filter(undrawn, phase=phase, statistics__isnull=False):
            drawn = board_plots(phase, snapshot.split, [_row(row) for row in snapshot.rows], snapshot.statistics)
            cls.objects.filter(pk=snapshot.pk).update(plots=drawn, plots_drawn_at=timezone.now())

    @classmethod
    def send_drawing(cls, phase_pk):
        from .tasks import draw_leaderboard_plots

        try:
            draw_leaderboard_plots.apply_async(args=[phase_pk], retry=False)
        except Exception:  # the broker is down: the sweep sends it later
            logger.warning("broker unreachable: the plots of phase %s wait for the sweep", phase_pk)

    @classmethod
    def sweep(cls, now=None):
        """Re-sends drawings whose message was lost (BoardRefresh.sweep does the refreshes)."""
        now = now or timezone.now()
        undrawn = cls.objects.filter(
            models.Q(plots_drawn_at=None) | models.Q(plots_drawn_at__lt=models.F("computed_at")),
            stale=False, statistics__isnull=False, computed_at__lt=now - REFRESH_LOST_AFTER,
        )
        for phase_pk in set(undrawn.values_list("phase_id", flat=True)):
            cls.send_drawing(phase_pk)


class BoardRefresh(models.Model):
    """How a phase's boards are refreshed, shared by every worker process: at most one refresh
    of a board runs at a time (a lease: who, until when, renewed while it runs); requests that
    arrive while one runs or waits are served by one more refresh afterwards, not one each; and
    the next refresh starts no sooner than `pause()` after the last one started (countdown).

    A request is the snapshots' `stale` mark; `due_at` says that a refresh message is on its way
    (when it is due), so a request that finds one sends nothing.

    A refresh that raises, or whose worker dies, is tried again after the pause; once
    MICA_MAX_ATTEMPTS in a row have failed, the refreshes are given up (`failed_at`), the
    organizers are told, the board keeps its last rows and says so, and only a new change tries
    again (the sweep does not)."""

    phase = models.OneToOneField("challenges.Phase", on_delete=models.CASCADE, related_name="board_refresh")
    due_at = models.DateTimeField(null=True)
    claimed_by = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True)
    started_at = models.DateTimeField(null=True)
    finished_at = models.DateTimeField(null=True)
    duration = models.FloatField(default=0.0, help_text="Seconds the last refresh took.")
    refreshes = models.PositiveIntegerField(default=0)
    attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Refreshes started since the last one that ended well.")
    failed_at = models.DateTimeField(null=True, help_text="When the failed refreshes were given up.")

    @classmethod
    def locked(cls, phase_pk):
        """The board's row, locked until the caller's transaction ends. Every path locks it
        before it marks or reads the snapshots' `stale`, so no request slips between a refresh's
        last look and its end."""
        cls.objects.get_or_create(phase_id=phase_pk)
        return cls.objects.select_for_update().get(phase_id=phase_pk)

    @classmethod
    def request(cls, phase_pk, now=None, resend_lost=False, by_sweep=False):
        """Marks the board stale and sends a refresh after the caller's commit, unless one is
        running (it sends the next when it ends) or on its way. The sweep (`by_sweep`) sends
        nothing for a board whose refreshes were given up, and with `resend_lost` sends again
        when the message on its way is long overdue."""
        now = now or timezone.now()
        with transaction.atomic():
            refresh = cls.locked(phase_pk)
            LeaderboardSnapshot.objects.filter(phase_id=phase_pk).update(stale=True)
            if refresh.running(now) or (by_sweep and refresh.failed_at is not None):
                return
            lost = resend_lost and refresh.due_at is not None and refresh.due_at < now - REFRESH_LOST_AFTER
            if refresh.due_at is None or lost:
                refresh.send(now)

    def pause(self):
        """The least time between the starts of two refreshes of this board."""
        return min(settings.MICA_BOARD_REFRESH_SECONDS, REFRESH_DURATIONS_APART * self.duration)

    def running(self, now):
        return bool(self.claimed_by) and self.lease_expires_at is not None and self.lease_expires_at >= now

    def send(self, now):
        """Records the message as on its way and sends it after the commit, with a countdown
        that keeps the board's pause."""
        from .tasks import refresh_leaderboards

        countdown = 0.0
        if self.started_at is not None:
            countdown = max(0.0, (self.started_at - now).total_seconds() + self.pause())
        type(self).objects.filter(pk=self.pk).update(due_at=now + timedelta(seconds=countdown))
        phase_pk = self.phase_id

        def publish():
            try:
                refresh_leaderboards.apply_async(args=[phase_pk], countdown=countdown, retry=False)
            except Exception:  # the broker is down: the sweep sends it later
                logger.warning("broker unreachable: the leaderboards of phase %s stay stale for now", phase_pk)

        transaction.on_commit(publish)

    @classmethod
    def claim(cls, phase):
        """Takes the board for this worker, or None: another worker's refresh runs (it sends
        the next one when it ends), or nothing changed since the last refresh (a duplicate
        message). A board never computed is always taken."""
        now = timezone.now()
        with transaction.atomic():
            refresh = cls.locked(phase.pk)
            snapshots = LeaderboardSnapshot.objects.filter(phase=phase)
            computed = snapshots.filter(computed_at__isnull=False).count() == len(Split.values)
            if refresh.running(now) or (computed and not snapshots.filter(stale=True).exists()):
                if not refresh.running(now):
                    cls.objects.filter(pk=refresh.pk).update(due_at=None)
                return None
            if refresh.attempts >= settings.MICA_MAX_ATTEMPTS and refresh.failed_at is None:
                refresh.give_up(now)
                return None
            snapshots.update(stale=False)
            cls.objects.filter(pk=refresh.pk).update(
                claimed_by=worker_name(), lease_expires_at=now + timedelta(seconds=settings.MICA_LEASE_SECONDS),
                started_at=now, due_at=None, attempts=models.F("attempts") + 1,
            )
        refresh.refresh_from_db()
        refresh.started_clock = time.monotonic()  # the duration, whatever the clocks of the hosts
        return refresh

    def lease_held(self):
        held = type(self).objects.filter(pk=self.pk, claimed_by=self.claimed_by)
        return lease_renewed(held, f"board-refresh-{self.phase_id}")

    def finish(self):
        """Ends this worker's refresh and sends the next one when a request arrived meanwhile;
        False when the lease was lost."""
        now = timezone.now()
        with transaction.atomic():
            refresh = self.locked(self.phase_id)
            if refresh.claimed_by != self.claimed_by:
                return False
            type(self).objects.filter(pk=self.pk).update(
                claimed_by="", lease_expires_at=None, finished_at=now, duration=time.monotonic() - self.started_clock,
                refreshes=models.F("refreshes") + 1, attempts=0, failed_at=None,
            )
            refresh.refresh_from_db()
            if LeaderboardSnapshot.objects.filter(phase_id=self.phase_id, stale=True).exists():
                refresh.send(now)
        logger.info("board refresh of phase %s ran %.3f-%.3f by %s", self.phase_id, self.started_at.timestamp(),
                    now.timestamp(), self.claimed_by)
        return True

    def fail(self):
        """Ends this worker's refresh that raised: the board stays stale, and the next attempt
        is sent after the pause (its claim gives up when the attempts are used), unless the
        refreshes were given up already."""
        now = timezone.now()
        with transaction.atomic():
            refresh = self.locked(self.phase_id)
            if refresh.claimed_by != self.claimed_by:
                return
            LeaderboardSnapshot.objects.filter(phase_id=self.phase_id).update(stale=True)
            type(self).objects.filter(pk=self.pk).update(claimed_by="", lease_expires_at=None)
            refresh.refresh_from_db()
            if refresh.failed_at is None:
                refresh.send(now)

    def give_up(self, now):
        """Stops refreshing the board until a new change, and tells the organizers (an outbox
        row each, in the caller's transaction)."""
        from mica.notifications.models import Kind, notify, organizers_of

        type(self).objects.filter(pk=self.pk).update(failed_at=now, due_at=None)
        phase = self.phase
        notify(organizers_of(phase.challenge), Kind.WORK_FAILED, f"The leaderboard of {phase.name} is not refreshed",
               f"Its last {self.attempts} refreshes failed, so the board shows the results it had before them. "
               "The site's logs say why; the next change to the board (a new result, an edit of the phase) "
               "tries again.", url=phase.get_absolute_url(), challenge=phase.challenge)

    @classmethod
    def sweep(cls, now=None):
        """Sends a refresh for a board whose worker died (its lease ran out) or whose message
        was lost; not for a board whose refreshes were given up."""
        now = now or timezone.now()
        for phase_pk in cls.objects.filter(claimed_by__gt="", lease_expires_at__lt=now).values_list("phase_id", flat=True):
            with transaction.atomic():
                cls.locked(phase_pk)
                cls.objects.filter(phase_id=phase_pk, lease_expires_at__lt=now).update(
                    claimed_by="", lease_expires_at=None, due_at=None)
            cls.request(phase_pk, now, by_sweep=True)
        stale = LeaderboardSnapshot.objects.filter(stale=True).values_list("phase_id", flat=True)
        for phase_pk in set(stale):
            cls.request(phase_pk, now, resend_lost=True, by_sweep=True)


def leaderboards_changed(phase):
    """Marks the phase's boards stale and asks for a refresh, after the caller's commit."""
    if not LeaderboardSnapshot.objects.filter(phase=phase).exists():
        return  # never shown yet: the first view computes it
    BoardRefresh.request(phase.pk)


def _row(stored):
    from .ranking import LeaderboardRow

    return LeaderboardRow(**dict(stored, submitted_at=parse_datetime(stored["submitted_at"])))


def _report_path(report, filename):
    return f"reports/{report.phase.challenge_id}/{report.phase_id}/report-{report.pk}.pdf"


class PhaseReport(LeasedWork):
    """The challenge report of a phase (mica.leaderboards.report): asked for by an organizer,
    built by a worker as stored content (the page) and a PDF; built again when the ground
    truth changes and its re-score has finished."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Being built"
        DONE = "done", "Ready"
        FAILED = "failed", "Failed"

    TRANSITIONS = leased_work_moves(Status.QUEUED, Status.RUNNING, Status.FAILED, Status.DONE)
    WAITING, RUNNING, FAILED = Status.QUEUED, Status.RUNNING, Status.FAILED
    UNFINISHED = [Status.QUEUED, Status.RUNNING]

    phase = models.ForeignKey("challenges.Phase", on_delete=models.CASCADE, related_name="reports")
    truth_version = models.ForeignKey("challenges.TruthVersion", on_delete=models.CASCADE, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    content = models.JSONField(null=True, blank=True)
    pdf = models.FileField(storage=private_storage, upload_to=_report_path, max_length=300, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    @classmethod
    def task(cls):
        from .tasks import build_report

        return build_report

    @classmethod
    def request(cls, phase, user):
        """Queues a report of the phase, unless one is already queued or being built."""
        with transaction.atomic():
            waiting = phase.reports.filter(status__in=cls.UNFINISHED).first()
            if waiting:
                return waiting
            report = cls.objects.create(phase=phase, truth_version=phase.test_set.latest_version, requested_by=user)
            report.dispatch_on_commit()
        return report

    @classmethod
    def latest_done(cls, phase):
        return phase.reports.filter(status=cls.Status.DONE).first()

    @classmethod
    def remake_if_truth_changed(cls, phase):
        """A phase that had a report gets a new one once every evaluation of a newer truth
        version has ended (the re-score finished)."""
        from mica.evaluations.models import Evaluation

        latest = phase.reports.first()
        version = phase.test_set.latest_version
        if latest is None or version is None or latest.truth_version_id == version.pk:
            return None
        if Evaluation.objects.filter(truth_version=version, submission__phase=phase,
                                     status__in=Evaluation.UNFINISHED).exists():
            return None
        return cls.request(phase, latest.requested_by)

    def build(self):
        from .report import build_content, render_pdf

        version = self.phase.test_set.latest_version
        content = build_content(self.phase)
        self.pdf.save("report.pdf", ContentFile(render_pdf(self.phase, content)), save=False)
        if not self.finish(self.Status.DONE, "Built.", content=content, pdf=self.pdf.name, truth_version=version,
                           completed_at=timezone.now()):
            self.pdf.delete(save=False)  # the lease was lost: another worker writes its own
