"""Model containers: a team sends an image instead of a predictions file; Mica runs it on the
hidden test images in a sandbox (evaluator.containers) and its outputs become the submission's
predictions, validated and scored like an uploaded file.

An image is stored once, by digest (`ContainerImage`); a team's use of it in a challenge is an
`Algorithm`; each run of it on a test set is an `InferenceRun` (leased work on the ``gpu``
queue). A run for a submission hands its outputs to the submission; an organizer's re-run on
another test set (or a corrected truth) is scored by the run itself, for the transferability page.
"""

import os
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.urls import reverse
from django.utils import timezone

from mica.core.models import LeasedWork, StatusEvent, leased_work_moves
from mica.core.storage import private_storage
from mica.uploads.files import store

MIB = 1024 * 1024
# An image's layers may unpack to more than the archive's size (compressed layers), within reason.
UNPACKED_PER_ARCHIVE_BYTE = 4
MAX_IMAGE_FILES = 200_000
MAX_PIDS = 256


def output_caps(phase):
    """(bytes, files and folders) a run of the phase may leave in /output. The bytes are the
    site's cap alone (MICA_CONTAINER_OUTPUT_BYTES): it guards the worker's disk. The cap on files
    (MICA_CONTAINER_OUTPUT_FILES) never stops a test set larger than it (files_cap_for)."""
    from evaluator.containers.outputs import files_cap_for

    n_cases = phase.test_set.cases.count() if phase.test_set_id else 0
    return settings.MICA_CONTAINER_OUTPUT_BYTES, files_cap_for(settings.MICA_CONTAINER_OUTPUT_FILES, n_cases)


class ContainerImage(models.Model):
    """An image archive (docker-archive or OCI tar), stored once whoever sends it again."""

    digest = models.CharField(max_length=100, unique=True)
    file = models.FileField(storage=private_storage, max_length=300)
    size_bytes = models.PositiveBigIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.short_digest

    @property
    def short_digest(self):
        return self.digest.split(":")[-1][:12]

    @classmethod
    def store(cls, path):
        """Takes the local archive at `path` over (into private storage, or deleted when the
        image is stored already) and returns its row; ValidationError when it is no image archive."""
        from evaluator import containers

        try:
            digest = containers.image_digest(path)
        except (containers.ImageRefused, ValueError, OSError) as error:
            os.remove(path)
            raise ValidationError(f"The file is not a container image archive: {error}") from error
        existing = cls.objects.filter(digest=digest).first()
        if existing:
            os.remove(path)
            return existing
        size = os.path.getsize(path)
        name = f"containers/{digest.replace(':', '-')}.tar"
        storage = private_storage()
        if storage.exists(name) and storage.size(name) == size:
            os.remove(path)  # left by a request that died before its row: the same bytes, by digest
        else:
            name = store(path, name)
        image, created = cls.objects.get_or_create(digest=digest, defaults={"file": name, "size_bytes": size})
        if not created and name != image.file.name:  # the same image arrived twice at once: keep one file
            storage.delete(name)
        return image


class Algorithm(models.Model):
    """A team's container image in a challenge: what the transferability page follows."""

    challenge = models.ForeignKey("challenges.Challenge", on_delete=models.CASCADE, related_name="algorithms")
    team = models.ForeignKey("challenges.Team", on_delete=models.CASCADE, related_name="algorithms")
    image = models.ForeignKey(ContainerImage, on_delete=models.PROTECT, related_name="algorithms")
    name = models.CharField(max_length=255, help_text="The file name it was sent as.")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["team", "image"], name="one_algorithm_per_team_and_image")]

    def __str__(self):
        return f"{self.team.name}: {self.name} ({self.image.short_digest})"

    def get_absolute_url(self):
        return reverse("algorithms:transferability", args=[self.pk])

    def transferability(self):
        """Every scoring of this algorithm: its submissions' evaluations (each part of the test
        set) and the organizers' re-runs (a whole test set), newest first, as plain rows."""
        from mica.evaluations.models import Evaluation

        rows = []
        evaluations = (Evaluation.objects.filter(submission__inference_run__algorithm=self, status="succeeded")
                       .select_related("submission__phase__test_set", "truth_version"))
        for evaluation in evaluations:
            phase = evaluation.submission.phase
            rows.append({"phase": phase, "test_set": phase.test_set, "truth_version": evaluation.truth_version,
                         "part": evaluation.get_split_display(), "result": evaluation.result or {},
                         "link": evaluation.submission.get_absolute_url()})
        for run in self.runs.filter(submission=None, status=InferenceRun.Status.SUCCEEDED).select_related(
                "phase__test_set", "truth_version"):
            rows.append({"phase": run.phase, "test_set": run.phase.test_set, "truth_version": run.truth_version,
                         "part": "Whole test set", "result": run.result or {}, "link": run.get_absolute_url()})
        return rows


class InferenceRun(LeasedWork):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Finished"
        FAILED = "failed", "Failed"

    TRANSITIONS = leased_work_moves(Status.QUEUED, Status.RUNNING, Status.FAILED, Status.SUCCEEDED)
    WAITING, RUNNING, FAILED = Status.QUEUED, Status.RUNNING, Status.FAILED
    UNFINISHED = [Status.QUEUED, Status.RUNNING]

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    algorithm = models.ForeignKey(Algorithm, on_delete=models.CASCADE, related_name="runs")
    # The phase gives the test set, the limits and the prediction format.
    phase = models.ForeignKey("challenges.Phase", on_delete=models.CASCADE, related_name="inference_runs")
    # A team's submission gets this run's outputs as its predictions; a re-run has none.
    submission = models.OneToOneField("submissions.Submission", on_delete=models.CASCADE, null=True, blank=True,
                                      related_name="inference_run")
    # A re-run is scored by itself against this truth version.
    truth_version = models.ForeignKey("challenges.TruthVersion", on_delete=models.CASCADE, null=True, blank=True,
                                      related_name="inference_runs")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    # What the sandbox said (evaluator.containers.RunResult).
    outcome = models.CharField(max_length=12, blank=True, help_text="succeeded, failed, timeout, memory, pids or output.")
    exit_code = models.IntegerField(null=True, blank=True)
    wall_seconds = models.FloatField(null=True, blank=True)
    peak_memory_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    stdout = models.TextField(blank=True)
    stderr = models.TextField(blank=True)
    result = models.JSONField(null=True, blank=True, help_text="A re-run's scores (the evaluator's output).")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Run of {self.algorithm} on {self.phase.name} ({self.status})"

    def get_absolute_url(self):
        return reverse("algorithms:run", args=[self.uuid])

    @classmethod
    def task(cls):
        from .tasks import run_inference

        return run_inference

    @classmethod
    def submit(cls, *, phase, user, algorithm, filename, comment=""):
        """A team's container submission: the submission (counted against the phase's limits
        from now on, with no file yet) and the run that will write its predictions."""
        from mica.submissions.models import Submission

        team = algorithm.team
        with transaction.atomic():
            # The team's row serialises its submissions, as for an uploaded file.
            type(team).objects.select_for_update().get(pk=team.pk)
            problem = phase.submission_problem(team)
            if problem:
                raise ValidationError(problem)
            submission = Submission.objects.create(
                phase=phase, team=team, submitted_by=user, original_filename=filename[:255], comment=comment)
            submission.record_move("", Submission.Status.RECEIVED, "Container received; waiting for its run.")
            run = cls.objects.create(algorithm=algorithm, phase=phase, submission=submission, requested_by=user)
            run.record_move("", cls.Status.QUEUED, "Queued.")
            run.dispatch_on_commit()
        return run

    @classmethod
    def rerun(cls, *, algorithm, phase, truth_version, user):
        """An organizer's run of a stored image on another test set, scored against `truth_version`."""
        if truth_version.test_set_id != phase.test_set_id:
            raise ValidationError("The truth version belongs to another test set than the phase's.")
        with transaction.atomic():
            run = cls.objects.create(algorithm=algorithm, phase=phase, truth_version=truth_version, requested_by=user)
            run.record_move("", cls.Status.QUEUED, f"Re-run by {user.username}.")
            run.dispatch_on_commit()
        return run

    def record_move(self, from_status, to_status, reason):
        InferenceRunEvent.objects.create(run=self, from_status=from_status, to_status=to_status, reason=reason)
        if to_status == self.Status.FAILED and self.submission_id:
            # However the run ended (the container, the sandbox, a sweep after a dead worker),
            # its submission ends with it: never a submission waiting forever.
            submission = self.submission
            if submission.status == submission.Status.RECEIVED:
                submission.move(submission.Status.FAILED, f"The container's run failed: {reason}")

    def too_many_attempts_reason(self):
        return f"The run stopped its worker {self.attempts} times; the organizers have been told."

    # -- what people see --------------------------------------------------------------------
    def can_be_read_by(self, user):
        challenge = self.phase.challenge
        return challenge.is_organizer(user) or (self.submission_id is not None and self.algorithm.team.has_member(user))

    def logs_visible_to(self, user):
        """Organizers always; the team only where the phase allows it (a log can carry test data out)."""
        return self.phase.challenge.is_organizer(user) or self.phase.container_logs_visible

    def limits(self):
        """The sandbox's limits for this run, from its phase."""
        from evaluator.containers import Limits

        phase = self.phase
        n_cases = phase.test_set.cases.count()
        output_bytes, output_files = output_caps(phase)
        return Limits(wall_seconds=min(phase.container_total_seconds, phase.container_case_seconds * max(n_cases, 1)),
                      memory_bytes=phase.container_memory_mb * MIB, cpus=phase.container_cpus, pids=MAX_PIDS,
                      gpu=phase.container_gpu, log_bytes=settings.MICA_CONTAINER_LOG_BYTES,
                      output_bytes=output_bytes, output_files=output_files)

    def record_sandbox(self, outcome):
        type(self).objects.filter(pk=self.pk).update(
            outcome=outcome.status, exit_code=outcome.exit_code, wall_seconds=outcome.wall_seconds,
            peak_memory_bytes=outcome.peak_memory_bytes, stdout=_log_text(outcome.stdout),
            stderr=_log_text(outcome.stderr))

    def fail(self, reason):
        return self.finish(self.Status.FAILED, reason, completed_at=timezone.now())


def _log_text(log):
    """A log as stored: text, cut to MICA_CONTAINER_LOG_BYTES (the sandbox cuts it too)."""
    if isinstance(log, bytes):
        log = log.decode("utf-8", errors="replace")
    limit = settings.MICA_CONTAINER_LOG_BYTES
    return log if len(log) <= limit else log[:limit] + "\n[… cut]"


class InferenceRunEvent(StatusEvent):
    run = models.ForeignKey(InferenceRun, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=10, choices=InferenceRun.Status.choices, blank=True)
    to_status = models.CharField(max_length=10, choices=InferenceRun.Status.choices)


class MetricContainer(models.Model):
    """An organizer's container that scores a phase's predictions (mica.algorithms.metric_containers):
    its declared metrics rank and show like built-in ones."""

    phase = models.OneToOneField("challenges.Phase", on_delete=models.CASCADE, related_name="metric_container")
    image = models.ForeignKey(ContainerImage, on_delete=models.PROTECT, related_name="metric_containers")
    # [{"name", "higher_is_better"}], the first ranks (a list: a JSON object's order is not kept).
    metrics = models.JSONField()
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"Metric container {self.image.short_digest} of {self.phase}"

    @classmethod
    def attach(cls, *, phase, image, metrics, user):
        """Makes the container the phase's scorer; the phase then ranks by its first metric. Refused
        once the phase has scored submissions: their scores would not compare with the new ones."""
        problem = cls.attach_problem(phase)
        if problem:
            raise ValidationError(problem)
        names = [metric["name"] for metric in metrics]
        with transaction.atomic():
            container, _ = cls.objects.update_or_create(
                phase=phase, defaults={"image": image, "metrics": metrics, "uploaded_by": user})
            phase.primary_metric, phase.secondary_metrics = names[0], names[1:]
            phase.save(update_fields=["primary_metric", "secondary_metrics"])
        return container

    @staticmethod
    def attach_problem(phase):
        """Why the phase cannot take a metric container now, or None."""
        from mica.evaluations.models import Evaluation

        if Evaluation.objects.filter(submission__phase=phase).exists():
            return (f"The phase {phase.name!r} has evaluations already; their scores would not compare with the "
                    "container's: add a new phase to score with a metric container.")
        return None

    @property
    def declared(self):
        """{name: higher is better}."""
        return {metric["name"]: metric["higher_is_better"] for metric in self.metrics}

    def limits(self):
        from evaluator.containers import Limits

        phase = self.phase
        return Limits(wall_seconds=phase.container_total_seconds, memory_bytes=phase.container_memory_mb * MIB,
                      cpus=phase.container_cpus, pids=MAX_PIDS, gpu=phase.container_gpu,
                      log_bytes=settings.MICA_CONTAINER_LOG_BYTES, output_bytes=settings.MICA_CONTAINER_OUTPUT_BYTES,
                      output_files=settings.MICA_CONTAINER_OUTPUT_FILES)
