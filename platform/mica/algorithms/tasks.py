"""Running a container on a test set, on the ``gpu`` queue."""

import logging
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import transaction
from django.utils import timezone

import evaluator
from evaluator import containers
from mica.core.storage import local_path
from mica.core.tasks import mica_task
from mica.evaluations.models import Evaluation

from . import metric_containers
from .inputs import collect_predictions, prepare_input
from .models import MAX_IMAGE_FILES, MIB, UNPACKED_PER_ARCHIVE_BYTE, InferenceRun

logger = logging.getLogger(__name__)

OUTCOME_REASONS = {
    "failed": "The container exited with code {exit_code}.",
    "timeout": "The container did not finish within {limit:g} seconds.",
    "memory": "The container used more than its {memory} MiB of memory.",
    "pids": "The container started more processes than allowed.",
    "output": "The container's outputs were deleted: {reason}.",
}


@mica_task(queue="gpu")
def run_inference(run_pk):
    run = (InferenceRun.objects.select_related("algorithm__image", "phase__challenge", "phase__test_set",
                                               "submission", "truth_version").filter(pk=run_pk).first())
    if run is None or not run.claim("Running the container."):
        return  # ended, or held by a live lease of another worker
    try:
        with run.lease_held(), tempfile.TemporaryDirectory(prefix="mica-run-") as work:
            reason = _run_in_sandbox(run, Path(work))
    except Exception:
        logger.exception("inference run %s failed", run.pk)
        run.fail("The run failed with an internal error; the organizers have been told.")
        return
    if reason:
        run.fail(reason)


def _run_in_sandbox(run, work):
    """One run, start to end; returns why it failed, or None once its outcome is recorded."""
    phase = run.phase
    try:
        with local_path(run.algorithm.image.file) as archive:
            image = containers.load_image(
                archive, work / "image",
                max_unpacked_bytes=phase.container_max_mb * MIB * UNPACKED_PER_ARCHIVE_BYTE, max_files=MAX_IMAGE_FILES)
    except containers.ImageRefused as refused:
        return f"The image was refused: {refused}"
    input_dir, output_dir = work / "input", work / "output"
    input_dir.mkdir()
    output_dir.mkdir()
    prepare_input(phase, input_dir)
    limits = run.limits()
    outcome = containers.run(image, input_dir, output_dir, limits=limits, backend=settings.MICA_CONTAINER_BACKEND)
    run.record_sandbox(outcome)
    if outcome.status != "succeeded":
        template = OUTCOME_REASONS.get(outcome.status, "The container failed: {reason}")
        return template.format(exit_code=outcome.exit_code, limit=limits.wall_seconds,
                               memory=phase.container_memory_mb, reason=outcome.reason)
    try:
        predictions = collect_predictions(phase.challenge, output_dir, work)
    except ValidationError as error:
        return " ".join(error.messages)
    if predictions.stat().st_size > settings.MICA_MAX_SUBMISSION_BYTES:
        return (f"The predictions are {predictions.stat().st_size} bytes, over the limit of "
                f"{settings.MICA_MAX_SUBMISSION_BYTES} bytes.")
    if run.submission_id:
        return _hand_to_submission(run, predictions)
    return _score_rerun(run, predictions)


def _hand_to_submission(run, predictions):
    """The outputs become the submission's file; its validation and scoring then run as for
    an uploaded file."""
    submission = run.submission
    with predictions.open("rb") as stream:
        submission.file.save("predictions", File(stream), save=False)
    with transaction.atomic():
        type(submission).objects.filter(pk=submission.pk).update(file=submission.file.name)
        if not run.finish(InferenceRun.Status.SUCCEEDED, "The container wrote its predictions.",
                          completed_at=timezone.now()):
            transaction.set_rollback(True)
            submission.file.delete(save=False)
            return None
        submission.dispatch_on_commit()
    return None


def _score_rerun(run, predictions):
    phase, truth = run.phase, run.truth_version
    task = phase.challenge.task_type
    try:
        evaluator.validate(task, str(predictions), truth_info=truth.info, options=phase.metric_options,
                           name="the container's predictions")
        with local_path(truth.file) as truth_path:
            result = evaluator.score(task, truth_path, str(predictions), phase.metric_options,
                                     name="the container's predictions")
    except evaluator.SubmissionInvalid as invalid:
        problems = [str(problem) for problem in invalid.problems] or [str(invalid)]
        return "The predictions are not valid: " + "; ".join(problems[:5])
    run.finish(InferenceRun.Status.SUCCEEDED, "Scored.", result=result, completed_at=timezone.now())
    return None


@mica_task(queue="metrics")
def score_with_metric_container(evaluation_pk):
    """An evaluation of a phase whose organizers supplied a metric container: the container
    scores it in the sandbox, and its checked output is recorded like the evaluator's."""
    evaluation = (Evaluation.objects.select_related("submission__phase__metric_container__image",
                                                    "submission__phase__challenge", "truth_version__test_set")
                  .filter(pk=evaluation_pk).first())
    if evaluation is None or not evaluation.claim("Scoring with the organizers' metric container."):
        return
    container = evaluation.submission.phase.metric_container
    try:
        with evaluation.lease_held(), tempfile.TemporaryDirectory(prefix="mica-metrics-") as work:
            work = Path(work)
            with local_path(container.image.file) as archive:
                image = containers.load_image(archive, work / "image",
                                              max_unpacked_bytes=container.image.size_bytes * UNPACKED_PER_ARCHIVE_BYTE,
                                              max_files=MAX_IMAGE_FILES)
            input_dir, case_ids = metric_containers.prepare_input(evaluation, work)
            output_dir = work / "output"
            output_dir.mkdir()
            limits = container.limits()
            outcome = containers.run(image, input_dir, output_dir, limits=limits,
                                     backend=settings.MICA_CONTAINER_BACKEND)
            if outcome.status != "succeeded":
                template = OUTCOME_REASONS.get(outcome.status, "The container failed: {reason}")
                reason = template.format(exit_code=outcome.exit_code, limit=limits.wall_seconds,
                                         memory=evaluation.submission.phase.container_memory_mb, reason=outcome.reason)
                evaluation.fail(f"The organizers' metric container failed: {reason}")
                return
            result = metric_containers.read_metrics(output_dir, case_ids, container.declared)
    except containers.ImageRefused as refused:
        evaluation.fail(f"The organizers' metric container was refused: {refused}")
    except metric_containers.MetricsInvalid as invalid:
        evaluation.fail(f"The organizers' metric container wrote no valid scores: {invalid}")
    except Exception:
        logger.exception("metric container scoring of evaluation %s failed", evaluation.pk)
        evaluation.fail("Scoring failed with an internal error; the organizers have been told.")
    else:
        evaluation.record_result(result)
