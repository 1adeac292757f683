"""Challenges, their phases and hidden test sets, roles and teams.

Ground truth lives only in a file in private storage. No model field holds a label, so no
serializer, form or template can show one by accident.
"""

import math
import secrets
from datetime import timezone as dt_timezone

from django.conf import settings
from django.contrib.auth.models import Permission
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.urls import reverse
from django.utils import timezone

import evaluator
from mica.core.storage import local_path, private_storage
from mica.core.validators import ReservedSlugValidator


def leaderboards_changed(phase):
    # The leaderboards app reads this one's models: imported when called, not at load time.
    from mica.leaderboards.models import leaderboards_changed as mark_stale

    mark_stale(phase)


class Challenge(models.Model):
    class TaskType(models.TextChoices):
        CLASSIFICATION = "classification", "Classification"
        REGRESSION = "regression", "Regression"
        DETECTION = "detection", "Detection"
        SEGMENTATION = "segmentation", "Segmentation"

    class State(models.TextChoices):
        DRAFT = "draft", "Draft (organizers only)"
        PUBLISHED = "published", "Published"

    class Registration(models.TextChoices):
        OPEN = "open", "Open to everyone"
        APPROVAL = "approval", "Approved by an organizer"
        DOMAINS = "domains", "Limited to e-mail domains"

    slug = models.SlugField(unique=True, validators=[ReservedSlugValidator("challenges:detail")])
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True, help_text="Markdown.")
    terms = models.TextField(blank=True, help_text="Markdown. Participants accept these to register.")
    task_type = models.CharField(max_length=20, choices=TaskType.choices)
    state = models.CharField(max_length=10, choices=State.choices, default=State.DRAFT)
    registration = models.CharField(max_length=10, choices=Registration.choices, default=Registration.OPEN)
    allowed_email_domains = models.CharField(
        max_length=500, blank=True, help_text="Comma-separated, e.g. 'uni-a.edu, hospital-b.org' (domains registration)."
    )
    team_size_limit = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Empty: no limit.")
    team_merge_deadline = models.DateTimeField(null=True, blank=True, help_text="Teams may merge until then.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("challenges:detail", args=[self.slug])

    @property
    def takes_masks(self):
        """Segmentation truths and predictions are .zip archives of mask files; the rest CSV."""
        return self.task_type == self.TaskType.SEGMENTATION

    @property
    def submission_suffix(self):
        return ".zip" if self.takes_masks else ".csv"

    @property
    def is_published(self):
        return self.state == self.State.PUBLISHED

    def role_of(self, user):
        """The set of roles the user holds in this challenge (empty for anonymous users).
        A participant waiting for an organizer's approval holds no role yet."""
        if not user.is_authenticated:
            return set()
        return set(self.roles.filter(user=user, approved_at__isnull=False).values_list("role", flat=True))

    def is_organizer(self, user):
        """Organizers and co-organizers; site staff act as organizers of every challenge."""
        return user.is_authenticated and (user.is_staff or Role.ORGANIZER in self.role_of(user))

    def is_owner(self, user):
        """The organizer who created the challenge (or staff): only they delete it or remove organizers."""
        return user.is_authenticated and (user.is_staff or self.created_by_id == user.pk)

    def is_participant(self, user):
        return Role.PARTICIPANT in self.role_of(user)

    def can_be_seen_by(self, user):
        return self.is_published or self.is_organizer(user)

    def registration_problem(self, user):
        """Why the user cannot register, or None."""
        if not self.is_published:
            return "The challenge is not published yet."
        if self.is_organizer(user):
            return "Organizers cannot take part in their own challenge."
        if self.registration == self.Registration.DOMAINS:
            domain = user.email.rpartition("@")[2].lower()
            if domain not in self.allowed_domains():
                return "Registration is limited to e-mail addresses of the domains the organizers listed."
        return None

    def allowed_domains(self):
        return {d.strip().lower().lstrip("@") for d in self.allowed_email_domains.split(",") if d.strip()}

    def register(self, user):
        """Makes the user a participant (pending an organizer's approval where the challenge asks
        for it); calling it again changes nothing. Raises ValidationError when not allowed."""
        problem = self.registration_problem(user)
        if problem:
            raise ValidationError(problem)
        now = timezone.now()
        approved = None if self.registration == self.Registration.APPROVAL else now
        role, _ = ChallengeRole.objects.get_or_create(
            challenge=self, user=user, role=Role.PARTICIPANT, defaults={"accepted_terms_at": now, "approved_at": approved}
        )
        return role

    def add_organizer(self, user):
        role, _ = ChallengeRole.objects.get_or_create(
            challenge=self, user=user, role=Role.ORGANIZER, defaults={"approved_at": timezone.now()}
        )
        return role

    def team_of(self, user):
        if not user.is_authenticated:
            return None
        membership = TeamMembership.objects.filter(challenge=self, user=user).select_related("team").first()
        return membership.team if membership else None

    def set_state(self, state):
        """Publishes the challenge, or takes it back to a draft its organizers alone see."""
        self.state = state
        self.save(update_fields=["state"])

    def dashboard(self):
        """The organizers' view of the challenge: participants (when they accepted the terms,
        whether approved), teams with member and submission counts, and the queue."""
        from mica.evaluations.models import Evaluation

        return {
            "participants": self.roles.filter(role=Role.PARTICIPANT).select_related("user").order_by("-accepted_terms_at"),
            "teams": self.teams.annotate(n_members=models.Count("memberships", distinct=True),
                                         n_submissions=models.Count("submissions", distinct=True)),
            "queue": Evaluation.objects.filter(submission__phase__challenge=self, status__in=Evaluation.UNFINISHED)
                     .select_related("submission__team", "submission__phase").order_by("created_at"),
            "probes": self.probe_suspects(),
        }

    # A file whose probabilities all lie within this range carries almost no ranking; many of
    # them from one team look like probes that decode labels from the scores.
    PROBE_SPREAD = 0.02
    PROBE_FILES = 3

    def probe_suspects(self):
        """Teams with at least PROBE_FILES near-constant prediction files, most first."""
        from mica.evaluations.models import Evaluation

        near_constant = Evaluation.objects.filter(
            submission__phase__challenge=self, split=Split.PUBLIC, status=Evaluation.Status.SUCCEEDED,
            result__predictions__spread__lt=self.PROBE_SPREAD, submission__team__isnull=False,
        )
        counts = (near_constant.values("submission__team_id", "submission__team__name")
                  .annotate(n=models.Count("submission", distinct=True)).filter(n__gte=self.PROBE_FILES)
                  .order_by("-n"))
        return [{"team_id": row["submission__team_id"], "team": row["submission__team__name"], "files": row["n"]}
                for row in counts]

    def leaderboards_changed(self):
        for phase in self.phases.all():
            leaderboards_changed(phase)

    def dependents(self):
        """What would be lost with the challenge: deleting is allowed only while this is empty."""
        from mica.submissions.models import Submission

        found = []
        n_submissions = Submission.objects.filter(phase__challenge=self).count()
        if n_submissions:
            found.append(f"{n_submissions} submission{'s' if n_submissions != 1 else ''}")
        n_teams = self.teams.count()
        if n_teams:
            found.append(f"{n_teams} team{'s' if n_teams != 1 else ''}")
        return found


class OrganizerRequest(models.Model):
    """A user asks the site's staff to let them create challenges."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="organizer_requests")
    motivation = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True,
                                   related_name="+")
    approved = models.BooleanField(default=False)

    def decide(self, *, approve, by):
        """Approving grants the permission to create challenges."""
        with transaction.atomic():
            self.decided_at, self.decided_by, self.approved = timezone.now(), by, approve
            self.save(update_fields=["decided_at", "decided_by", "approved"])
            if approve:
                self.user.user_permissions.add(Permission.objects.get(
                    content_type__app_label="challenges", codename="add_challenge"))


class Role(models.TextChoices):
    ORGANIZER = "organizer", "Organizer"
    PARTICIPANT = "participant", "Participant"
    ANNOTATOR = "annotator", "Annotator"


class ChallengeRole(models.Model):
    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="roles")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="challenge_roles")
    role = models.CharField(max_length=20, choices=Role.choices)
    accepted_terms_at = models.DateTimeField(null=True, blank=True)
    # None while a participant waits for an organizer's approval.
    approved_at = models.DateTimeField(null=True, blank=True, default=timezone.now)

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
    # Kept for the organizers; a disqualified team's rows leave every leaderboard.
    disqualified_at = models.DateTimeField(null=True, blank=True)
    disqualification_reason = models.TextField(blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["challenge", "name"], name="team_names_unique_per_challenge")]
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("challenges:team", args=[self.challenge.slug, self.pk])

    @classmethod
    def create_for(cls, challenge, user, name):
        """Creates a team with the user as its first member."""
        if not challenge.is_participant(user):
            raise ValidationError("Register for the challenge before creating a team.")
        if challenge.team_of(user):
            raise ValidationError("You are already in a team of this challenge.")
        cls._check_name_free(challenge, name)
        with transaction.atomic():
            team = cls.objects.create(challenge=challenge, name=name, created_by=user)
            TeamMembership.objects.create(challenge=challenge, team=team, user=user)
        return team

    @staticmethod
    def _check_name_free(challenge, name, keep=None):
        taken = Team.objects.filter(challenge=challenge, name__iexact=name).exclude(pk=getattr(keep, "pk", None))
        if taken.exists():
            raise ValidationError(f"A team named {name!r} already exists in this challenge.")

    def add_member(self, user):
        if not self.challenge.is_participant(user):
            raise ValidationError("Register for the challenge before joining a team.")
        if self.challenge.team_of(user):
            raise ValidationError("You are already in a team of this challenge.")
        with transaction.atomic():
            type(self).objects.select_for_update().get(pk=self.pk)  # one join at a time keeps the size limit
            self._check_room_for(1)
            return TeamMembership.objects.create(challenge=self.challenge, team=self, user=user)

    def _check_room_for(self, newcomers):
        limit = self.challenge.team_size_limit
        if limit and self.memberships.count() + newcomers > limit:
            raise ValidationError(f"A team of this challenge has at most {limit} member{'s' if limit != 1 else ''}.")

    def has_member(self, user):
        return user.is_authenticated and self.memberships.filter(user=user).exists()

    def remove_member(self, user):
        """A member leaves, or is removed by a teammate; the last member cannot leave a team
        that has submitted (its submissions need a team)."""
        if not self.has_member(user):
            raise ValidationError("That user is not a member of this team.")
        with transaction.atomic():
            type(self).objects.select_for_update().get(pk=self.pk)
            if self.memberships.count() == 1:
                if self.submissions.exists():
                    raise ValidationError("The last member of a team that has submitted cannot leave it.")
                self.delete()
                return
            self.memberships.filter(user=user).delete()

    def rename(self, name):
        self._check_name_free(self.challenge, name, keep=self)
        self.name = name
        self.save(update_fields=["name"])
        self.challenge.leaderboards_changed()

    def merge_into(self, other):
        """Moves this team's members and submissions into `other` and deletes this team.

        Allowed before the challenge's merge deadline, while the merged team stays within the
        size limit and within every phase's submission limits (counted together)."""
        challenge = self.challenge
        if other.challenge_id != challenge.pk or other.pk == self.pk:
            raise ValidationError("Teams can merge only with another team of the same challenge.")
        deadline = challenge.team_merge_deadline
        if deadline is None or timezone.now() >= deadline:
            raise ValidationError("Teams of this challenge cannot merge (no merge deadline, or it has passed).")
        with transaction.atomic():
            list(Team.objects.select_for_update().filter(pk__in=[self.pk, other.pk]))
            other._check_room_for(self.memberships.count())
            for phase in challenge.phases.all():
                phase.check_merge_within_limits(self, other)
            self.memberships.update(team=other)
            self.submissions.update(team=other)
            self.delete()
            challenge.leaderboards_changed()
        return other

    def disqualify(self, reason):
        if not reason.strip():
            raise ValidationError("Give the reason for the disqualification (kept for the organizers).")
        self.disqualified_at = timezone.now()
        self.disqualification_reason = reason
        self.save(update_fields=["disqualified_at", "disqualification_reason"])
        self.challenge.leaderboards_changed()

    def reinstate(self):
        self.disqualified_at = None
        self.save(update_fields=["disqualified_at"])
        self.challenge.leaderboards_changed()


class TeamMembership(models.Model):
    # The challenge is repeated here so that the database itself keeps a user in one team per challenge.
    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="+")
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="team_memberships")
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["challenge", "user"], name="one_team_per_challenge")]


class Split(models.TextChoices):
    PUBLIC = "public", "Public"
    PRIVATE = "private", "Private"


class TestSet(models.Model):
    """Cases whose ground truth participants never see, split into a public and a private part.

    The truth itself has versions (`TruthVersion`); the split is made once, when the test set
    is created, and recorded: its seed, its fraction and which case went where.
    """

    __test__ = False  # not a pytest test class, despite its name

    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="test_sets")
    name = models.CharField(max_length=100)
    private_fraction = models.FloatField(default=0.5, help_text="The share of cases in the private part.")
    split_seed = models.PositiveIntegerField(default=0)
    split_stratified = models.BooleanField(default=True)
    split_grouped = models.BooleanField(default=False, help_text="No patient has cases in both parts.")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.challenge}: {self.name}"

    @classmethod
    def create_from_upload(cls, challenge, name, uploaded_file, *, user, private_fraction=0.5, seed=None,
                           patients=None):
        """Stores the truth (a CSV, or a .zip of masks for segmentation) as version 1, and the
        cases with their split; raises ValidationError and stores nothing on a bad file.

        `patients` (case id → patient pseudonym) groups the split so that no patient is in both parts.
        """
        if not 0 <= private_fraction < 1:
            raise ValidationError("The private fraction must be at least 0 and below 1.")
        test_set = cls(challenge=challenge, name=name, private_fraction=private_fraction,
                       split_seed=secrets.randbelow(2**31) if seed is None else seed,
                       split_grouped=bool(patients))
        version = None
        try:
            with transaction.atomic():
                test_set.save()
                version = TruthVersion.store(test_set, uploaded_file, user=user, note="First version.")
                test_set._store_cases(version.info["case_ids"], version.info.get("strata"), patients or {})
        except BaseException:
            if version is not None:
                version.file.delete(save=False)
            raise
        return test_set

    def _store_cases(self, case_ids, strata, patients):
        if patients:
            unknown = sorted(set(patients) - set(case_ids))
            if unknown:
                raise ValidationError(f"The patients file names {len(unknown)} case(s) the truth does not have, "
                                      f"e.g. {unknown[0]!r}.")
            missing = [case_id for case_id in case_ids if case_id not in patients]
            if missing:
                raise ValidationError(
                    f"The patients file has no patient for {len(missing)} case(s), e.g. {missing[0]!r}."
                )
        if self.private_fraction == 0:  # no private part: every case is on the public board
            parts = dict.fromkeys(case_ids, Split.PUBLIC)
        else:
            parts = evaluator.split_cases(case_ids, strata=strata if self.split_stratified else None,
                                          groups=patients or None, private_fraction=self.private_fraction,
                                          seed=self.split_seed)
        Case.objects.bulk_create(
            Case(test_set=self, case_id=case_id, split=parts[case_id], patient=patients.get(case_id, ""))
            for case_id in case_ids
        )

    @property
    def latest_version(self):
        return self.versions.order_by("-number").first()

    def case_ids(self, split=None):
        cases = self.cases.all() if split is None else self.cases.filter(split=split)
        return list(cases.values_list("case_id", flat=True))

    def correct_truth(self, uploaded_file, *, user, note):
        """Stores a corrected truth as the next version and starts re-scoring every accepted
        submission against it, together or not at all; ValidationError names what is wrong."""
        from mica.evaluations.models import Rescore

        with transaction.atomic():
            version = TruthVersion.store(self, uploaded_file, user=user, note=note)
            Rescore.start(version, user)
        return version

    def split_counts(self):
        """{"public": n, "private": n}: how many cases each part holds."""
        return dict(self.cases.values_list("split").annotate(n=models.Count("pk")).order_by())

    def dependents(self):
        return [f"phase {name!r}" for name in self.phases.values_list("name", flat=True)]

    def delete_with_files(self):
        """Deletes the test set and, once that is committed, its truth files."""
        files = [version.file for version in self.versions.all()]
        with transaction.atomic():
            self.delete()
            transaction.on_commit(lambda: [field.delete(save=False) for field in files])


def _truth_path(version, filename):
    test_set = version.test_set
    return f"truth/{test_set.challenge_id}/{test_set.pk}/v{version.number}{test_set.challenge.submission_suffix}"


class TruthVersion(models.Model):
    """One version of a test set's ground truth. A corrected truth is a new version; the old
    ones are kept, and every evaluation names the version it was scored against."""

    test_set = models.ForeignKey(TestSet, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    file = models.FileField(storage=private_storage, upload_to=_truth_path, max_length=300)
    # What the evaluator found in the truth (case ids, expected header, mask shapes, strata),
    # kept so that validating a submission never re-reads the truth in a web request.
    info = models.JSONField()
    note = models.CharField(max_length=500, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["test_set", "number"], name="truth_versions_numbered")]
        ordering = ["test_set", "number"]

    def __str__(self):
        return f"{self.test_set.name} v{self.number}"

    @classmethod
    def store(cls, test_set, uploaded_file, *, user, note=""):
        """Checks and stores a truth file as the test set's next version (inside the caller's
        transaction); raises ValidationError naming the problem, and nothing stays on disk."""
        challenge = test_set.challenge
        number = (test_set.versions.aggregate(models.Max("number"))["number__max"] or 0) + 1
        version = cls(test_set=test_set, number=number, note=note, created_by=user)
        version.file.save("truth", uploaded_file, save=False)
        try:
            with local_path(version.file) as path:
                version.info = evaluator.describe_truth(challenge.task_type, path)
            if test_set.cases.exists():
                known, found = set(test_set.case_ids()), set(version.info["case_ids"])
                if known != found:
                    added, dropped = sorted(found - known), sorted(known - found)
                    raise ValidationError(
                        "A corrected truth must have the same cases as the test set: "
                        + "; ".join(part for part in [
                            f"{len(added)} new (e.g. {added[0]!r})" if added else "",
                            f"{len(dropped)} missing (e.g. {dropped[0]!r})" if dropped else "",
                        ] if part)
                    )
            version.save()
            for phase in test_set.phases.all():  # the boards now show this version
                leaderboards_changed(phase)
        except ValueError as error:
            version.file.delete(save=False)
            raise ValidationError(f"{uploaded_file.name}: {error}") from error
        except BaseException:
            version.file.delete(save=False)
            raise
        return version

    @property
    def predictions_header(self):
        header = self.info.get("predictions_header")
        return ",".join(header) if header else ""


class Case(models.Model):
    test_set = models.ForeignKey(TestSet, on_delete=models.CASCADE, related_name="cases")
    case_id = models.CharField(max_length=200)
    split = models.CharField(max_length=10, choices=Split.choices)
    patient = models.CharField(max_length=200, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["test_set", "case_id"], name="case_ids_unique_per_test_set")]
        ordering = ["case_id"]


class Phase(models.Model):
    """A period of a challenge with its own rules: test set, metrics, limits, which submissions
    count, who sees the leaderboard, and whether the private part has been revealed."""

    class Selection(models.TextChoices):
        BEST = "best", "Each team's best submission (by public score)"
        LATEST = "latest", "Each team's latest submission"
        SELECTED = "selected", "Up to N submissions the team selects"

    class Visibility(models.TextChoices):
        PUBLIC = "public", "Everyone"
        PARTICIPANTS = "participants", "Participants only"
        HIDDEN = "hidden", "Organizers only"

    challenge = models.ForeignKey(Challenge, on_delete=models.CASCADE, related_name="phases")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, help_text="Markdown.")
    test_set = models.ForeignKey(TestSet, on_delete=models.PROTECT, related_name="phases")
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(help_text="A submission counts when its upload completes before this time.")

    primary_metric = models.CharField(max_length=50, help_text="Ranks the leaderboard.")
    secondary_metrics = models.JSONField(default=list, blank=True, help_text="Shown beside the primary metric.")
    metric_options = models.JSONField(default=dict, blank=True, help_text="The evaluator's options for this task.")
    score_precision = models.PositiveSmallIntegerField(
        default=4, help_text="Significant digits of the scores participants see while the phase runs."
    )

    daily_limit = models.PositiveIntegerField(default=5, help_text="Submissions per team per UTC day.")
    total_limit = models.PositiveIntegerField(null=True, blank=True, help_text="Per team over the phase; empty: none.")
    concurrent_limit = models.PositiveIntegerField(default=2, help_text="Submissions of a team being processed at once.")
    selection = models.CharField(max_length=10, choices=Selection.choices, default=Selection.BEST)
    max_selected = models.PositiveSmallIntegerField(default=2)
    visibility = models.CharField(max_length=15, choices=Visibility.choices, default=Visibility.PUBLIC)
    blind = models.BooleanField(default=False, help_text="Teams see that a submission was scored, not its score.")
    parent = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="children",
        help_text="A sanity-check phase a team must pass (one scored submission) before submitting here.",
    )
    private_revealed_at = models.DateTimeField(null=True, blank=True)

    # Model containers (mica.algorithms): a team may send an image that Mica runs on the test images.
    accepts_containers = models.BooleanField(default=False, help_text="Teams may submit a container image.")
    container_max_mb = models.PositiveIntegerField(default=4096, help_text="The largest image, in MiB.")
    container_case_seconds = models.PositiveIntegerField(default=60, help_text="Run time allowed per test case.")
    container_total_seconds = models.PositiveIntegerField(default=3600, help_text="Run time allowed in all.")
    container_memory_mb = models.PositiveIntegerField(default=4096, help_text="Memory of a run, in MiB.")
    container_cpus = models.PositiveSmallIntegerField(default=2, help_text="CPUs of a run.")
    container_gpu = models.BooleanField(default=False, help_text="A run gets a GPU.")
    container_logs_visible = models.BooleanField(
        default=False, help_text="Teams see their runs' logs here (a log can carry test data out).")

    class Meta:
        ordering = ["starts_at", "pk"]

    def __str__(self):
        return f"{self.challenge}: {self.name}"

    def get_absolute_url(self):
        return reverse("leaderboards:phase", args=[self.pk])

    def clean(self):
        errors = {}
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            errors["ends_at"] = "The phase must end after it starts."
        if self.test_set_id and self.challenge_id and self.test_set.challenge_id != self.challenge_id:
            errors["test_set"] = "The test set belongs to another challenge."
        if self.parent_id and (self.parent.challenge_id != self.challenge_id or self.parent_id == self.pk):
            errors["parent"] = "The sanity-check phase must be another phase of this challenge."
        if self.challenge_id:
            task = self.challenge.task_type
            for field, names in (("primary_metric", [self.primary_metric]), ("secondary_metrics", self.secondary_metrics)):
                for name in names or []:
                    known = evaluator.METRICS.get(name)
                    if name in self.custom_metrics():
                        continue
                    if known is None or known.task != task:
                        errors[field] = f"{name!r} is not a metric of {task} tasks."
            if not isinstance(self.metric_options, dict):
                errors["metric_options"] = "The options are a JSON object."
            else:
                accepted = evaluator.task_options(task)
                unknown = sorted(set(self.metric_options) - set(accepted))
                if unknown:
                    errors["metric_options"] = f"{task} tasks have no option {unknown[0]!r}."
        if not 1 <= self.score_precision <= 15:
            errors["score_precision"] = "Between 1 and 15 significant digits."
        if errors:
            raise ValidationError(errors)

    @property
    def metrics(self):
        """The primary metric first, then the secondaries."""
        return [self.primary_metric, *[m for m in self.secondary_metrics if m != self.primary_metric]]

    @property
    def selection_rule(self):
        if self.selection == self.Selection.SELECTED:
            n = self.max_selected
            return f"Up to {n} submission{'s' if n != 1 else ''} each team selects (its best by public score if none)"
        return self.get_selection_display()

    @property
    def higher_is_better(self):
        custom = self.custom_metrics()
        if self.primary_metric in custom:
            return custom[self.primary_metric]
        return evaluator.METRICS[self.primary_metric].higher_is_better

    def custom_metrics(self):
        """{name: higher is better} of the organizers' metric container for this phase
        (mica.algorithms), which scores it instead of the evaluator; empty without one."""
        container = getattr(self, "metric_container", None) if self.pk else None
        return container.declared if container else {}

    def is_open(self, now=None):
        now = now or timezone.now()
        return self.challenge.is_published and self.starts_at <= now < self.ends_at

    def has_ended(self, now=None):
        return (now or timezone.now()) >= self.ends_at

    @property
    def private_is_revealed(self):
        return self.private_revealed_at is not None

    def reveal_private(self, now=None):
        now = now or timezone.now()
        if not self.has_ended(now):
            raise ValidationError("The private leaderboard can be revealed only after the phase has ended.")
        from mica.notifications.events import private_revealed

        with transaction.atomic():
            self.private_revealed_at = now
            self.save(update_fields=["private_revealed_at"])
            private_revealed(self)

    # -- submission rules -------------------------------------------------------------------
    def counting_submissions(self, team):
        """Submissions that count against the limits: all but those refused at validation."""
        from mica.submissions.models import Submission

        return Submission.objects.filter(phase=self, team=team).exclude(status=Submission.Status.INVALID)

    def submissions_today(self, team, now=None):
        now = now or timezone.now()
        day_start = now.astimezone(dt_timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        return self.counting_submissions(team).filter(created_at__gte=day_start).count()

    def remaining_submissions(self, team, now=None):
        """How many more submissions the team may make today (UTC days), within the phase's total."""
        remaining = self.daily_limit - self.submissions_today(team, now)
        if self.total_limit is not None:
            remaining = min(remaining, self.total_limit - self.counting_submissions(team).count())
        return max(0, remaining)

    def submission_problem(self, team, now=None):
        """Why the team cannot submit now, or None. Call it with the team's row locked."""
        from mica.submissions.models import Submission

        if team is None:
            return "Join or create a team before submitting."
        if team.disqualified_at:
            return "Your team has been disqualified from this challenge."
        if not self.is_open(now):
            return f"The phase {self.name!r} is not open for submissions."
        if self.parent_id and not Submission.objects.filter(phase=self.parent, team=team).passed().exists():
            return f"Pass the sanity-check phase {self.parent.name!r} first (one scored submission)."
        if self.counting_submissions(team).in_progress().count() >= self.concurrent_limit:
            return (f"Your team has {self.concurrent_limit} submission(s) being processed; "
                    "wait until one is scored.")
        if self.total_limit is not None and self.counting_submissions(team).count() >= self.total_limit:
            return f"Your team has used all {self.total_limit} submissions of this phase."
        if self.submissions_today(team, now) >= self.daily_limit:
            return f"Your team has used its {self.daily_limit} submissions for today (UTC)."
        return None

    def check_merge_within_limits(self, team, other):
        together = self.counting_submissions(team).count() + self.counting_submissions(other).count()
        if self.total_limit is not None and together > self.total_limit:
            raise ValidationError(
                f"Together the teams made {together} submissions in {self.name!r}, over its limit of {self.total_limit}."
            )
        today = self.submissions_today(team) + self.submissions_today(other)
        if today > self.daily_limit:
            raise ValidationError(f"Together the teams made {today} submissions today in {self.name!r}, "
                                  f"over its daily limit of {self.daily_limit}; merge tomorrow.")

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        leaderboards_changed(self)  # its rules may rank differently now

    def refresh_primary_scores(self):
        """After the primary metric changed: every evaluation's primary score read anew from its metrics."""
        from mica.evaluations.models import Evaluation

        Evaluation.objects.filter(submission__phase=self).update(
            primary_score=Cast(KeyTextTransform(self.primary_metric, "metrics"), models.FloatField())
        )
        leaderboards_changed(self)

    def dependents(self):
        n = self.submissions.count()
        found = [f"{n} submission{'s' if n != 1 else ''}"] if n else []
        found += [f"phase {name!r} (it is their sanity check)" for name in self.children.values_list("name", flat=True)]
        return found

    # -- what people see --------------------------------------------------------------------
    def leaderboard_visible_to(self, user):
        challenge = self.challenge
        if challenge.is_organizer(user):
            return True
        if not challenge.is_published or self.visibility == self.Visibility.HIDDEN:
            return False
        if self.blind and not self.has_ended():
            return False  # a blind phase's scores are not shown while it runs
        return self.visibility == self.Visibility.PUBLIC or challenge.is_participant(user)

    def private_visible_to(self, user):
        return self.challenge.is_organizer(user) or (self.private_is_revealed and self.leaderboard_visible_to(user))

    def shown_score(self, value):
        """A score as participants see it while the phase runs: rounded to the phase's
        significant digits, so that a score cannot encode per-case labels in its last bits."""
        if value is None or not math.isfinite(value):
            return None
        return float(f"{value:.{self.score_precision}g}")
