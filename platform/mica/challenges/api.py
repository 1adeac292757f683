from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from .models import Challenge, Phase


class PhaseSerializer(serializers.ModelSerializer):
    n_cases = serializers.SerializerMethodField()
    is_open = serializers.SerializerMethodField()

    class Meta:
        model = Phase
        fields = ["id", "name", "starts_at", "ends_at", "is_open", "n_cases"]

    def get_n_cases(self, phase) -> int:
        return phase.test_set.cases.count()

    def get_is_open(self, phase) -> bool:
        return phase.is_open()


class ChallengeSerializer(serializers.ModelSerializer):
    phases = PhaseSerializer(many=True, read_only=True)

    class Meta:
        model = Challenge
        fields = ["slug", "title", "description", "task_type", "primary_metric", "leaderboard_selection",
                  "daily_submission_limit", "phases"]


class ChallengeViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Challenge.objects.prefetch_related("phases__test_set")
    serializer_class = ChallengeSerializer
    lookup_field = "slug"


class PhaseViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Phase.objects.select_related("test_set")
    serializer_class = PhaseSerializer

    @extend_schema(responses={200: serializers.ListSerializer(child=serializers.CharField())})
    @action(detail=True, url_path="case-ids")
    def case_ids(self, request, pk=None):
        """The case ids a submission must cover (no labels)."""
        return Response(self.get_object().test_set.case_ids)
