"""Submissions: what a team sent, its validation, and who sent it.

A submission is not its scoring: once its file is valid it is *accepted*, and each scoring of
it (the public and the private part of the test set, a re-score on a corrected truth) is an
`Evaluation` (mica.evaluations). Its own status moves received → validating → accepted |
invalid (| failed, when validation itself broke), through the leased-work machinery of core.
"""

import uuid
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

import evaluator
from mica.core.models import LeasedWork, StatusEvent, leased_work_moves
from mica.core.storage import local_path, private_storage
from mica.leaderboards.models import leaderboards_changed


def _submission_path(submission, filename):
    # The participant's file name never becomes part of a path on disk.
    return f"submissions/{submission.phase_id}/{submission.uuid}{submission.phase.challenge.submission_suffix}"


class SubmissionQuerySet(models.QuerySet):
    def in_progress(self):
        """Being validated, or accepted with its public scoring not yet ended (the private
        scoring is left out: its timing must tell the team nothing)."""
        from mica.evaluations.models import Evaluation

        busy = Evaluation.objects.filter(
            submission=models.OuterRef("pk"), split="public", status__in=Evaluation.UNFINISHED
        )
        return self.filter(
            Q(status__in=Submission.VALIDATION_UNFINISHED) | (Q(status=Submission.Status.ACCEPTED) & models.Exists(busy))
        )

    def with_team_view(self):
        """Ready for :meth:`Submission.team_view` with a fixed number of queries, however many
        rows: each row's phase and team joined, and its public evaluation on its test set's
        latest truth fetched in one more query for all rows."""
        from mica.challenges.models import TruthVersion
        from mica.evaluations.models import Evaluation

        latest = TruthVersion.objects.filter(test_set=models.OuterRef("submission__phase__test_set")).order_by("-number")
        current_public = Evaluation.objects.filter(split="public", truth_version=models.Subquery(latest.values("pk")[:1]))
        return self.select_related("phase__challenge", "phase__test_set", "team").prefetch_related(
            models.Prefetch("evaluations", queryset=current_public, to_attr="current_public_evaluations"))

    def passed(self):
        """Accepted submissions with a successful public evaluation (a sanity check passed)."""
        return self.filter(status=Submission.Status.ACCEPTED, evaluations__split="public",
                           evaluations__status="succeeded").distinct()


class Submission(LeasedWork):
    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        VALIDATING = "validating", "Validating"
        ACCEPTED = "accepted", "Accepted"
        INVALID = "invalid", "Invalid"
        FAILED = "failed", "Failed"

    TRANSITIONS = leased_work_moves(Status.RECEIVED, Status.VALIDATING, Status.FAILED, Status.ACCEPTED, Status.INVALID)
    WAITING, RUNNING, FAILED = Status.RECEIVED, Status.VALIDATING, Status.FAILED
    VALIDATION_UNFINISHED = [Status.RECEIVED, Status.VALIDATING]

    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    phase = models.ForeignKey("challenges.Phase", on_delete=models.PROTECT, related_name="submissions")
    # None for an organizer's baseline, which is shown marked and unranked.
    team = models.ForeignKey("challenges.Team", on_delete=models.PROTECT, related_name="submissions",
                             null=True, blank=True)
    is_baseline = models.BooleanField(default=False)
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    # Empty only while a container's run (mica.algorithms) has not yet written the predictions.
    file = models.FileField(storage=private_storage, upload_to=_submission_path, max_length=300, blank=True)
    original_filename = models.CharField(max_length=255)
    comment = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RECEIVED)
    problems = models.JSONField(default=list, blank=True, help_text="What validation found, each with its place.")
    selected = models.BooleanField(default=False, help_text="Chosen by the team for the final ranking.")

    objects = SubmissionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["phase", "team", "created_at"]),
            models.Index(fields=["status", "lease_expires_at"]),  # the sweep's lookups of unfinished work
        ]
        constraints = [
            models.CheckConstraint(condition=Q(is_baseline=True) | Q(team__isnull=False), name="a_team_or_a_baseline")
        ]

    def __str__(self):
        return f"Submission {self.pk} by {self.team or 'the organizers'} ({self.status})"

    def get_absolute_url(self):
        return reverse("submissions:detail", args=[self.uuid])

    @classmethod
    def task(cls):
        from .tasks import validate_submission

        return validate_submission

    def dispatch(self):
        # A container's submission has no file until its run writes one: the run is the work
        # in the outbox, and it sends this row's validation once the predictions are stored.
        if not self.file:
            return False
        return super().dispatch()

    @classmethod
    def create(cls, *, phase, user, uploaded_file, comment="", baseline=False):
        """Checks the rules and stores the submission; raises ValidationError naming what is
        wrong, and then nothing is stored.

        A small CSV is validated at once, so the answer names its problems; anything larger
        (a 150,000-row CSV, a .zip of masks) is validated by a task on the ``cpu`` queue while
        the submission shows "validating". Either way the same check runs: `problems_in`.
        """
        challenge = phase.challenge
        if uploaded_file.size == 0:
            raise ValidationError(f"{uploaded_file.name}: the file is empty (0 bytes).")
        if uploaded_file.size > settings.MICA_MAX_SUBMISSION_BYTES:
            raise ValidationError(
                f"{uploaded_file.name}: {uploaded_file.size} bytes is over the limit of "
                f"{settings.MICA_MAX_SUBMISSION_BYTES} bytes."
            )
        team = None if baseline else challenge.team_of(user)
        if baseline and not challenge.is_organizer(user):
            raise ValidationError("Only organizers post baselines.")
        submission = cls(phase=phase, team=team, is_baseline=baseline, submitted_by=user, comment=comment,
                         original_filename=uploaded_file.name[:255])
        submission.file.save("predictions", uploaded_file, save=False)
        try:
            inline = not challenge.takes_masks and uploaded_file.size <= settings.MICA_INLINE_VALIDATION_BYTES
            if inline:
                problems = submission.problems_in()
                if problems:
                    raise ValidationError(problems)
            with transaction.atomic():
                if not baseline:
                    if team is not None:
                        # Locking the team row serialises a team's concurrent uploads, so no
                        # limit can be overrun by two requests at once.
                        type(team).objects.select_for_update().get(pk=team.pk)
                    problem = phase.submission_problem(team)
                    if problem:
                        raise ValidationError(problem)
                if inline:
                    submission.status = cls.Status.ACCEPTED
                    submission.save()
                    submission.record_move("", cls.Status.ACCEPTED, "Uploaded; the file is valid.")
                    submission.queue_evaluations()
                else:
                    submission.save()
                    submission.record_move("", cls.Status.RECEIVED, "Uploaded; waiting for validation.")
                    submission.dispatch_on_commit()
        except BaseException:
            submission.file.delete(save=False)
            raise
        return submission

    # A request killed between storing its file and committing its row leaves the file alone.
    ORPHAN_AGE = timedelta(hours=1)

    @classmethod
    def sweep(cls, now=None):
        super().sweep(now)
        cls.remove_orphan_files(now)

    @classmethod
    def remove_orphan_files(cls, now=None):
        """Deletes files under submissions/ that no row owns, once older than ORPHAN_AGE."""
        storage = private_storage()
        if not storage.exists("submissions"):
            return
        cutoff = (now or timezone.now()) - cls.ORPHAN_AGE
        for folder in storage.listdir("submissions")[0]:
            paths = {f"submissions/{folder}/{name}" for name in storage.listdir(f"submissions/{folder}")[1]}
            owned = set(cls.objects.filter(file__in=paths).values_list("file", flat=True))
            for path in paths - owned:
                if storage.get_modified_time(path) < cutoff:
                    storage.delete(path)

    def problems_in(self):
        """Every problem of the stored file, each naming the participant's file and its place."""
        version = self.phase.test_set.latest_version
        try:
            with local_path(self.file) as path:
                evaluator.validate(self.phase.challenge.task_type, path, truth_info=version.info,
                                   options=self.phase.metric_options, name=self.original_filename)
        except evaluator.SubmissionInvalid as invalid:
            return [str(problem) for problem in invalid.problems] or [str(invalid)]
        except ValueError as error:
            return [str(error)]
        return []

    def queue_evaluations(self, truth_version=None):
        """One evaluation per part of the test set, against the given (default: latest) truth."""
        from mica.evaluations.models import Evaluation

        return Evaluation.queue_for(self, truth_version or self.phase.test_set.latest_version)

    def record_move(self, from_status, to_status, reason):
        SubmissionEvent.objects.create(submission=self, from_status=from_status, to_status=to_status, reason=reason)
        from mica.notifications.events import submission_moved

        submission_moved(self, to_status, reason)

    def watchers(self):
        from mica.notifications.models import organizers_of

        return organizers_of(self.phase.challenge)

    def can_be_read_by(self, user):
        if self.phase.challenge.is_organizer(user):
            return True
        return self.team is not None and self.team.has_member(user)

    def set_selected(self, selected, user):
        """A team member selects (or unselects) this submission for the final ranking."""
        phase = self.phase
        if not (self.team and self.team.has_member(user)):
            raise ValidationError("Only the team's members select its submissions.")
        if phase.selection != phase.Selection.SELECTED:
            raise ValidationError("This phase ranks every team's best or latest submission; nothing to select.")
        if phase.has_ended():
            raise ValidationError("The phase has ended; the selection is final.")
        if self.status != self.Status.ACCEPTED:
            raise ValidationError("Only a valid submission can be selected.")
        with transaction.atomic():
            type(self.team).objects.select_for_update().get(pk=self.team_id)
            if selected:
                chosen = phase.submissions.filter(team=self.team, selected=True).exclude(pk=self.pk).count()
                if chosen >= phase.max_selected:
                    raise ValidationError(
                        f"Your team has selected {chosen} submissions, the most this phase counts; unselect one first."
                    )
            type(self).objects.filter(pk=self.pk).update(selected=selected)
            leaderboards_changed(phase)
        self.selected = selected

    def cancel_scoring(self, user):
        """Cancels the unfinished evaluations. A team may cancel only while its public scoring
        is unfinished (then both parts are cancelled), so the answer tells it nothing about the
        private part; organizers cancel at any time."""
        from mica.evaluations.models import Evaluation

        if not self.phase.challenge.is_organizer(user):
            public = self.public_evaluation()
            if public is None or public.status not in Evaluation.UNFINISHED:
                raise ValidationError("This submission's scoring has ended; nothing to cancel.")
        for evaluation in self.evaluations.filter(status__in=Evaluation.UNFINISHED):
            evaluation.cancel(f"Cancelled by {user.username}.")

    def delete_files(self):
        self.file.delete(save=False)

    # -- what a team sees: the public part only --------------------------------------------
    def public_evaluation(self):
        """The evaluation on the public part against the test set's latest truth, if any."""
        if hasattr(self, "current_public_evaluations"):  # fetched for many rows at once (with_team_view)
            return next(iter(self.current_public_evaluations), None)
        return self.evaluations.filter(split="public", truth_version=self.phase.test_set.latest_version).first()

    def team_view(self):
        """Status, reason and scores as the team sees them: the public evaluation alone, its
        scores rounded to the phase's precision (none in a blind phase), no per-case values and
        no count of cases, so nothing tells the team about the private part."""
        phase = self.phase
        view = {"status": self.status, "status_display": self.get_status_display(), "reason": self.status_reason,
                "problems": self.problems, "metrics": None}
        evaluation = self.public_evaluation() if self.status == self.Status.ACCEPTED else None
        if evaluation is None:
            return view
        view.update(status=evaluation.status, status_display=evaluation.get_status_display(),
                    reason=evaluation.status_reason)
        if evaluation.status == evaluation.Status.SUCCEEDED and not phase.blind:
            metrics = evaluation.metrics or {}
            view["metrics"] = {}
            for name in phase.metrics:
                view["metrics"][name] = phase.shown_score(metrics.get(name))
                interval = metrics.get(f"{name}_ci")
                if interval:
                    view["metrics"][f"{name}_ci"] = [phase.shown_score(value) for value in interval]
        return view


class SubmissionEvent(StatusEvent):
    submission = models.ForeignKey(Submission, on_delete=models.CASCADE, related_name="events")
    from_status = models.CharField(max_length=12, choices=Submission.Status.choices, blank=True)
    to_status = models.CharField(max_length=12, choices=Submission.Status.choices)
