"""Validation of large submissions, on the ``cpu`` queue."""

import logging

from django.db import transaction

from mica.core.tasks import mica_task

from .models import Submission

logger = logging.getLogger(__name__)


@mica_task(queue="cpu")
def validate_submission(submission_pk):
    submission = Submission.objects.select_related("phase__challenge", "phase__test_set").filter(pk=submission_pk).first()
    if submission is None or not submission.claim("Validating."):
        return  # ended, or held by a live lease of another worker
    try:
        with submission.lease_held():
            problems = submission.problems_in()
    except Exception:
        logger.exception("validating submission %s failed", submission.pk)
        with transaction.atomic():
            if submission.finish(Submission.Status.FAILED,
                                 "Validation failed with an internal error; the organizers have been told."):
                submission.tell_watchers(submission.status_reason)
        return
    if problems:
        submission.finish(Submission.Status.INVALID, "The file is not valid.", problems=problems)
        return
    with transaction.atomic():
        if submission.finish(Submission.Status.ACCEPTED, "The file is valid."):
            submission.queue_evaluations()
