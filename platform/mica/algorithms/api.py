"""Algorithms and their runs in the API. A container is sent with the tus protocol at /uploads/
(purpose `container-submission`); these endpoints read runs and let organizers re-run images."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from mica.challenges.models import Role

from . import access
from .models import Algorithm, InferenceRun
from .views import transferability_table


def organized(user, prefix):
    """A filter on the challenges the user organizes, through `prefix` (staff: every challenge)."""
    if user.is_staff:
        return Q(pk__isnull=False)  # every row (an empty Q would vanish from an OR)
    return Q(**{f"{prefix}roles__user": user, f"{prefix}roles__role": Role.ORGANIZER,
                f"{prefix}roles__approved_at__isnull": False})


class InferenceRunSerializer(serializers.ModelSerializer):
    algorithm = serializers.IntegerField(source="algorithm_id", read_only=True)
    team = serializers.CharField(source="algorithm.team.name", read_only=True)
    image_digest = serializers.CharField(source="algorithm.image.digest", read_only=True)
    submission = serializers.UUIDField(source="submission.uuid", read_only=True, allow_null=True, default=None)
    truth_version = serializers.IntegerField(source="truth_version.number", read_only=True, allow_null=True,
                                             default=None)
    stdout = serializers.SerializerMethodField()
    stderr = serializers.SerializerMethodField()

    class Meta:
        model = InferenceRun
        fields = ["uuid", "algorithm", "team", "image_digest", "phase", "submission", "truth_version", "status",
                  "status_reason", "outcome", "exit_code", "wall_seconds", "peak_memory_bytes", "stdout", "stderr",
                  "result", "created_at", "completed_at"]

    def _log(self, run, text):
        return text if run.logs_visible_to(self.context["request"].user) else None

    def get_stdout(self, run) -> str | None:
        """The container's standard output (cut), or null where the phase hides logs from teams."""
        return self._log(run, run.stdout)

    def get_stderr(self, run) -> str | None:
        return self._log(run, run.stderr)


class InferenceRunViewSet(viewsets.ReadOnlyModelViewSet):
    """Container runs: your teams' submissions' runs, and every run of the challenges you organize."""

    queryset = InferenceRun.objects.none()
    serializer_class = InferenceRunSerializer
    permission_classes = [permissions.IsAuthenticated]
    lookup_field = "uuid"

    def get_queryset(self):
        user = self.request.user
        mine = Q(submission__isnull=False, algorithm__team__memberships__user=user)
        return (InferenceRun.objects.filter(mine | organized(user, "phase__challenge__"))
                .select_related("algorithm__team", "algorithm__image", "phase__challenge", "submission",
                                "truth_version").distinct())

    def get_object(self):
        return access.run_for(self.request.user, self.kwargs["uuid"])


class AlgorithmSerializer(serializers.ModelSerializer):
    team = serializers.CharField(source="team.name", read_only=True)
    challenge = serializers.SlugField(source="challenge.slug", read_only=True)
    image_digest = serializers.CharField(source="image.digest", read_only=True)
    image_bytes = serializers.IntegerField(source="image.size_bytes", read_only=True)

    class Meta:
        model = Algorithm
        fields = ["id", "challenge", "team", "name", "image_digest", "image_bytes", "created_at"]


class RerunSerializer(serializers.Serializer):
    phase = serializers.IntegerField(help_text="A phase of a challenge you organize: its test set, limits, metrics.")
    truth_version = serializers.IntegerField(required=False, allow_null=True,
                                             help_text="The id of a truth version of that test set; default its latest.")


class TransferabilityRowSerializer(serializers.Serializer):
    challenge = serializers.CharField()
    test_set = serializers.CharField()
    phase = serializers.CharField()
    truth_version = serializers.IntegerField()
    part = serializers.CharField()
    metrics = serializers.DictField(child=serializers.FloatField(allow_null=True))
    intervals = serializers.DictField(child=serializers.ListField(child=serializers.FloatField(allow_null=True),
                                                                  allow_null=True))


class AlgorithmViewSet(viewsets.ReadOnlyModelViewSet):
    """The container images teams sent to the challenges you organize."""

    queryset = Algorithm.objects.none()
    serializer_class = AlgorithmSerializer
    permission_classes = [permissions.IsAuthenticated]

    def get_queryset(self):
        return (Algorithm.objects.filter(organized(self.request.user, "challenge__"))
                .select_related("team", "challenge", "image").distinct())

    def get_object(self):
        return access.organized_algorithm(self.request.user, self.kwargs["pk"])

    @extend_schema(request=RerunSerializer, responses={201: InferenceRunSerializer})
    @action(detail=True, methods=["post"])
    def rerun(self, request, pk=None):
        """Run this image on a test set (a phase's, against one of its truth versions) and score it
        on every case; the run's `result` holds the scores once it has finished."""
        algorithm = self.get_object()
        body = RerunSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        phase = access.organized_phases(request.user).filter(pk=body.validated_data["phase"]).first()
        if phase is None:
            raise ValidationError({"phase": ["No phase of a challenge you organize has this id."]})
        version_pk = body.validated_data.get("truth_version")
        version = phase.test_set.versions.filter(pk=version_pk).first() if version_pk else phase.test_set.latest_version
        if version is None:
            raise ValidationError({"truth_version": ["The phase's test set has no truth version with this id."]})
        try:
            run = InferenceRun.rerun(algorithm=algorithm, phase=phase, truth_version=version, user=request.user)
        except DjangoValidationError as error:
            raise ValidationError({"truth_version": error.messages}) from error
        return Response(InferenceRunSerializer(run, context={"request": request}).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: TransferabilityRowSerializer(many=True)})
    @action(detail=True, methods=["get"], pagination_class=None)
    def transferability(self, request, pk=None):
        """Every scoring of this image (each part of its submissions' test sets, every re-run),
        with each metric's value and interval (null where the statistics give none)."""
        algorithm = self.get_object()
        metrics, rows = transferability_table(algorithm)
        return Response([{
            "challenge": row["test_set"].challenge.slug, "test_set": row["test_set"].name, "phase": row["phase"].name,
            "truth_version": row["truth_version"].number, "part": row["part"],
            "metrics": {name: cell["value"] for name, cell in zip(metrics, row["cells"])},
            "intervals": {name: cell["interval"] for name, cell in zip(metrics, row["cells"])},
        } for row in rows])
