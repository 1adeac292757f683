"""Scoring on the ``gpu`` queue (the CPU is used where no GPU is), backfills of old evaluations too;
re-scoring jobs on ``cpu``."""

import logging

from django.db import transaction

import evaluator
from mica.core.tasks import mica_task

from .models import Backfill, Evaluation, Rescore

logger = logging.getLogger(__name__)


@mica_task(queue="gpu")
def run_evaluation(evaluation_pk):
    evaluation = (
        Evaluation.objects.select_related("submission__phase__challenge", "truth_version__test_set")
        .filter(pk=evaluation_pk).first()
    )
    if evaluation is None or not evaluation.claim("Scoring."):
        return  # ended, cancelled, or held by a live lease of another worker
    try:
        with evaluation.lease_held():
            result = evaluation.compute()
    except evaluator.SubmissionInvalid as invalid:
        evaluation.fail(f"The file is not valid: {invalid}")
    except Exception:
        logger.exception("evaluation %s failed", evaluation.pk)
        with transaction.atomic():
            if evaluation.fail("Scoring failed with an internal error; the organizers have been told."):
                evaluation.tell_watchers(evaluation.status_reason)
    else:
        evaluation.record_result(result)


@mica_task(queue="cpu")
def run_rescore(rescore_pk):
    rescore = Rescore.objects.select_related("truth_version__test_set").filter(pk=rescore_pk).first()
    if rescore is None or not rescore.claim("Queuing evaluations."):
        return
    with rescore.lease_held():
        rescore.queue_all()
    rescore.finish(Rescore.Status.DONE, "Every evaluation is queued.")


@mica_task(queue="gpu")
def run_backfill(backfill_pk):
    """Scores old evaluations again for their intervals and curves (mica.evaluations.models.Backfill)."""
    backfill = Backfill.objects.select_related("phase__challenge", "phase__test_set").filter(pk=backfill_pk).first()
    if backfill is None or not backfill.claim("Re-scoring."):
        return
    with backfill.lease_held():
        backfill.run()
