from django.core.paginator import Paginator
from django.shortcuts import render

from mica.challenges import access
from mica.challenges.models import Split
from mica.forum.models import writeup_links
from mica.sites.transfer import site_columns

from .models import LeaderboardSnapshot

ROWS_PER_PAGE = 100


def _render(request, phase, split):
    challenge = phase.challenge
    rows, computed_at = LeaderboardSnapshot.rows_for(phase, split)
    page = Paginator(rows, ROWS_PER_PAGE).get_page(request.GET.get("page"))
    is_organizer = challenge.is_organizer(request.user)
    rows = page.object_list if is_organizer else [row.rounded(phase) for row in page.object_list]
    version = phase.test_set.latest_version
    rescore = getattr(version, "rescore", None) if version else None
    return render(request, "leaderboards/phase.html", {
        "phase": phase, "challenge": challenge, "rows": rows, "page": page, "computed_at": computed_at,
        "split": split, "is_organizer": is_organizer,
        "version": version, "rescore_progress": rescore.progress() if rescore and is_organizer else None,
        "private_visible": phase.private_visible_to(request.user),
        "metric_names": phase.metrics[1:],
        "site_columns": site_columns(phase),
        "writeups": writeup_links(challenge),
    })


def phase_leaderboard(request, phase_pk):
    return _render(request, access.leaderboard_phase(request.user, phase_pk), Split.PUBLIC)


def private_leaderboard(request, phase_pk):
    return _render(request, access.private_leaderboard_phase(request.user, phase_pk), Split.PRIVATE)
