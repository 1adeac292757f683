"""Challenges, their phases and hidden test sets, roles and teams.

Ground truth lives only in a file in private storage. No model field holds a label, so no
serializer, form or template can show one by accident.
"""

import csv
import io
import secrets
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.urls import reverse
from django.utils import timezone

import evaluator
from mica.core.archives import delete_with_unpacked, extract_flat, unpacked_path
from mica.core.storage import private_storage


class Challenge(models.Model):
    class TaskType(models.TextChoices):
        CLASSIFICATION = "classification", "Classification"
        REGRESSION = "regression", "Regression"
        DETECTION = "detection", "Detection"
        SEGMENTATION = "segmentation", "Segmentation"

    class LeaderboardSelection(models.TextChoices):
        BEST = "best", "Each team's best submission"
        LATEST = "latest", "Each team's latest submission"

    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, help_text="Markdown.")
    terms = models.TextField(blank=True, help_text="Markdown. Participants accept these to register.")
    task_type = models.CharField(max_length=20, choices=TaskType.choices)
    primary_metric = models.CharField(max_length=50, default="auc")
    leaderboard_selection = models.CharField(
        max_length=10, choices=LeaderboardSelection.choices, default=LeaderboardSelection.BEST
    )
    daily_submission_limit = models.PositiveIntegerField(default=5)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("challenges:detail", args=[self.slug])

    def clean(self):
        known = evaluator.METRICS.get(self.primary_metric)
        if known is None or known.task != self.task_type:
            raise ValidationError(
                {"primary_metric": f"{self.primary_metric!r} is not a metric of {self.task_type} tasks"}
            )

    @property
    def takes_masks(self):
        """Segmentation truths and predictions are .zip archives of mask files; the rest CSV."""
        return self.task_type == self.TaskType.SEGMENTATION

    @property
    def submission_suffix(self):
        return ".zip" if self.takes_masks else ".csv"

    @property
    def primary_metric_higher_is_better(self):
        return evaluator.METRICS[self.primary_metric].higher_is_better

    def role_of(self, user):
        """The set of roles the user holds in this challenge (empty for anonymous users)."""
        if not user.is_authenticated:
            return set()
        return set(self.roles.filter(user=user).values_list("role", flat=True))

    def is_organizer(self, user):
        return user.is_authenticated and (user.is_staff or Role.ORGANIZER in self.role_of(user))

    def is_participant(self, user):
        return Role.PARTICIPANT in self.role_of(user)

    def register(self, user):
        """Makes the user a participant; calling it again changes nothing."""
        role, _ = ChallengeRole.objects.get_or_create(
            challenge=self, user=user, role=Role.PARTICIPANT, defaults={"accepted_terms_at": timezone.now()}
        )
        return role

    def team_of(self, user):
        if not user.is_authenticated:
            return None
        membership = TeamMembership.objects.filter(challenge=self, user=user).select_related("team").first()
        return membership.team if membership else None


class Role(models.TextChoices):
    ORGANIZER = "organizer", "Organizer"
    PARTICIPANT = "participant", "Participant"
    ANNOTATOR = "annotator", "Annotator"


class ChallengeRole(models.Model):
    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="roles")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="challenge_roles")
    role = models.CharField(max_length=20, choices=Role.choices)
    accepted_terms_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["challenge", "user", "role"], name="one_role_of_a_kind")]

    def __str__(self):
        return f"{self.user} is {self.role} of {self.challenge}"


def _new_join_code():
    return secrets.token_urlsafe(9)


class Team(models.Model):
    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="teams")
    name = models.CharField(max_length=100)
    # Members share this code with the people they invite; knowing it is what lets one join.
    join_code = models.CharField(max_length=20, default=_new_join_code, unique=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["challenge", "name"], name="team_names_unique_per_challenge")]
        ordering = ["name"]

    def __str__(self):
        return self.name

    @classmethod
    def create_for(cls, challenge, user, name):
        """Creates a team with the user as its first member."""
        if not challenge.is_participant(user):
            raise ValidationError("Register for the challenge before creating a team.")
        if challenge.team_of(user):
            raise ValidationError("You are already in a team of this challenge.")
        if cls.objects.filter(challenge=challenge, name__iexact=name).exists():
            raise ValidationError(f"A team named {name!r} already exists in this challenge.")
        with transaction.atomic():
            team = cls.objects.create(challenge=challenge, name=name, created_by=user)
            TeamMembership.objects.create(challenge=challenge, team=team, user=user)
        return team

    def add_member(self, user):
        if not self.challenge.is_participant(user):
            raise ValidationError("Register for the challenge before joining a team.")
        if self.challenge.team_of(user):
            raise ValidationError("You are already in a team of this challenge.")
        return TeamMembership.objects.create(challenge=self.challenge, team=self, user=user)

    def has_member(self, user):
        return user.is_authenticated and self.memberships.filter(user=user).exists()


class TeamMembership(models.Model):
    # The challenge is repeated here so that the database itself keeps a user in one team per challenge.
    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="+")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="team_memberships")
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["challenge", "user"], name="one_team_per_challenge")]


class TestSet(models.Model):
    """Cases whose ground truth participants never see."""

    __test__ = False  # not a pytest test class, despite its name

    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="test_sets")
    name = models.CharField(max_length=100)
    truth_file = models.FileField(storage=private_storage, upload_to="truth/")
    predictions_header = models.CharField(max_length=500, help_text="The header a predictions CSV must have.")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.challenge}: {self.name}"

    @classmethod
    def create_from_upload(cls, challenge, name, uploaded_file):
        """Stores the truth (a CSV, or a .zip of masks for segmentation) and its list of cases,
        or raises ValidationError and stores nothing."""
        test_set = cls(challenge=challenge, name=name)
        test_set.truth_file.save(f"{challenge.slug}{challenge.submission_suffix}", uploaded_file, save=False)
        try:
            if challenge.takes_masks:
                extract_flat(test_set.truth_file.path, test_set.truth_path, uploaded_file.name)
            case_ids = evaluator.truth_case_ids(challenge.task_type, test_set.truth_path)
            header = evaluator.predictions_header(challenge.task_type, test_set.truth_path)
            test_set.predictions_header = ",".join(header) if header else ""
            with transaction.atomic():
                test_set.save()
                Case.objects.bulk_create(Case(test_set=test_set, case_id=case_id) for case_id in case_ids)
        except ValueError as error:
            test_set.delete_files()
            raise ValidationError(str(error)) from error
        except BaseException:
            test_set.delete_files()
            raise
        return test_set

    @property
    def truth_path(self):
        """What the evaluator reads: the CSV, or the folder the masks were unpacked into."""
        return unpacked_path(self.truth_file) if self.challenge.takes_masks else Path(self.truth_file.path)

    def delete_files(self):
        delete_with_unpacked(self.truth_file)

    @property
    def case_ids(self):
        return list(self.cases.values_list("case_id", flat=True))

    def case_ids_csv(self):
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(["case_id"])
        writer.writerows([case_id] for case_id in self.case_ids)
        return buffer.getvalue()


class Case(models.Model):
    test_set = models.ForeignKey(TestSet, on_delete=models.CASCADE, related_name="cases")
    case_id = models.CharField(max_length=200)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["test_set", "case_id"], name="case_ids_unique_per_test_set")]
        ordering = ["case_id"]


class Phase(models.Model):
    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="phases")
    name = models.CharField(max_length=100)
    test_set = models.ForeignKey(TestSet, on_delete=models.PROTECT, related_name="phases")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()

    class Meta:
        ordering = ["starts_at"]

    def __str__(self):
        return f"{self.challenge}: {self.name}"

    def clean(self):
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValidationError({"ends_at": "The phase must end after it starts."})
        if self.test_set_id and self.challenge_id and self.test_set.challenge_id != self.challenge_id:
            raise ValidationError({"test_set": "The test set belongs to another challenge."})

    def is_open(self, now=None):
        now = now or timezone.now()
        return self.starts_at <= now < self.ends_at

    def submissions_today(self, team, now=None):
        now = now or timezone.now()
        day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return self.submissions.filter(team=team, created_at__gte=day_start).count()

    def remaining_submissions(self, team, now=None):
        """How many more submissions the team may make today (UTC days)."""
        return max(0, self.challenge.daily_submission_limit - self.submissions_today(team, now))
