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

from mica.challenges.models import Split

logger = logging.getLogger(__name__)

REFRESH_LOST_AFTER = timedelta(minutes=5)


class LeaderboardSnapshot(models.Model):
    phase = models.ForeignKey("challenges.Phase", on_delete=models.CASCADE, related_name="leaderboard_snapshots")
    split = models.CharField(max_length=10, choices=Split.choices)
    rows = models.JSONField(default=list)
    computed_at = models.DateTimeField(null=True)
    stale = models.BooleanField(default=True)
    refresh_sent_at = models.DateTimeField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["phase", "split"], name="one_snapshot_per_board")]

    @classmethod
    def rows_for(cls, phase, split):
        """The stored rows and when they were computed; computed here only the first time."""
        snapshot = cls.objects.filter(phase=phase, split=split).first()
        if snapshot is None or snapshot.computed_at is None:
            snapshot = cls.compute(phase, split)
        return [_row(row) for row in snapshot.rows], snapshot.computed_at

    @classmethod
    def compute(cls, phase, split):
        from .ranking import leaderboard  # it reads submissions, whose models mark boards stale

        rows = [dict(asdict(row), submitted_at=row.submitted_at.isoformat()) for row in leaderboard(phase, split)]
        snapshot, _ = cls.objects.update_or_create(
            phase=phase, split=split, defaults={"rows": rows, "computed_at": timezone.now()}
        )
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
