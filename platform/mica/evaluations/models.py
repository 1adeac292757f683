"""Evaluations: one scoring of one submission on one part of a test set against one version of
its ground truth. Leaderboards read evaluations, never submissions.

An evaluation is leased work (mica.core.models.LeasedWork): queued → running → succeeded |
failed | cancelled, with its events. A re-score after a corrected truth is a `Rescore` job that
queues a new evaluation of every accepted submission against the new version.
"""

import logging
import uuid

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

import evaluator
from mica.challenges.models import Phase, Split
from mica.core.models import LeasedWork, StatusEvent, leased_work_moves
from mica.core.storage import local_path

logger = logging.getLogger(__name__)


class Evaluation(LeasedWork):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Scoring"
        SUCCEEDED = "succeeded", "Scored"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    TRANSITIONS = leased_work_moves(Status.QUEUED, Status.RUNNING, Status.FAILED, Status.SUCCEEDED,
                                    cancelled=Status.CANCELLED)
    WAITING, RUNNING, FAILED = Status.QUEUED, Status.RUNNING, Status.FAILED
    UNFINISHED = [Status.QUEUED, Status.RUNNING]

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    submission = models.ForeignKey("submissions.Submission", on_delete=models.CASCADE, related_name="evaluations")
    split = models.CharField(max_length=10, choices=Split.choices)
    truth_version = models.ForeignKey("challenges.TruthVersion", on_delete=models.PROTECT, related_name="evaluations")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    result = models.JSONField(null=True, blank=True, help_text="The evaluator's output, per-case values included.")
    # The metrics alone, so that a leaderboard never loads per-case values.
    metrics = models.JSONField(null=True, blank=True)
    # Each metric's 95% bootstrap interval ({metric: {"low", "high", "level", "method", "degenerate"}}),
    # computed with the scores (by patient where the test set knows patients), shown on the boards.
    intervals = models.JSONField(null=True, blank=True)
    primary_score = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["submission", "split", "truth_version"], name="one_evaluation_per_part_and_truth")
        ]
        indexes = [
            models.Index(fields=["truth_version", "split", "status"]),
            models.Index(fields=["status", "lease_expires_at"]),
        ]

    def __str__(self):
        return f"Evaluation of submission {self.submission_id} on the {self.split} part ({self.status})"

    def task(self):
        """The evaluator scores on the ``gpu`` queue; a phase whose organizers supplied a metric
        container (mica.algorithms) is scored by it, sandboxed, on the ``metrics`` queue."""
        from .tasks import run_evaluation

        if Phase.objects.filter(submissions=self.submission_id, metric_container__isnull=False).exists():
            from mica.algorithms.tasks import score_with_metric_container

            return score_with_metric_container
        return run_evaluation

    @classmethod
    def queue_for(cls, submission, truth_version):
        """Queues the evaluations of a submission against a truth version, one per part of the
        test set that has cases; those that exist already are left as they are."""
        test_set = truth_version.test_set
        parts = test_set.cases.values_list("split", flat=True).distinct()
        created = []
        for split in sorted(set(parts)):
            evaluation, is_new = cls.objects.get_or_create(submission=submission, split=split, truth_version=truth_version)
            if is_new:
                evaluation.record_move("", cls.Status.QUEUED, "Queued.")
                evaluation.dispatch_on_commit()
                created.append(evaluation)
        return created

    def record_move(self, from_status, to_status, reason):
        EvaluationEvent.objects.create(evaluation=self, from_status=from_status, to_status=to_status, reason=reason)
        from mica.notifications.events import evaluation_moved

        evaluation_moved(self, to_status)

    def watchers(self):
        from mica.notifications.models import organizers_of

        return organizers_of(self.submission.phase.challenge)

    def compute(self):
        """Runs the evaluator on this part of the test set; the submission's file is the very
        file the team uploaded."""
        submission = self.submission
        phase = submission.phase
        with local_path(self.truth_version.file) as truth, local_path(submission.file) as predictions:
            return evaluator.score(
                phase.challenge.task_type, truth, predictions, phase.metric_options,
                case_ids=self.truth_version.test_set.case_ids(self.split), name=submission.original_filename,
                groups=self.patient_groups(), n_resamples=settings.MICA_INTERVAL_RESAMPLES,
            )

    def patient_groups(self):
        """{case id: patient} of this part's cases, so that the intervals resample patients
        (a patient's cases are not independent); None when the organizers gave no patients."""
        cases = self.truth_version.test_set.cases.filter(split=self.split).exclude(patient="")
        return dict(cases.values_list("case_id", "patient")) or None

    def record_result(self, result):
        from mica.leaderboards.models import leaderboards_changed

        phase = self.submission.phase
        with transaction.atomic():
            recorded = self.finish(self.Status.SUCCEEDED, "Scored.", result=result, metrics=result["metrics"],
                                   intervals=result.get("intervals"),
                                   primary_score=result["metrics"].get(phase.primary_metric),
                                   completed_at=timezone.now())
            if recorded:
                leaderboards_changed(phase)
        return recorded

    def fail(self, reason):
        return self.finish(self.Status.FAILED, reason, completed_at=timezone.now())

    @classmethod
    def lacking_details(cls, phase):
        """The pks of the phase's scored evaluations (on the latest truth, which the boards show)
        stored before results kept all that the boards draw: intervals, each case's label and
        score (classification) and the FROC curve (detection, where the truth has boxes)."""
        if Phase.objects.filter(pk=phase.pk, metric_container__isnull=False).exists():
            return []  # the organizers' container scores these, and keeps what it keeps
        scored = cls.objects.filter(submission__phase=phase, truth_version=phase.test_set.latest_version,
                                    status=cls.Status.SUCCEEDED)
        task = phase.challenge.task_type
        lacking = []
        for pk, intervals, first_case, froc, has_curve in scored.annotate(
                has_curve=models.ExpressionWrapper(models.Q(result__has_key="froc_curve"), models.BooleanField()),
        ).values_list("pk", "intervals", "result__per_case__0", "metrics__froc", "has_curve").order_by("pk"):
            labelled = any(key.startswith("label") for key in first_case or {})
            if (intervals is None or (task == "classification" and first_case and not labelled)
                    or (task == "detection" and froc is not None and not has_curve)):
                lacking.append(pk)
        return lacking

    def add_details(self):
        """Scores this evaluation again and keeps the new result, intervals and curves (the
        metrics of the same file and truth); False when it ended otherwise meanwhile."""
        result = self.compute()
        return bool(type(self).objects.filter(pk=self.pk, status=self.Status.SUCCEEDED).update(
            result=result, metrics=result["metrics"], intervals=result.get("intervals"),
            primary_score=result["metrics"].get(self.submission.phase.primary_metric),
        ))

    def cancel(self, reason="Cancelled."):
        if self.status not in self.UNFINISHED:
            return False
        return self.move(self.Status.CANCELLED, reason, completed_at=timezone.now(), lease_expires_at=None)


class EvaluationEvent(StatusEvent):
    evaluation = models.ForeignKey(Evaluation, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=10, choices=Evaluation.Status.choices, blank=True)
    to_status = models.CharField(max_length=10, choices=Evaluation.Status.choices)


class Rescore(LeasedWork):
    """Re-scoring every accepted submission of a test set's phases against a truth version."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Queuing evaluations"
        DONE = "done", "Evaluations queued"
        FAILED = "failed", "Failed"

    TRANSITIONS = leased_work_moves(Status.QUEUED, Status.RUNNING, Status.FAILED, Status.DONE)
    WAITING, RUNNING, FAILED = Status.QUEUED, Status.RUNNING, Status.FAILED
    BATCH = 500

    truth_version = models.OneToOneField("challenges.TruthVersion", on_delete=models.CASCADE, related_name="rescore")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0, help_text="Evaluations this re-score queues.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    @classmethod
    def task(cls):
        from .tasks import run_rescore

        return run_rescore

    @classmethod
    def start(cls, truth_version, user):
        with transaction.atomic():
            rescore = cls.objects.create(truth_version=truth_version, created_by=user)
            rescore.dispatch_on_commit()
        return rescore

    def submissions(self):
        from mica.submissions.models import Submission

        return Submission.objects.filter(
            phase__test_set=self.truth_version.test_set, status=Submission.Status.ACCEPTED
        ).order_by("pk")

    def queue_all(self):
        """Queues the evaluations in batches; running it again after a crash queues only the rest."""
        n_parts = self.truth_version.test_set.cases.values("split").distinct().count()
        type(self).objects.filter(pk=self.pk).update(total=self.submissions().count() * n_parts)
        for submission in self.submissions().select_related("phase__test_set").iterator(chunk_size=self.BATCH):
            with transaction.atomic():
                Evaluation.queue_for(submission, self.truth_version)

    def progress(self):
        """(ended, total) evaluations of this truth version."""
        ended = self.truth_version.evaluations.exclude(status__in=Evaluation.UNFINISHED).count()
        return ended, self.total


class Backfill(LeasedWork):
    """Re-scoring, in place, a phase's evaluations stored before results kept intervals,
    per-case labels and scores, and FROC curves (`Evaluation.lacking_details`), so that its
    boards can draw them. Asked for by an organizer (the statistics page) or the
    `backfill_evaluations` command; a worker on the ``gpu`` queue does it. Running it again
    re-scores only what still lacks them."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Re-scoring"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    TRANSITIONS = leased_work_moves(Status.QUEUED, Status.RUNNING, Status.FAILED, Status.DONE)
    WAITING, RUNNING, FAILED = Status.QUEUED, Status.RUNNING, Status.FAILED
    UNFINISHED = [Status.QUEUED, Status.RUNNING]

    phase = models.ForeignKey("challenges.Phase", on_delete=models.CASCADE, related_name="backfills")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    total = models.PositiveIntegerField(default=0, help_text="Evaluations that lacked the details when it started.")
    done = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+", help_text="Empty when the command asked for it.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]

    @classmethod
    def task(cls):
        from .tasks import run_backfill

        return run_backfill

    @classmethod
    def request(cls, phase, user=None):
        """The backfill of the phase that is queued or running, else a new one; None when no
        evaluation lacks anything."""
        with transaction.atomic():
            waiting = phase.backfills.select_for_update().filter(status__in=cls.UNFINISHED).first()
            if waiting:
                return waiting
            lacking = Evaluation.lacking_details(phase)
            if not lacking:
                return None
            backfill = cls.objects.create(phase=phase, total=len(lacking), created_by=user)
            backfill.dispatch_on_commit()
        return backfill

    def run(self):
        """Re-scores each evaluation that still lacks the details; the boards are refreshed once
        at the end. An evaluation that cannot be scored again is skipped and counted."""
        from mica.leaderboards.models import leaderboards_changed

        skipped = 0
        for evaluation in Evaluation.objects.filter(pk__in=Evaluation.lacking_details(self.phase)).select_related(
                "submission__phase__challenge", "truth_version__test_set"):
            try:
                evaluation.add_details()
            except Exception:
                logger.exception("evaluation %s could not be scored again", evaluation.pk)
                skipped += 1
                continue
            type(self).objects.filter(pk=self.pk).update(done=models.F("done") + 1)
        with transaction.atomic():
            leaderboards_changed(self.phase)
            reason = "Every evaluation has its intervals and curves." if not skipped else (
                f"{skipped} evaluations could not be scored again; the site's logs say why.")
            self.finish(self.Status.DONE, reason)
