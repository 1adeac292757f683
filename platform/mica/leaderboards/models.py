"""Leaderboards are computed by a worker when something that ranks changes, and stored: a page
view reads one row, whatever the number of submissions.

Anything that changes a phase's ranking (an evaluation that ends, a selection, a disqualified
or renamed team, an edited phase, a new truth version) calls `leaderboards_changed(phase)`: the
phase's snapshots are marked stale and one refresh is sent to the ``cpu`` queue. A refresh that
finds the snapshots stale again when it ends computes them once more, so no change is lost; the
sweep re-sends a refresh whose message was lost.
"""

import logging
from dataclasses import asdict
from datetime import timedelta

from django.db import models, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from django.conf import settings
from django.core.files.base import ContentFile

from mica.challenges.models import Split
from mica.core.models import LeasedWork, leased_work_moves
from mica.core.storage import private_storage

logger = logging.getLogger(__name__)

REFRESH_LOST_AFTER = timedelta(minutes=5)


class LeaderboardSnapshot(models.Model):
    phase = models.ForeignKey("challenges.Phase", on_delete=models.CASCADE, related_name="leaderboard_snapshots")
    split = models.CharField(max_length=10, choices=Split.choices)
    rows = models.JSONField(default=list)
    computed_at = models.DateTimeField(null=True)
    stale = models.BooleanField(default=True)
    refresh_sent_at = models.DateTimeField(null=True)
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
        """The stored rows and when they were computed. The first time, the rows alone are
        computed here (one query), and the worker is asked for the statistics."""
        snapshot = cls.objects.filter(phase=phase, split=split).defer("statistics", "plots").first()
        if snapshot is None or snapshot.computed_at is None:
            snapshot = cls.compute(phase, split, with_statistics=False)
            leaderboards_changed(phase)
        return [_row(row) for row in snapshot.rows], snapshot.computed_at

    @classmethod
    def statistics_for(cls, phase, split):
        """The stored statistics of a board ({"comparison", "notes", "plots"}), or None before
        the worker computed them."""
        stored = cls.objects.filter(phase=phase, split=split).values_list("statistics", "plots").first()
        if stored is None or stored[0] is None:
            return None
        return {**stored[0], "plots": stored[1] or {}}

    @classmethod
    def compute(cls, phase, split, with_statistics=True):
        from .ranking import leaderboard  # it reads submissions, whose models mark boards stale
        from .statistics import board_statistics

        rows = leaderboard(phase, split)
        defaults = {"computed_at": timezone.now()}
        if with_statistics:
            rows, defaults["statistics"] = board_statistics(phase, split, rows)
        defaults["rows"] = [dict(asdict(row), submitted_at=row.submitted_at.isoformat()) for row in rows]
        snapshot, _ = cls.objects.update_or_create(phase=phase, split=split, defaults=defaults)
        return snapshot

    @classmethod
    def refresh(cls, phase):
        """The worker's step: recomputes both boards until no change arrived meanwhile."""
        for _ in range(10):
            cls.objects.filter(phase=phase).update(stale=False)
            for split in Split.values:
                cls.compute(phase, split)
            if not cls.objects.filter(phase=phase, stale=True).exists():
                break
        cls.objects.filter(phase=phase).update(refresh_sent_at=None)
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
    def send_refresh(cls, phase_pk):
        from .tasks import refresh_leaderboards

        try:
            refresh_leaderboards.apply_async(args=[phase_pk], retry=False)
        except Exception:  # the broker is down: the sweep sends it later
            logger.warning("broker unreachable: the leaderboards of phase %s stay stale for now", phase_pk)

    @classmethod
    def sweep(cls, now=None):
        """Re-sends refreshes whose message was lost."""
        now = now or timezone.now()
        lost = cls.objects.filter(
            models.Q(refresh_sent_at=None) | models.Q(refresh_sent_at__lt=now - REFRESH_LOST_AFTER), stale=True
        )
        for phase_pk in set(lost.values_list("phase_id", flat=True)):
            cls.objects.filter(phase_id=phase_pk).update(refresh_sent_at=now)
            cls.send_refresh(phase_pk)
        undrawn = cls.objects.filter(
            models.Q(plots_drawn_at=None) | models.Q(plots_drawn_at__lt=models.F("computed_at")),
            stale=False, statistics__isnull=False, computed_at__lt=now - REFRESH_LOST_AFTER,
        )
        for phase_pk in set(undrawn.values_list("phase_id", flat=True)):
            cls.send_drawing(phase_pk)


def leaderboards_changed(phase):
    """Marks the phase's boards stale and sends one refresh, after the caller's commit."""
    snapshots = LeaderboardSnapshot.objects.filter(phase=phase)
    if not snapshots.update(stale=True):
        return  # never shown yet: the first view computes it
    if snapshots.filter(refresh_sent_at__isnull=False).exists():
        return  # a refresh is on its way; it sees the mark when it ends
    snapshots.update(refresh_sent_at=timezone.now())
    transaction.on_commit(lambda: LeaderboardSnapshot.send_refresh(phase.pk))


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
