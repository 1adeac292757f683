"""The statistics of a board through the API (/api/v1/leaderboards/<id>/statistics/ and
…/private/statistics/): the numbers of the statistics page, with exactly its visibility for the
eight standing users, before and after the reveal and on a participants-only board."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from mica.challenges.models import Split
from mica.leaderboards.models import LeaderboardSnapshot
from mica.leaderboards.tasks import refresh_leaderboards

from .conftest import PASSWORD
from .test_leaderboard_report import USERS, people, scored, truth  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db


def api_statistics(user, phase, split=Split.PUBLIC):
    client = APIClient()
    if user:
        client.force_authenticate(user)
    private = "private/" if split == Split.PRIVATE else ""
    return client.get(f"/api/v1/leaderboards/{phase.pk}/{private}statistics/")


def page_status(user, phase, split=Split.PUBLIC):
    client = Client()
    if user:
        client.login(username=user.username, password=PASSWORD)
    private = "private/" if split == Split.PRIVATE else ""
    return client.get(f"/leaderboards/phases/{phase.pk}/{private}significance/").status_code


def as_api(status):
    """The page's answer as the API gives it: the API sends nobody to a login page."""
    return 403 if status == 302 else status


def statuses(people, phase):
    """{who: (API's status, page's status)} on both boards."""
    return {(who, split): (api_statistics(people[who], phase, split).status_code, as_api(page_status(people[who], phase, split)))
            for who in USERS for split in Split.values}


def test_the_endpoint_gives_the_numbers_of_the_statistics_page(people, scored):
    phase = scored
    comparison = LeaderboardSnapshot.statistics_for(phase, Split.PUBLIC)["comparison"]
    computed_at = LeaderboardSnapshot.objects.get(phase=phase, split=Split.PUBLIC).computed_at
    organizers = api_statistics(people["organizer"], phase).json()
    assert organizers["computed"] and not organizers["refresh_pending"] and organizers["split"] == "public"
    assert organizers["computed_at"].replace("Z", "+00:00") == computed_at.isoformat()
    shown = organizers["comparison"]
    names = comparison["names"]
    assert [team["team"] for team in shown["teams"]] == names == ["Team Paul", "Second", "Third"]
    assert {team["team"]: team["band"] for team in shown["teams"]} == comparison["bands"]
    assert {team["team"]: team["value"] for team in shown["teams"]} == comparison["values"]
    assert shown["p_values"] == comparison["pairwise"]["p_values"]
    assert shown["significant"] == comparison["pairwise"]["significant"]
    assert shown["kendall_tau"] == comparison["stability"]["kendall_tau"]
    assert [team["rank_counts"] for team in shown["teams"]] == [comparison["stability"]["rank_counts"][n] for n in names]
    assert shown["ranks_by_method"] == comparison["robustness"] and "mean" in shown["ranks_by_method"]
    assert shown["method"] == phase.ranking_method and shown["alpha"] == phase.ranking_alpha
    assert shown["test"] == "delong"

    participants = api_statistics(people["participant"], phase).json()["comparison"]
    for team in participants["teams"]:  # rounded like the board's scores: no decoding of labels
        assert team["value"] == phase.shown_score(comparison["values"][team["team"]])
    assert participants["p_values"]["Team Paul"]["Third"] == phase.shown_score(
        comparison["pairwise"]["p_values"]["Team Paul"]["Third"])
    assert [team["team"] for team in participants["teams"]] == names


def test_before_the_worker_computed_them_the_endpoint_says_so(people, phase, team):
    answer = api_statistics(people["participant"], phase)
    assert answer.status_code == 200
    assert answer.json() == {"split": "public", "computed": False, "computed_at": None, "refresh_pending": True,
                             "notes": [], "comparison": None}


def test_visibility_before_the_reveal(people, scored):
    seen = statuses(people, scored)
    for (who, split), (api, page) in seen.items():
        assert api == page, f"{who} {split}: API {api}, page {page}"
    assert {who for (who, split), (api, _) in seen.items() if split == "private" and api == 200} == {
        "organizer", "co_organizer", "staff"}
    assert all(api == 200 for (who, split), (api, _) in seen.items() if split == "public")


def test_visibility_once_the_private_board_is_revealed(people, scored):
    phase = scored
    phase.ends_at = timezone.now() - timedelta(minutes=1)
    phase.starts_at = phase.ends_at - timedelta(days=2)
    phase.save()
    phase.reveal_private()
    refresh_leaderboards(phase.pk)
    seen = statuses(people, phase)
    assert all(api == page == 200 for api, page in seen.values()), seen
    assert api_statistics(None, phase, Split.PRIVATE).json()["comparison"]["teams"]


def test_a_participants_only_board_keeps_its_statistics_from_others(people, scored):
    phase = scored
    phase.visibility = phase.Visibility.PARTICIPANTS
    phase.save()
    seen = statuses(people, phase)
    for (who, split), (api, page) in seen.items():
        assert api == page, f"{who} {split}: API {api}, page {page}"
    assert {who for (who, split), (api, _) in seen.items() if split == "public" and api == 200} == {
        "rival", "participant", "organizer", "co_organizer", "staff"}
    assert "comparison" not in api_statistics(people["outsider"], phase).json()


def test_the_endpoints_are_in_the_api_schema(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for path in ("/api/v1/leaderboards/{phase_pk}/statistics/", "/api/v1/leaderboards/{phase_pk}/private/statistics/"):
        ok = schema["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok == {"$ref": "#/components/schemas/BoardStatistics"}
    comparison = schema["components"]["schemas"]["Comparison"]["properties"]
    assert {"p_values", "significant", "kendall_tau", "ranks_by_method", "teams"} <= set(comparison)
    board = schema["paths"]["/api/v1/leaderboards/{phase_pk}/"]["get"]["responses"]["200"]
    assert {"Last-Modified", "Mica-Refresh-Pending"} <= set(board["headers"])
