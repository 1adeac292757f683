from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import mixins, permissions, serializers, viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser

from mica.challenges.models import Phase

from .models import Submission


class SubmissionSerializer(serializers.ModelSerializer):
    phase = serializers.PrimaryKeyRelatedField(queryset=Phase.objects.select_related("challenge", "test_set"))
    predictions = serializers.FileField(write_only=True)
    team = serializers.CharField(source="team.name", read_only=True)
    metrics = serializers.SerializerMethodField()

    class Meta:
        model = Submission
        fields = ["uuid", "phase", "team", "predictions", "original_filename", "comment", "created_at",
                  "status", "status_reason", "primary_score", "metrics"]
        read_only_fields = ["uuid", "team", "original_filename", "created_at", "status", "status_reason",
                            "primary_score"]

    def get_metrics(self, submission) -> dict | None:
        return submission.result["metrics"] if submission.result else None

    def create(self, validated_data):
        try:
            return Submission.create(
                phase=validated_data["phase"],
                user=self.context["request"].user,
                uploaded_file=validated_data["predictions"],
                comment=validated_data.get("comment", ""),
            )
        except DjangoValidationError as error:
            raise ValidationError({"predictions": error.messages}) from error


class SubmissionViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    """Your teams' submissions; upload one as multipart form data (`phase`, `predictions`)."""

    queryset = Submission.objects.none()  # for the schema; requests use get_queryset
    serializer_class = SubmissionSerializer
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser]
    lookup_field = "uuid"

    def get_queryset(self):
        return Submission.objects.filter(team__memberships__user=self.request.user).select_related("team")
