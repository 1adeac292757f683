"""Regression and detection challenges go through the same submission path as classification."""

from datetime import timedelta

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from sklearn.metrics import mean_absolute_error

from mica.challenges.models import Challenge, Phase, Team, TestSet
from mica.leaderboards.ranking import leaderboard
from mica.submissions.models import Status, Submission
from mica.submissions.tasks import score_submission

from .conftest import csv_bytes, make_user, upload

pytestmark = pytest.mark.django_db


def open_challenge(organizer, task_type, primary_metric, truth_header, truth_rows):
    challenge = Challenge.objects.create(slug=task_type, title=task_type, task_type=task_type,
                                         primary_metric=primary_metric, created_by=organizer)
    test_set = TestSet.create_from_upload(challenge, "Hidden", upload("truth.csv", csv_bytes(truth_header, truth_rows)))
    now = timezone.now()
    return Phase.objects.create(challenge=challenge, name="Final", test_set=test_set,
                                starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1))


def team_member(challenge, name):
    user = make_user(name)
    challenge.register(user)
    Team.create_for(challenge, user, f"Team {name}")
    return user


def test_a_bone_age_challenge_ranks_the_lowest_mae_first(organizer):
    rng = np.random.default_rng(7)
    ages = rng.uniform(10, 220, 60).round(1)
    case_ids = [f"hand-{i}" for i in range(60)]
    phase = open_challenge(organizer, "regression", "mae", ["case_id", "value"], zip(case_ids, ages))
    assert phase.test_set.predictions_header == "case_id,value"
    maes = {}
    for name, noise in (("close", 3.0), ("far", 20.0)):
        guesses = (ages + rng.normal(0, noise, 60)).round(2)
        submission = Submission.create(phase=phase, user=team_member(phase.challenge, name),
                                       uploaded_file=upload("p.csv", csv_bytes(["case_id", "value"], zip(case_ids, guesses))))
        score_submission(submission.pk)
        submission.refresh_from_db()
        assert submission.status == Status.SCORED, submission.status_reason
        maes[name] = mean_absolute_error(ages, guesses)
        assert submission.primary_score == pytest.approx(maes[name], abs=1e-9)
    assert [row.team for row in leaderboard(phase)] == ["Team close", "Team far"]


def test_a_pneumonia_detection_challenge_is_scored_by_map(organizer):
    truth = [["p1", 10, 10, 50, 50, 1], ["p2", "", "", "", "", 0], ["p3", 100, 100, 40, 60, 1]]
    phase = open_challenge(organizer, "detection", "map", ["patientId", "x", "y", "width", "height", "Target"], truth)
    assert phase.test_set.predictions_header == "patientId,PredictionString"
    predictions = [["p1", "0.9 10 10 50 50"], ["p2", ""], ["p3", "0.8 300 300 10 10"]]
    submission = Submission.create(
        phase=phase, user=team_member(phase.challenge, "boxes"),
        uploaded_file=upload("p.csv", csv_bytes(["patientId", "PredictionString"], predictions)),
    )
    score_submission(submission.pk)
    submission.refresh_from_db()
    # p1 is a perfect hit (1), p3 a miss (0), p2 has neither truth nor predictions: left out.
    assert submission.primary_score == pytest.approx(0.5)


def test_a_bad_prediction_string_names_its_row(organizer):
    phase = open_challenge(organizer, "detection", "map", ["patientId", "x", "y", "width", "height", "Target"],
                           [["p1", 10, 10, 50, 50, 1]])
    with pytest.raises(ValidationError) as raised:
        Submission.create(phase=phase, user=team_member(phase.challenge, "bad"),
                          uploaded_file=upload("boxes.csv", b"patientId,PredictionString\np1,0.9 10 10 fifty 50\n"))
    assert "boxes.csv, row 2" in " ".join(raised.value.messages)
    assert not Submission.objects.exists()
