from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from mica.challenges import access as challenge_access
from mica.challenges.models import Phase
from mica.evaluations.models import Evaluation

from .access import readable_submissions, submission_for
from .models import Submission


class EvaluationSerializer(serializers.ModelSerializer):
    truth_version = serializers.IntegerField(source="truth_version.number")

    class Meta:
        model = Evaluation
        fields = ["uuid", "split", "truth_version", "status", "status_reason", "attempts", "primary_score", "metrics",
                  "created_at", "completed_at"]


class SubmissionSerializer(serializers.ModelSerializer):
    """What a team sees (status and rounded public scores); organizers also get the evaluations."""

    phase = serializers.PrimaryKeyRelatedField(queryset=Phase.objects.select_related("challenge", "test_set"))
    predictions = serializers.FileField(write_only=True)
    team = serializers.CharField(source="team.name", read_only=True, allow_null=True, default=None)
    status = serializers.SerializerMethodField()
    status_reason = serializers.SerializerMethodField()
    problems = serializers.ListField(child=serializers.CharField(), read_only=True)
    metrics = serializers.SerializerMethodField()
    evaluations = serializers.SerializerMethodField()

    class Meta:
        model = Submission
        fields = ["uuid", "phase", "team", "is_baseline", "predictions", "original_filename", "comment", "created_at",
                  "status", "status_reason", "problems", "metrics", "selected", "evaluations"]
        read_only_fields = ["uuid", "team", "is_baseline", "original_filename", "created_at", "selected"]

    def _view(self, submission):
        cache = self.context.setdefault("views", {})
        if submission.pk not in cache:
            cache[submission.pk] = submission.team_view()
        return cache[submission.pk]

    def get_status(self, submission) -> str:
        return self._view(submission)["status"]

    def get_status_reason(self, submission) -> str:
        return self._view(submission)["reason"]

    def get_metrics(self, submission) -> dict | None:
        return self._view(submission)["metrics"]

    def get_evaluations(self, submission) -> list[dict] | None:
        organizes = self.context.setdefault("organizes", {})  # one role lookup per challenge, not per row
        challenge = submission.phase.challenge
        if challenge.pk not in organizes:
            organizes[challenge.pk] = challenge.is_organizer(self.context["request"].user)
        if not organizes[challenge.pk]:
            return None
        return EvaluationSerializer(submission.evaluations.select_related("truth_version"), many=True).data

    def create(self, validated_data):
        phase = validated_data["phase"]
        challenge_access.phase_for(self.context["request"].user, phase.pk)
        try:
            return Submission.create(
                phase=phase,
                user=self.context["request"].user,
                uploaded_file=validated_data["predictions"],
                comment=validated_data.get("comment", ""),
            )
        except DjangoValidationError as error:
            raise ValidationError({"predictions": error.messages}) from error


class SelectionSerializer(serializers.Serializer):
    selected = serializers.BooleanField()


class SubmissionViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Your teams' submissions (and, for organizers, their challenges'); upload one as multipart
    form data (`phase`, `predictions`). A small CSV is validated at once (400 naming each
    problem); a large file or a .zip answers 201 with status `received`, then `validating`."""

    queryset = Submission.objects.none()  # for the schema; requests use get_queryset
    serializer_class = SubmissionSerializer
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    lookup_field = "uuid"

    def get_queryset(self):
        return readable_submissions(self.request.user)

    def get_object(self):
        return submission_for(self.request.user, self.kwargs["uuid"])

    @extend_schema(request=SelectionSerializer, responses=SubmissionSerializer)
    @action(detail=True, methods=["post"])
    def select(self, request, uuid=None):
        """Select (or unselect) the submission for the final ranking of a 'selected' phase."""
        submission = self.get_object()
        selection = SelectionSerializer(data=request.data)
        selection.is_valid(raise_exception=True)
        try:
            submission.set_selected(selection.validated_data["selected"], request.user)
        except DjangoValidationError as error:
            raise ValidationError({"selected": error.messages}) from error
        return Response(self.get_serializer(submission).data)

    @extend_schema(request=None, responses={202: SubmissionSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, uuid=None):
        """Cancel the submission's unfinished scoring (a team: only while its public scoring runs)."""
        submission = self.get_object()
        try:
            submission.cancel_scoring(request.user)
        except DjangoValidationError as error:
            raise ValidationError({"status": error.messages}) from error
        return Response(self.get_serializer(submission).data, status=status.HTTP_202_ACCEPTED)
