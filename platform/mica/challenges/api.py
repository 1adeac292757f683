from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from . import access
from .models import Challenge, Phase


class PhaseSerializer(serializers.ModelSerializer):
    n_cases = serializers.SerializerMethodField()
    is_open = serializers.SerializerMethodField()

    class Meta:
        model = Phase
        fields = ["id", "name", "description", "starts_at", "ends_at", "is_open", "n_cases", "primary_metric",
                  "secondary_metrics", "metric_options", "score_precision", "daily_limit", "total_limit",
                  "concurrent_limit", "selection", "max_selected", "visibility", "blind", "parent",
                  "private_revealed_at"]

    def get_n_cases(self, phase) -> int:
        return phase.test_set.cases.count()

    def get_is_open(self, phase) -> bool:
        return phase.is_open()


class ChallengeSerializer(serializers.ModelSerializer):
    phases = PhaseSerializer(many=True, read_only=True)

    class Meta:
        model = Challenge
        fields = ["slug", "title", "description", "terms", "task_type", "state", "registration", "team_size_limit",
                  "team_merge_deadline", "phases"]


class ChallengeViewSet(viewsets.ReadOnlyModelViewSet):
    """Published challenges, and the drafts you organize."""

    queryset = Challenge.objects.none()  # for the schema; requests use get_queryset
    serializer_class = ChallengeSerializer
    lookup_field = "slug"

    def get_queryset(self):
        return access.visible_challenges(self.request.user).prefetch_related("phases__test_set")


class PhaseViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Phase.objects.none()
    serializer_class = PhaseSerializer

    def get_queryset(self):
        visible = access.visible_challenges(self.request.user)
        return Phase.objects.filter(challenge__in=visible).select_related("test_set", "challenge")

    @extend_schema(responses={200: serializers.ListSerializer(child=serializers.CharField())})
    @action(detail=True, url_path="case-ids", pagination_class=None)
    def case_ids(self, request, pk=None):
        """The case ids a submission must cover (no labels): participants and organizers."""
        return Response(access.case_list_phase(request.user, pk).test_set.case_ids())
