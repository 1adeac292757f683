from mica.challenges.models import Phase
from mica.core.tasks import mica_task

from .models import LeaderboardSnapshot


@mica_task(queue="cpu")
def refresh_leaderboards(phase_pk):
    phase = Phase.objects.select_related("challenge", "test_set").filter(pk=phase_pk).first()
    if phase is not None:
        LeaderboardSnapshot.refresh(phase)
