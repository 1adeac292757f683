"""Submissions and the one place where their status changes.

A submission's status moves queued → scoring → scored | failed. Every move goes through
`Submission.move`, a conditional update that happens only if the row is still in the status
the caller expects, and leaves a `SubmissionEvent` behind: the history a participant reads.
Visibility on the leaderboard is a field of its own, never a status.
"""

import dataclasses
import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import F
from django.urls import reverse
from django.utils import timezone

import evaluator
from mica.core.archives import delete_with_unpacked, extract_flat, unpacked_path
from mica.core.models import StatusMachine
from mica.core.storage import private_storage


def _submission_path(submission, filename):
    # The participant's file name never becomes part of a path on disk.
    return f"submissions/{submission.phase_id}/{submission.uuid}{submission.phase.challenge.submission_suffix}"


class Status(models.TextChoices):
    QUEUED = "queued", "Queued"
    SCORING = "scoring", "Scoring"
    SCORED = "scored", "Scored"
    FAILED = "failed", "Failed"


# The legal moves, written once. A crashed worker leaves a submission in SCORING; the task
# that is delivered again moves it from SCORING to SCORING, counting one more attempt.
TRANSITIONS = {
    Status.QUEUED: {Status.SCORING, Status.FAILED},
    Status.SCORING: {Status.SCORING, Status.SCORED, Status.FAILED},
    Status.SCORED: set(),
    Status.FAILED: set(),
}


class Submission(StatusMachine):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    phase = models.ForeignKey("challenges.Phase", on_delete=models.PROTECT, related_name="submissions")
    team = models.ForeignKey("challenges.Team", on_delete=models.PROTECT, related_name="submissions")
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    file = models.FileField(storage=private_storage, upload_to=_submission_path)
    original_filename = models.CharField(max_length=255)
    comment = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    TRANSITIONS = TRANSITIONS
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    scoring_attempts = models.PositiveSmallIntegerField(default=0)

    result = models.JSONField(null=True, blank=True, help_text="The evaluator's output, per-case values included.")
    primary_score = models.FloatField(null=True, blank=True)
    hidden_from_leaderboard = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "status_changed_at"])]

    def __str__(self):
        return f"Submission {self.pk} by {self.team} ({self.status})"

    def get_absolute_url(self):
        return reverse("submissions:detail", args=[self.uuid])

    @classmethod
    def create(cls, *, phase, user, uploaded_file, comment=""):
        """Checks the rules and the file, then stores the submission and queues its scoring.

        Raises ValidationError naming what is wrong; on any error nothing is stored.
        """
        from .tasks import score_submission

        challenge = phase.challenge
        team = challenge.team_of(user)
        if team is None:
            raise ValidationError("Join or create a team before submitting.")
        if not phase.is_open():
            raise ValidationError(f"The phase {phase.name!r} is not open for submissions.")
        if uploaded_file.size == 0:
            raise ValidationError(f"{uploaded_file.name}: the file is empty (0 bytes).")
        if uploaded_file.size > settings.MICA_MAX_SUBMISSION_BYTES:
            raise ValidationError(
                f"{uploaded_file.name}: {uploaded_file.size} bytes is over the limit of "
                f"{settings.MICA_MAX_SUBMISSION_BYTES} bytes."
            )

        submission = cls(phase=phase, team=team, submitted_by=user, original_filename=uploaded_file.name[:255],
                         comment=comment)
        submission.file.save("predictions", uploaded_file, save=False)
        stored_name = submission.predictions_path.name
        try:
            if challenge.takes_masks:
                extract_flat(submission.file.path, submission.predictions_path, uploaded_file.name)
            evaluator.validate(challenge.task_type, submission.predictions_path, truth=phase.test_set.truth_path)
            with transaction.atomic():
                # Locking the team row serialises a team's concurrent uploads, so the daily
                # limit cannot be overrun by two requests at once.
                type(team).objects.select_for_update().get(pk=team.pk)
                if phase.remaining_submissions(team) <= 0:
                    raise ValidationError(
                        f"Your team has used its {challenge.daily_submission_limit} submissions for today (UTC)."
                    )
                submission.save()
                SubmissionEvent.objects.create(submission=submission, to_status=Status.QUEUED, reason="Uploaded.")
                transaction.on_commit(lambda: score_submission.delay(submission.pk))
        except ValueError as error:
            submission.delete_files()
            if not isinstance(error, evaluator.SubmissionInvalid):
                raise ValidationError(str(error)) from error
            invalid = error
            # Name the participant's own file, not the path it was stored under.
            problems = [
                str(dataclasses.replace(problem, file=problem.file.replace(stored_name, uploaded_file.name, 1)))
                for problem in invalid.problems
            ]
            raise ValidationError(problems or [str(invalid)]) from invalid
        except BaseException:
            submission.delete_files()
            raise
        return submission

    @property
    def predictions_path(self):
        """What the evaluator reads: the CSV, or the folder the masks were unpacked into."""
        return unpacked_path(self.file) if self.phase.challenge.takes_masks else Path(self.file.path)

    def delete_files(self):
        delete_with_unpacked(self.file)

    def record_move(self, from_status, to_status, reason):
        SubmissionEvent.objects.create(submission=self, from_status=from_status, to_status=to_status, reason=reason)

    def start_scoring(self):
        """Claims the submission for scoring: one more attempt, status SCORING."""
        return self.move(Status.SCORING, "Scoring started.", scoring_attempts=F("scoring_attempts") + 1)

    def record_score(self, result):
        primary = result["metrics"].get(self.phase.challenge.primary_metric)
        return self.move(Status.SCORED, "Scored.", result=result, primary_score=primary)

    def fail(self, reason):
        return self.move(Status.FAILED, reason)

    @classmethod
    def stuck(cls, now=None):
        """Submissions still waiting or scoring past the time limit."""
        now = now or timezone.now()
        limit = now - timedelta(seconds=settings.MICA_SCORING_TIME_LIMIT)
        return cls.objects.filter(status__in=[Status.QUEUED, Status.SCORING], status_changed_at__lt=limit)

    def can_be_read_by(self, user):
        return self.team.has_member(user) or self.phase.challenge.is_organizer(user)


class SubmissionEvent(models.Model):
    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=10, choices=Status.choices, blank=True)
    to_status = models.CharField(max_length=10, choices=Status.choices)
    reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]
