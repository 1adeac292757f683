"""The leaderboard page and its ranking rules."""

import pytest
from django.urls import reverse

from mica.challenges.models import Team
from mica.leaderboards.ranking import leaderboard
from mica.submissions.models import Submission
from mica.submissions.tasks import score_submission

from .conftest import csv_bytes, make_scores, make_user, upload

pytestmark = pytest.mark.django_db


def scored_submission(phase, user, truth, signal):
    case_ids, labels = truth
    content = csv_bytes(["case_id", "score"], zip(case_ids, make_scores(labels, signal=signal)))
    submission = Submission.create(phase=phase, user=user, uploaded_file=upload("p.csv", content))
    score_submission(submission.pk)
    submission.refresh_from_db()
    return submission


@pytest.fixture
def second_team(challenge):
    user = make_user("rival")
    challenge.register(user)
    return Team.create_for(challenge, user, "Rivals"), user


def test_it_shows_one_row_per_team_best_first(client, phase, team, participant, second_team, truth):
    weak = scored_submission(phase, participant, truth, signal=0.2)
    strong = scored_submission(phase, participant, truth, signal=3.0)
    rival = scored_submission(phase, second_team[1], truth, signal=1.0)
    rows = leaderboard(phase)
    assert [(r.rank, r.team) for r in rows] == [(1, "Team Paul"), (2, "Rivals")]
    assert rows[0].score == strong.primary_score > rival.primary_score > weak.primary_score
    assert rows[0].n_scored == 2
    assert rows[0].interval == strong.result["metrics"]["auc_ci"]
    assert rows[0].interval[0] <= rows[0].score <= rows[0].interval[1]

    response = client.get(reverse("leaderboards:phase", args=[phase.pk]))
    assert response.status_code == 200
    assert f"{strong.primary_score:.4f}" in response.content.decode()


def test_it_can_show_each_teams_latest_submission(phase, team, participant, truth):
    phase.challenge.leaderboard_selection = "latest"
    phase.challenge.save()
    scored_submission(phase, participant, truth, signal=3.0)
    latest = scored_submission(phase, participant, truth, signal=0.2)
    assert [r.score for r in leaderboard(phase)] == [latest.primary_score]


def test_ties_share_the_best_rank(phase, team, participant, second_team, truth):
    a = scored_submission(phase, participant, truth, signal=1.0)
    b = scored_submission(phase, second_team[1], truth, signal=1.0)
    assert a.primary_score == b.primary_score
    assert [r.rank for r in leaderboard(phase)] == [1, 1]


def test_hidden_submissions_stay_off_the_board(phase, team, participant, truth):
    submission = scored_submission(phase, participant, truth, signal=1.0)
    Submission.objects.filter(pk=submission.pk).update(hidden_from_leaderboard=True)
    assert leaderboard(phase) == []
