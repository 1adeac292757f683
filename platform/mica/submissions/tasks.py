"""Scoring runs on the ``gpu`` queue; the sweep for stuck submissions on ``cpu``."""

import logging

from django.conf import settings

import evaluator
from mica.core.tasks import mica_task

from .models import Status, Submission

logger = logging.getLogger(__name__)


@mica_task(queue="gpu")
def score_submission(submission_pk):
    submission = Submission.objects.select_related("phase__challenge", "phase__test_set").filter(pk=submission_pk).first()
    if submission is None or submission.status not in (Status.QUEUED, Status.SCORING):
        return  # already finished by an earlier delivery of this task
    if submission.scoring_attempts >= settings.MICA_SCORING_MAX_ATTEMPTS:
        submission.fail(
            f"Scoring stopped its worker {submission.scoring_attempts} times; the organizers have been told."
        )
        return
    if not submission.start_scoring():
        return  # another worker claimed it in the meantime

    challenge = submission.phase.challenge
    try:
        result = evaluator.score(challenge.task_type, submission.phase.test_set.truth_path, submission.predictions_path)
    except evaluator.SubmissionInvalid as invalid:
        submission.fail(f"The file is not valid: {invalid}")
        return
    except Exception:
        logger.exception("scoring submission %s failed", submission.pk)
        submission.fail("Scoring failed with an internal error; the organizers have been told.")
        return
    submission.record_score(result)


@mica_task(queue="cpu")
def fail_stuck_submissions():
    minutes = settings.MICA_SCORING_TIME_LIMIT / 60
    for submission in Submission.stuck():
        submission.fail(f"Scoring did not finish within {minutes:g} minutes.")
