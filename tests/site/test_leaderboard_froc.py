"""FROC curves of a detection phase: drawn by the leaderboard's worker from the curves the stored
results keep, shown on the statistics page and in the report, and, like the ROC curves, held
from participants until the phase has ended (a team's curve on hidden cases tells it the truth)."""

from datetime import timedelta

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from mica.challenges.models import ChallengeRole, Role, Split
from mica.evaluations.models import Evaluation
from mica.leaderboards.models import LeaderboardSnapshot
from mica.leaderboards.report import build_content
from mica.leaderboards.tasks import draw_leaderboard_plots
from mica.submissions.models import Submission

from .conftest import PASSWORD, csv_bytes, make_user, run_evaluations, upload
from .test_tasks_on_the_site import open_challenge, team_member

pytestmark = pytest.mark.django_db

TRUTH_HEADER = ["patientId", "x", "y", "width", "height", "Target"]
N_IMAGES = 40


def truth_rows():
    """One 50×50 box at (100, 100) on three images in four, none on the rest."""
    return [[f"img{i}", 100, 100, 50, 50, 1] if i % 4 else [f"img{i}", "", "", "", "", 0] for i in range(N_IMAGES)]


def predictions(hit_share, seed):
    """Every image gets false positives far from the box; a `hit_share` of the boxed images a hit."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(N_IMAGES):
        boxes = [f"{rng.uniform(0.0, 0.7):.4f} {rng.uniform(300, 400):.0f} {rng.uniform(300, 400):.0f} 30 30"
                 for _ in range(rng.integers(1, 4))]
        if i % 4 and rng.uniform() < hit_share:
            boxes.append(f"{rng.uniform(0.3, 1.0):.4f} 105 105 40 40")
        rows.append([f"img{i}", " ".join(boxes)])
    return rows


@pytest.fixture
def detection_board(organizer):
    phase = open_challenge(organizer, "detection", "froc", TRUTH_HEADER, truth_rows())
    ChallengeRole.objects.create(challenge=phase.challenge, user=organizer, role=Role.ORGANIZER)
    phase.concurrent_limit = phase.daily_limit = 50
    phase.save()
    for name, hit_share, seed in (("good", 0.9, 1), ("fair", 0.6, 2), ("poor", 0.2, 3)):
        Submission.create(phase=phase, user=team_member(phase.challenge, name), uploaded_file=upload(
            "p.csv", csv_bytes(["patientId", "PredictionString"], predictions(hit_share, seed))))
    for submission in Submission.objects.filter(phase=phase):
        assert run_evaluations(submission)["public"].status == "succeeded"
    draw_leaderboard_plots(phase.pk)
    return phase


def test_the_statistics_page_of_a_detection_phase_shows_the_froc_curves(client, organizer, detection_board):
    phase = detection_board
    statistics = LeaderboardSnapshot.statistics_for(phase, Split.PUBLIC)
    drawn = statistics["plots"]["froc"]
    assert drawn["svg"].lstrip().startswith("<?xml") and "</svg>" in drawn["svg"]
    assert not any("FROC" in note for note in statistics["notes"])
    scored = {e.submission.team.name: e.metrics for e in Evaluation.objects.filter(split=Split.PUBLIC)
              .select_related("submission__team")}
    assert drawn["columns"][:3] == ["team", "froc", "sensitivity at 0.125 FP/image"] and len(drawn["columns"]) == 9
    assert [row[0] for row in drawn["rows"]] == ["Team good", "Team fair", "Team poor"]
    for team, froc, *sensitivities in drawn["rows"]:
        assert froc == pytest.approx(scored[team]["froc"], abs=1e-4)
        assert sensitivities == pytest.approx(scored[team]["froc_sensitivity"], abs=1e-4)
    client.login(username=organizer.username, password=PASSWORD)
    page = client.get(reverse("leaderboards:significance", args=[phase.pk])).content.decode()
    assert 'id="plot-froc"' in page and escape(drawn["summary"]) in page
    assert "<th>sensitivity at 8 FP/image</th>" in page and "Team poor" in page
    svg = client.get(reverse("leaderboards:plot", args=[phase.pk, "froc"]))
    assert svg.status_code == 200 and svg["Content-Type"].startswith("image/svg+xml")
    assert "Team good" in svg.content.decode()  # the legend


def test_a_participant_sees_the_froc_curves_only_once_the_phase_has_ended(client, detection_board):
    phase = detection_board
    summary = LeaderboardSnapshot.statistics_for(phase, Split.PUBLIC)["plots"]["froc"]["summary"]
    client.login(username="good", password=PASSWORD)
    page = client.get(reverse("leaderboards:significance", args=[phase.pk])).content.decode()
    assert 'id="case-plots-held"' in page and 'id="plot-froc"' not in page and escape(summary) not in page
    assert client.get(reverse("leaderboards:plot", args=[phase.pk, "froc"])).status_code == 404
    phase.ends_at = timezone.now() - timedelta(minutes=1)
    phase.save()
    page = client.get(reverse("leaderboards:significance", args=[phase.pk])).content.decode()
    assert 'id="plot-froc"' in page and escape(summary) in page
    assert client.get(reverse("leaderboards:plot", args=[phase.pk, "froc"])).status_code == 200


def test_the_report_of_a_detection_phase_has_the_froc_curves(detection_board):
    content = build_content(detection_board)
    assert [row[0] for row in content["plots"]["froc"]["rows"]] == ["Team good", "Team fair", "Team poor"]
    assert not any("FROC" in note for note in content["notes"])


def test_results_without_a_stored_curve_are_named_in_a_note(detection_board):
    """Results scored before results kept the curve: the plot leaves them out and a note says why."""
    phase = detection_board
    old = Evaluation.objects.get(split=Split.PUBLIC, submission__team__name="Team poor")
    del old.result["froc_curve"]
    old.save(update_fields=["result"])
    content = build_content(phase)
    assert [row[0] for row in content["plots"]["froc"]["rows"]] == ["Team good", "Team fair"]
    assert any("No FROC curve for 1 of the 3 teams" in note for note in content["notes"])


# -- who sees the FROC curves -------------------------------------------------------------------
STANDING_USERS = ["anonymous", "outsider", "other_team", "member", "annotator", "organizer", "co_organizer", "staff"]
ORGANIZERS = {"organizer", "co_organizer", "staff"}


def standing_users(phase, organizer):
    """The eight standing users of the detection challenge ("member" is in Team good)."""
    challenge = phase.challenge
    annotator, co_organizer = make_user("anne"), make_user("corinne")
    ChallengeRole.objects.create(challenge=challenge, user=annotator, role=Role.ANNOTATOR)
    challenge.add_organizer(co_organizer)
    return {"anonymous": None, "outsider": make_user("otto"), "other_team": User.objects.get(username="fair"),
            "member": User.objects.get(username="good"), "annotator": annotator, "organizer": organizer,
            "co_organizer": co_organizer, "staff": make_user("stan", is_staff=True)}


def froc_seen_by(users, phase):
    """{who: (status of the FROC plot, whether the statistics page shows it)}."""
    seen = {}
    for who in STANDING_USERS:
        client = Client()
        if users[who]:
            client.login(username=users[who].username, password=PASSWORD)
        plot = client.get(reverse("leaderboards:plot", args=[phase.pk, "froc"]))
        page = client.get(reverse("leaderboards:significance", args=[phase.pk]))
        assert page.status_code == 200, who
        seen[who] = (plot.status_code, 'id="plot-froc"' in page.content.decode())
    return seen


def test_the_froc_curves_are_the_organizers_until_the_phase_ends_then_everyones(detection_board, organizer):
    phase = detection_board
    users = standing_users(phase, organizer)
    assert froc_seen_by(users, phase) == {
        who: (200, True) if who in ORGANIZERS else (404, False) for who in STANDING_USERS}
    phase.ends_at = timezone.now() - timedelta(minutes=1)
    phase.save()
    assert froc_seen_by(users, phase) == {who: (200, True) for who in STANDING_USERS}


def test_a_participants_only_board_keeps_its_froc_curves_from_others_after_the_end(detection_board, organizer):
    phase = detection_board
    users = standing_users(phase, organizer)
    phase.visibility = phase.Visibility.PARTICIPANTS
    phase.ends_at = timezone.now() - timedelta(minutes=1)
    phase.save()
    expected = {"anonymous": 403, "outsider": 403, "annotator": 403}
    for who in STANDING_USERS:
        client = Client()
        if users[who]:
            client.login(username=users[who].username, password=PASSWORD)
        status = client.get(reverse("leaderboards:plot", args=[phase.pk, "froc"])).status_code
        assert status == expected.get(who, 200), f"{who}: {status}"
