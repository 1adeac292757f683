from dataclasses import asdict

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from mica.challenges import access
from mica.challenges.models import Split

from .models import LeaderboardSnapshot


@extend_schema_field(OpenApiTypes.NUMBER)
class RankField(serializers.Field):
    """A whole rank as an integer (1, 2), a mean rank of tied teams as it is (1.5)."""

    def to_representation(self, value):
        return value


class IntervalSerializer(serializers.Serializer):
    low = serializers.FloatField(allow_null=True)
    high = serializers.FloatField(allow_null=True)
    degenerate = serializers.BooleanField(help_text="Every bootstrap sample gave the same value: not a real certainty.")


class LeaderboardRowSerializer(serializers.Serializer):
    rank = RankField(allow_null=True, help_text="None for a baseline, which is not ranked; "
                                  "a half rank (1.5) where the phase gives tied teams their mean rank.")
    band = serializers.IntegerField(allow_null=True, help_text="Teams whose difference from the team above is "
                                    "not significant share a band.")
    team = serializers.CharField()
    is_baseline = serializers.BooleanField()
    score = serializers.FloatField()
    interval = serializers.ListField(child=serializers.FloatField(), allow_null=True,
                                     help_text="The primary metric's 95% interval [low, high].")
    intervals = serializers.DictField(child=IntervalSerializer(), help_text="Each metric's 95% interval.")
    metrics = serializers.DictField(child=serializers.FloatField(allow_null=True))
    submitted_at = serializers.DateTimeField()
    n_scored = serializers.IntegerField()


def _rows(request, phase, split):
    rows, _ = LeaderboardSnapshot.rows_for(phase, split)
    if not phase.challenge.is_organizer(request.user):
        rows = [row.rounded(phase) for row in rows]
    rows = [asdict(row) for row in rows]
    for row in rows:
        del row["submission_uuid"]  # another team's submission is not theirs to look up
    return Response(LeaderboardRowSerializer(rows, many=True).data)


class LeaderboardView(APIView):
    """A phase's public leaderboard; scores rounded to the phase's precision for participants."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(responses=LeaderboardRowSerializer(many=True))
    def get(self, request, phase_pk):
        return _rows(request, access.leaderboard_phase(request.user, phase_pk), Split.PUBLIC)


class PrivateLeaderboardView(APIView):
    """The private leaderboard: organizers, and everyone who sees the public one once revealed."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(responses=LeaderboardRowSerializer(many=True))
    def get(self, request, phase_pk):
        return _rows(request, access.private_leaderboard_phase(request.user, phase_pk), Split.PRIVATE)
