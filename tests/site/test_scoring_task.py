"""The scoring task's body, run in this process; a real worker runs it in test_worker.py."""

from datetime import timedelta

import pytest
from django.test import override_settings
from django.utils import timezone
from sklearn.metrics import roc_auc_score

from mica.core.models import IllegalMove
from mica.submissions.models import Status, Submission
from mica.submissions.tasks import fail_stuck_submissions, score_submission

from .conftest import csv_bytes, make_scores, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def submission(phase, team, participant, predictions):
    return Submission.create(phase=phase, user=participant, uploaded_file=upload("p.csv", predictions))


def test_it_scores_with_the_auc_scikit_learn_gives(submission, truth):
    case_ids, labels = truth
    score_submission(submission.pk)
    submission.refresh_from_db()
    assert submission.status == Status.SCORED
    assert submission.primary_score == pytest.approx(roc_auc_score(labels, make_scores(labels)), abs=1e-9)
    assert submission.result["n_cases"] == len(case_ids)
    assert submission.result["missing_cases"] == 0
    assert [e.to_status for e in submission.events.all()] == [Status.QUEUED, Status.SCORING, Status.SCORED]


def test_it_scores_missing_cases_as_failures(phase, team, participant, truth):
    case_ids, labels = truth
    perfect = [float(y) for y in labels]
    kept = len(case_ids) // 2
    submission = Submission.create(
        phase=phase,
        user=participant,
        uploaded_file=upload("p.csv", csv_bytes(["case_id", "score"], zip(case_ids[:kept], perfect[:kept]))),
    )
    score_submission(submission.pk)
    submission.refresh_from_db()
    # A missing positive ranks below every case and a missing negative above every case.
    worst = [-1.0 if y else 2.0 for y in labels[kept:]]
    assert submission.result["missing_cases"] == len(case_ids) - kept
    assert submission.primary_score == pytest.approx(roc_auc_score(labels, perfect[:kept] + worst), abs=1e-9)


def test_it_does_nothing_for_a_submission_already_scored(submission):
    score_submission(submission.pk)
    submission.refresh_from_db()
    events_before = submission.events.count()
    score_submission(submission.pk)  # a second delivery of the same message
    assert submission.events.count() == events_before


def test_it_scores_again_a_submission_left_scoring_by_a_dead_worker(submission):
    assert submission.start_scoring()  # the dead worker's claim
    score_submission(submission.pk)  # the message delivered again
    submission.refresh_from_db()
    assert submission.status == Status.SCORED
    assert submission.scoring_attempts == 2


@override_settings(MICA_SCORING_MAX_ATTEMPTS=2)
def test_it_fails_a_submission_that_keeps_killing_workers(submission):
    submission.start_scoring()
    submission.start_scoring()
    score_submission(submission.pk)
    submission.refresh_from_db()
    assert submission.status == Status.FAILED
    assert "2 times" in submission.status_reason


def test_it_allows_only_the_legal_moves(submission):
    with pytest.raises(IllegalMove):
        submission.move(Status.SCORED, "skipping scoring")
    submission.fail("test")
    with pytest.raises(IllegalMove):
        submission.move(Status.SCORING)


def test_a_move_loses_against_a_concurrent_one(submission):
    stale = Submission.objects.get(pk=submission.pk)
    assert submission.start_scoring()
    assert stale.status == Status.QUEUED
    assert stale.start_scoring() is False  # the row is no longer queued
    assert submission.events.filter(to_status=Status.SCORING).count() == 1


@override_settings(MICA_SCORING_TIME_LIMIT=600)
def test_the_sweep_fails_submissions_stuck_past_the_limit(submission, phase, team, participant, predictions):
    fresh = Submission.create(phase=phase, user=participant, uploaded_file=upload("p.csv", predictions))
    Submission.objects.filter(pk=submission.pk).update(status_changed_at=timezone.now() - timedelta(minutes=11))
    fail_stuck_submissions()
    submission.refresh_from_db()
    fresh.refresh_from_db()
    assert submission.status == Status.FAILED
    assert submission.status_reason == "Scoring did not finish within 10 minutes."
    assert fresh.status == Status.QUEUED
