"""The leaderboards' worker steps (``cpu`` queue): a board's refresh with its statistics, the
drawing of its plots, and a phase's challenge report."""

import logging

from mica.challenges.models import Phase
from mica.core.tasks import mica_task

from .models import LeaderboardSnapshot, PhaseReport

logger = logging.getLogger(__name__)


@mica_task(queue="cpu")
def refresh_leaderboards(phase_pk):
    phase = Phase.objects.select_related("challenge", "test_set").filter(pk=phase_pk).first()
    if phase is not None:
        LeaderboardSnapshot.refresh(phase)


@mica_task(queue="cpu")
def draw_leaderboard_plots(phase_pk):
    phase = Phase.objects.select_related("challenge", "test_set").filter(pk=phase_pk).first()
    if phase is not None:
        LeaderboardSnapshot.draw(phase)


@mica_task(queue="cpu")
def build_report(report_pk):
    report = PhaseReport.objects.select_related("phase__challenge", "phase__test_set").filter(pk=report_pk).first()
    if report is None or not report.claim("Building the report."):
        return
    try:
        with report.lease_held():
            report.build()
    except Exception:
        logger.exception("report %s failed", report.pk)
        report.finish(PhaseReport.Status.FAILED, "The report could not be built; the site's logs say why.")
