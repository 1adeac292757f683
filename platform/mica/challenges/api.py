"""Challenges, phases, teams and test sets: what the site's pages show and do, for scripts.

Every rule lives in the models (and the pages' forms where a form holds it); each view here
finds its object with the access function the page uses and calls the same model method.
"""

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.db.models import Count, Prefetch
from django.forms.models import model_to_dict
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.generics import get_object_or_404  # a malformed id is a 404, not a 500
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from mica.evaluations.models import Rescore

from . import access
from .forms import ChallengeForm, TestSetForm, TruthVersionForm
from .models import Challenge, ChallengeRole, Phase, Team, TestSet, TruthVersion


def _refused(error):
    """A model's ValidationError as DRF's 400: per field where the model named fields."""
    if hasattr(error, "error_dict"):
        return ValidationError(error.message_dict)
    return ValidationError({"detail": error.messages})


# -- challenges ---------------------------------------------------------------------------------
def with_case_counts(phases):
    """Phases with their test set's number of cases, counted in the same query."""
    return phases.annotate(case_count=Count("test_set__cases"))


CONTAINER_FIELDS = ["accepts_containers", "container_max_mb", "container_case_seconds", "container_total_seconds",
                    "container_memory_mb", "container_cpus", "container_gpu", "container_logs_visible"]


class PhaseSerializer(serializers.ModelSerializer):
    n_cases = serializers.SerializerMethodField()
    is_open = serializers.SerializerMethodField()

    class Meta:
        model = Phase
        fields = ["id", "name", "description", "starts_at", "ends_at", "is_open", "n_cases", "primary_metric",
                  "secondary_metrics", "metric_options", "score_precision", "daily_limit", "total_limit",
                  "concurrent_limit", "selection", "max_selected", "visibility", "blind", "parent",
                  "private_revealed_at", *CONTAINER_FIELDS]

    def get_n_cases(self, phase) -> int:
        if hasattr(phase, "case_count"):  # counted in the list's own query (with_case_counts)
            return phase.case_count
        return phase.test_set.cases.count()

    def get_is_open(self, phase) -> bool:
        return phase.is_open()


class ChallengeSerializer(serializers.ModelSerializer):
    phases = PhaseSerializer(many=True, read_only=True)

    class Meta:
        model = Challenge
        fields = ["slug", "title", "description", "terms", "task_type", "state", "registration", "team_size_limit",
                  "team_merge_deadline", "phases"]


class ChallengeEditSerializer(serializers.ModelSerializer):
    """The fields of the page's challenge form; the form itself checks them."""

    class Meta:
        model = Challenge
        fields = ChallengeForm.Meta.fields
        # The form checks the slug's uniqueness; a second check here would answer twice.
        extra_kwargs = {"slug": {"validators": []}}


class PublishSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=Challenge.State.choices)


class RegistrationSerializer(serializers.Serializer):
    accept_terms = serializers.BooleanField(help_text="Must be true: you accept the challenge's terms.")

    def validate_accept_terms(self, value):
        if not value:
            raise ValidationError("Accept the terms to register.")
        return value


class RoleSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username", read_only=True)
    approved = serializers.SerializerMethodField()

    class Meta:
        model = ChallengeRole
        fields = ["user", "role", "accepted_terms_at", "approved_at", "approved"]

    def get_approved(self, role) -> bool:
        return role.approved_at is not None


class DashboardTeamSerializer(serializers.ModelSerializer):
    n_members = serializers.IntegerField()
    n_submissions = serializers.IntegerField()

    class Meta:
        model = Team
        fields = ["id", "name", "n_members", "n_submissions", "disqualified_at"]


class ProbeSuspectSerializer(serializers.Serializer):
    team_id = serializers.IntegerField()
    team = serializers.CharField()
    files = serializers.IntegerField(help_text="Near-constant prediction files the team sent.")


class DashboardSerializer(serializers.Serializer):
    participants = RoleSerializer(many=True)
    teams = DashboardTeamSerializer(many=True)
    unfinished_evaluations = serializers.IntegerField(help_text="Evaluations queued or being scored.")
    probes = ProbeSuspectSerializer(many=True, help_text="Teams whose files look like label probes.")


# -- test sets ----------------------------------------------------------------------------------
class RescoreProgressSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Rescore.Status.choices)
    ended = serializers.IntegerField(help_text="Evaluations of this version that ended (scored, failed or cancelled).")
    total = serializers.IntegerField(help_text="Evaluations the re-score queues.")


class TruthVersionSerializer(serializers.ModelSerializer):
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    rescore = serializers.SerializerMethodField()

    class Meta:
        model = TruthVersion
        fields = ["number", "note", "created_by", "created_at", "rescore"]

    @extend_schema_field(RescoreProgressSerializer(allow_null=True))
    def get_rescore(self, version):
        """The re-score a corrected truth started (None for the first version)."""
        try:
            rescore = version.rescore
        except Rescore.DoesNotExist:
            return None
        ended, total = rescore.progress()
        return {"status": rescore.status, "ended": ended, "total": total}


class TestSetSerializer(serializers.ModelSerializer):
    """A hidden test set as its organizers see it: never a label, never a case's part."""

    splits = serializers.SerializerMethodField()
    versions = TruthVersionSerializer(many=True, read_only=True)

    class Meta:
        model = TestSet
        fields = ["id", "name", "private_fraction", "split_seed", "split_stratified", "split_grouped", "splits",
                  "versions", "created_at"]

    def get_splits(self, test_set) -> dict[str, int]:
        """How many cases each part ("public", "private") has."""
        return test_set.split_counts()


class TestSetCreateSerializer(serializers.Serializer):
    """The page's test-set form (multipart)."""

    name = serializers.CharField(max_length=100)
    truth_file = serializers.FileField(help_text="The ground truth: a CSV, or for segmentation a .zip of masks.")
    private_fraction = serializers.FloatField(min_value=0, max_value=0.95,
                                              help_text="The share of cases on the private leaderboard.")
    seed = serializers.IntegerField(min_value=0, required=False, help_text="Empty: a random seed, recorded.")
    patients_file = serializers.FileField(required=False, help_text="Optional CSV case_id,patient.")


class TruthVersionCreateSerializer(serializers.Serializer):
    truth_file = serializers.FileField(help_text="The corrected truth, with the same cases.")
    note = serializers.CharField(max_length=500, help_text="What changed.")


def _checked_form(data, instance=None):
    """The page's form, bound to the challenge's fields and checked (it also keeps the task type
    fixed once a test set exists); a PATCH keeps the fields it does not name."""
    if instance is not None:
        data = {**model_to_dict(instance, fields=ChallengeForm.Meta.fields), **data}
    form = ChallengeForm(data, instance=instance)
    if not form.is_valid():
        raise ValidationError(form.errors)
    return form


class ChallengeViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Published challenges, and the drafts you organize. Organizers edit, publish and delete
    theirs; users the staff approved as organizers create new ones."""

    queryset = Challenge.objects.none()  # for the schema; requests use get_queryset
    serializer_class = ChallengeSerializer
    lookup_field = "slug"

    def get_queryset(self):
        return access.visible_challenges(self.request.user).prefetch_related(
            Prefetch("phases", queryset=with_case_counts(Phase.objects.select_related("test_set"))))

    def _organized(self):
        return access.organized_challenge(self.request.user, self.kwargs["slug"])

    @extend_schema(request=ChallengeEditSerializer, responses={201: ChallengeSerializer})
    def create(self, request):
        """Create a draft challenge (you become its organizer): users with the
        `challenges.add_challenge` permission, which the staff grant on request."""
        if not request.user.has_perm("challenges.add_challenge"):
            raise PermissionDenied("Creating challenges is open to organizers the site's staff has approved.")
        body = ChallengeEditSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        form = _checked_form(body.validated_data)
        with transaction.atomic():
            form.instance.created_by = request.user
            challenge = form.save()
            challenge.add_organizer(request.user)
        return Response(ChallengeSerializer(challenge).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=ChallengeEditSerializer, responses=ChallengeSerializer)
    def partial_update(self, request, slug=None):
        """Edit the challenge (organizers). The task type is fixed once a test set exists."""
        challenge = self._organized()
        body = ChallengeEditSerializer(challenge, data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        challenge = _checked_form(body.validated_data, instance=challenge).save()
        return Response(ChallengeSerializer(challenge).data)

    @extend_schema(responses={204: OpenApiResponse(description="The challenge is deleted.")})
    def destroy(self, request, slug=None):
        """Delete the challenge: its creator or staff, only while no submission or team depends
        on it (400 naming them)."""
        challenge = self._organized()
        if not challenge.is_owner(request.user):
            raise PermissionDenied("Only the organizer who created the challenge can delete it.")
        dependents = challenge.dependents()
        if dependents:
            raise ValidationError({"detail": [f"The challenge has {', '.join(dependents)}; it cannot be deleted."]})
        challenge.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=PublishSerializer, responses=ChallengeSerializer)
    @action(detail=True, methods=["post"])
    def publish(self, request, slug=None):
        """Publish the challenge (everyone sees it) or take it back to draft (organizers only)."""
        challenge = self._organized()
        body = PublishSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        challenge.set_state(body.validated_data["state"])
        return Response(ChallengeSerializer(challenge).data)

    @extend_schema(request=RegistrationSerializer, responses=RoleSerializer)
    @action(detail=True, methods=["post"], permission_classes=[permissions.IsAuthenticated])
    def register(self, request, slug=None):
        """Register for the challenge, accepting its terms; `approved` is false while an
        organizer has to approve it. Registering again changes nothing."""
        challenge = access.challenge_for(request.user, slug)
        body = RegistrationSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            role = challenge.register(request.user)
        except DjangoValidationError as error:
            raise _refused(error) from error
        return Response(RoleSerializer(role).data)

    @extend_schema(responses=DashboardSerializer)
    @action(detail=True, methods=["get"], pagination_class=None, permission_classes=[permissions.IsAuthenticated])
    def dashboard(self, request, slug=None):
        """The organizers' summary: participants (when they accepted the terms, whether they are
        approved), teams with their member and submission counts, and the evaluations not finished."""
        challenge = self._organized()
        summary = challenge.dashboard()
        return Response(DashboardSerializer(
            {**summary, "unfinished_evaluations": summary["queue"].count()}).data)

    @extend_schema(methods=["get"], responses=TestSetSerializer(many=True))
    @extend_schema(methods=["post"], request={"multipart/form-data": TestSetCreateSerializer},
                   responses={201: TestSetSerializer})
    @action(detail=True, methods=["get", "post"], url_path="test-sets", pagination_class=None,
            parser_classes=[MultiPartParser, FormParser], permission_classes=[permissions.IsAuthenticated])
    def test_sets(self, request, slug=None):
        """The challenge's hidden test sets (organizers): split counts and truth versions, never
        a label. POST a truth file to create one; it is checked, stored as version 1 and split."""
        challenge = self._organized()
        if request.method == "GET":
            test_sets = challenge.test_sets.prefetch_related("versions__created_by", "versions__rescore")
            return Response(TestSetSerializer(test_sets, many=True).data)
        form = TestSetForm(request.data, request.FILES)
        if not form.is_valid():
            raise ValidationError(form.errors)
        data = form.cleaned_data
        try:
            test_set = TestSet.create_from_upload(challenge, data["name"], data["truth_file"], user=request.user,
                                                  private_fraction=data["private_fraction"], seed=data["seed"],
                                                  patients=data["patients_file"])
        except DjangoValidationError as error:
            raise ValidationError({"truth_file": error.messages}) from error
        return Response(TestSetSerializer(test_set).data, status=status.HTTP_201_CREATED)


class TestSetViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """A hidden test set (its challenge's organizers): split counts, truth versions and the
    progress of each re-score; upload a corrected truth; delete it while no phase uses it."""

    queryset = TestSet.objects.none()  # for the schema; requests use get_object
    serializer_class = TestSetSerializer
    permission_classes = [permissions.IsAuthenticated]

    def get_object(self):
        test_set = get_object_or_404(TestSet.objects.select_related("challenge"), pk=self.kwargs["pk"])
        access.organized_challenge(self.request.user, test_set.challenge.slug)
        return test_set

    @extend_schema(responses={204: OpenApiResponse(description="The test set and its truth files are deleted.")})
    def destroy(self, request, pk=None):
        """Delete the test set, only while no phase uses it (400 naming them)."""
        test_set = self.get_object()
        dependents = test_set.dependents()
        if dependents:
            raise ValidationError({"detail": [f"The test set is used by {', '.join(dependents)}; it cannot be deleted."]})
        test_set.delete_with_files()
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request={"multipart/form-data": TruthVersionCreateSerializer},
                   responses={201: TruthVersionSerializer})
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser, FormParser])
    def versions(self, request, pk=None):
        """Store a corrected truth as the next version (same cases) and re-score every accepted
        submission against it; follow the re-score in the test set's `versions`."""
        test_set = self.get_object()
        form = TruthVersionForm(request.data, request.FILES)
        if not form.is_valid():
            raise ValidationError(form.errors)
        try:
            version = test_set.correct_truth(form.cleaned_data["truth_file"], user=request.user,
                                             note=form.cleaned_data["note"])
        except DjangoValidationError as error:
            raise ValidationError({"truth_file": error.messages}) from error
        return Response(TruthVersionSerializer(version).data, status=status.HTTP_201_CREATED)


# -- phases -------------------------------------------------------------------------------------
class PhaseEditSerializer(serializers.ModelSerializer):
    """The fields of the page's phase form; the model's clean() checks them together."""

    challenge = serializers.SlugField(write_only=True, help_text="The challenge's slug (on creation only).")
    secondary_metrics = serializers.ListField(child=serializers.CharField(), required=False)
    metric_options = serializers.DictField(required=False, help_text="The evaluator's options for this task.")

    class Meta:
        model = Phase
        fields = ["challenge", "name", "description", "test_set", "starts_at", "ends_at", "primary_metric",
                  "secondary_metrics", "metric_options", "score_precision", "daily_limit", "total_limit",
                  "concurrent_limit", "selection", "max_selected", "visibility", "blind", "parent",
                  *CONTAINER_FIELDS]


def _saved_phase(phase, data):
    for field, value in data.items():
        setattr(phase, field, value)
    try:
        phase.full_clean()
    except DjangoValidationError as error:
        raise _refused(error) from error
    phase.save()
    return phase


class PhaseViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Phases of the challenges you see; their organizers create, edit, delete and reveal them."""

    queryset = Phase.objects.none()
    serializer_class = PhaseSerializer

    def get_queryset(self):
        visible = access.visible_challenges(self.request.user)
        return with_case_counts(Phase.objects.filter(challenge__in=visible).select_related("test_set", "challenge"))

    @extend_schema(request=PhaseEditSerializer, responses={201: PhaseSerializer})
    def create(self, request):
        """Add a phase to a challenge you organize."""
        body = PhaseEditSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        challenge = access.organized_challenge(request.user, data.pop("challenge"))
        phase = _saved_phase(Phase(challenge=challenge), data)
        return Response(PhaseSerializer(phase).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=PhaseEditSerializer, responses=PhaseSerializer)
    def partial_update(self, request, pk=None):
        """Edit the phase; a new primary metric re-reads every evaluation's primary score."""
        phase = access.organized_phase(request.user, pk)
        body = PhaseEditSerializer(phase, data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        if data.pop("challenge", phase.challenge.slug) != phase.challenge.slug:
            raise ValidationError({"challenge": ["A phase stays in its challenge."]})
        old_metric = phase.primary_metric
        phase = _saved_phase(phase, data)
        if phase.primary_metric != old_metric:
            phase.refresh_primary_scores()
        return Response(PhaseSerializer(phase).data)

    @extend_schema(responses={204: OpenApiResponse(description="The phase is deleted.")})
    def destroy(self, request, pk=None):
        """Delete the phase, only while no submission or sanity-check child depends on it (400 naming them)."""
        phase = access.organized_phase(request.user, pk)
        dependents = phase.dependents()
        if dependents:
            raise ValidationError({"detail": [f"The phase has {', '.join(dependents)}; it cannot be deleted."]})
        phase.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=None, responses=PhaseSerializer)
    @action(detail=True, methods=["post"])
    def reveal(self, request, pk=None):
        """Make the private leaderboard visible to whoever sees the public one (after the phase ended)."""
        phase = access.organized_phase(request.user, pk)
        try:
            phase.reveal_private()
        except DjangoValidationError as error:
            raise _refused(error) from error
        return Response(PhaseSerializer(phase).data)

    @extend_schema(responses={200: serializers.ListSerializer(child=serializers.CharField())})
    @action(detail=True, url_path="case-ids", pagination_class=None)
    def case_ids(self, request, pk=None):
        """The case ids a submission must cover (no labels): participants and organizers."""
        return Response(access.case_list_phase(request.user, pk).test_set.case_ids())


# -- teams --------------------------------------------------------------------------------------
class TeamSerializer(serializers.ModelSerializer):
    """A team as its members and the challenge's organizers see it. Only members get the join
    code; only organizers get the reason for a disqualification."""

    challenge = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    members = serializers.SerializerMethodField()
    join_code = serializers.SerializerMethodField()
    disqualification_reason = serializers.SerializerMethodField()

    class Meta:
        model = Team
        fields = ["id", "challenge", "name", "members", "join_code", "created_at", "disqualified_at",
                  "disqualification_reason"]

    def get_members(self, team) -> list[str]:
        return list(team.memberships.order_by("joined_at").values_list("user__username", flat=True))

    def get_join_code(self, team) -> str | None:
        return team.join_code if team.has_member(self.context["request"].user) else None

    def get_disqualification_reason(self, team) -> str | None:
        return team.disqualification_reason if team.challenge.is_organizer(self.context["request"].user) else None


class TeamRenameSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=100)


class TeamRemoveSerializer(serializers.Serializer):
    user = serializers.IntegerField(help_text="The id of the member to remove.")


class TeamMergeSerializer(serializers.Serializer):
    join_code = serializers.CharField(max_length=20, help_text="The code of the team yours merges into.")


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000, help_text="Kept for the organizers; the team does not see it.")


_TEAM_GONE = OpenApiResponse(description="The team's last member left, and the team is deleted.")


class TeamViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """A team: its members change it; the challenge's organizers disqualify and reinstate it."""

    queryset = Team.objects.none()  # for the schema; requests use get_object
    serializer_class = TeamSerializer
    permission_classes = [permissions.IsAuthenticated]

    def get_object(self):
        team = get_object_or_404(Team.objects.select_related("challenge"), pk=self.kwargs["pk"])
        return access.team_for(self.request.user, team.challenge.slug, team.pk)

    def _as_member(self):
        return access.check_team_member(self.request.user, self.get_object())

    def _as_organizer(self):
        return access.check_team_judge(self.request.user, self.get_object())

    def _answer(self, team):
        return Response(self.get_serializer(team).data)

    def _body(self, serializer_class):
        body = serializer_class(data=self.request.data)
        body.is_valid(raise_exception=True)
        return body.validated_data

    @extend_schema(request=TeamRenameSerializer, responses=TeamSerializer)
    @action(detail=True, methods=["post"])
    def rename(self, request, pk=None):
        team = self._as_member()
        try:
            team.rename(self._body(TeamRenameSerializer)["name"])
        except DjangoValidationError as error:
            raise _refused(error) from error
        return self._answer(team)

    @extend_schema(request=None, responses={204: OpenApiResponse(description="You left the team.")})
    @action(detail=True, methods=["post"])
    def leave(self, request, pk=None):
        """Leave the team (its last member deletes it, unless it has submitted)."""
        team = self._as_member()
        try:
            team.remove_member(request.user)
        except DjangoValidationError as error:
            raise _refused(error) from error
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=TeamRemoveSerializer, responses={200: TeamSerializer, 204: _TEAM_GONE})
    @action(detail=True, methods=["post"])
    def remove(self, request, pk=None):
        """Remove a member from the team."""
        team = self._as_member()
        user = get_object_or_404(get_user_model(), pk=self._body(TeamRemoveSerializer)["user"])
        try:
            team.remove_member(user)
        except DjangoValidationError as error:
            raise _refused(error) from error
        if not Team.objects.filter(pk=team.pk).exists():
            return Response(status=status.HTTP_204_NO_CONTENT)
        return self._answer(team)

    @extend_schema(request=TeamMergeSerializer, responses=TeamSerializer)
    @action(detail=True, methods=["post"])
    def merge(self, request, pk=None):
        """Merge your team into the team with that join code (before the challenge's merge
        deadline, within its size and submission limits); answers the merged team."""
        team = self._as_member()
        join_code = self._body(TeamMergeSerializer)["join_code"]
        other = Team.objects.filter(challenge=team.challenge, join_code=join_code).first()
        if other is None:
            raise ValidationError({"join_code": ["No team of this challenge has that code."]})
        try:
            merged = team.merge_into(other)
        except DjangoValidationError as error:
            raise _refused(error) from error
        return self._answer(merged)

    @extend_schema(request=ReasonSerializer, responses=TeamSerializer)
    @action(detail=True, methods=["post"])
    def disqualify(self, request, pk=None):
        """Disqualify the team (organizers): its rows leave every leaderboard."""
        team = self._as_organizer()
        try:
            team.disqualify(self._body(ReasonSerializer)["reason"])
        except DjangoValidationError as error:
            raise _refused(error) from error
        return self._answer(team)

    @extend_schema(request=None, responses=TeamSerializer)
    @action(detail=True, methods=["post"])
    def reinstate(self, request, pk=None):
        """Take back a disqualification (organizers)."""
        team = self._as_organizer()
        team.reinstate()
        return self._answer(team)
