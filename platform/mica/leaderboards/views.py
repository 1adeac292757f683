from django.shortcuts import get_object_or_404, render

from mica.challenges.models import Phase

from .ranking import leaderboard


def phase_leaderboard(request, phase_pk):
    phase = get_object_or_404(Phase.objects.select_related("challenge"), pk=phase_pk)
    return render(
        request,
        "leaderboards/phase.html",
        {"phase": phase, "challenge": phase.challenge, "rows": leaderboard(phase)},
    )
