from dataclasses import asdict

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from mica.challenges.models import Phase

from .ranking import leaderboard


class LeaderboardRowSerializer(serializers.Serializer):
    rank = serializers.IntegerField()
    team = serializers.CharField()
    score = serializers.FloatField()
    interval = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    metrics = serializers.DictField(child=serializers.FloatField())
    submitted_at = serializers.DateTimeField()
    n_scored = serializers.IntegerField()


class LeaderboardView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(responses=LeaderboardRowSerializer(many=True))
    def get(self, request, phase_pk):
        phase = get_object_or_404(Phase.objects.select_related("challenge"), pk=phase_pk)
        rows = [asdict(row) for row in leaderboard(phase)]
        for row in rows:
            del row["submission_uuid"]  # another team's submission is not theirs to look up
        return Response(LeaderboardRowSerializer(rows, many=True).data)
