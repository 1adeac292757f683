from django.utils.http import http_date
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from mica.challenges import access
from mica.challenges.models import Split
from mica.sites.transfer import site_columns

from .models import LeaderboardSnapshot
from .statistics import PAIRWISE_TEAMS
from .views import board_phase, board_records, shown_rows


@extend_schema_field(OpenApiTypes.NUMBER)
class RankField(serializers.Field):
    """A whole rank as an integer (1, 2), a mean rank of tied teams as it is (1.5)."""

    def to_representation(self, value):
        return value


class IntervalSerializer(serializers.Serializer):
    low = serializers.FloatField(allow_null=True)
    high = serializers.FloatField(allow_null=True)
    degenerate = serializers.BooleanField(help_text="Every bootstrap sample gave the same value: not a real certainty.")


class SiteScoreSerializer(serializers.Serializer):
    value = serializers.FloatField(allow_null=True)
    interval = serializers.ListField(child=serializers.FloatField(allow_null=True), allow_null=True,
                                     help_text="The site's 95% interval [low, high].")


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
    sites = serializers.DictField(child=SiteScoreSerializer(allow_null=True),
                                  help_text="The primary metric as each evaluation site (a hospital) last scored "
                                            "the team's newest algorithm; null where it has not.")


def _rows(request, phase, split):
    rows, freshness = shown_rows(request, phase, split)
    records = list(board_records(rows, site_columns(phase, request.user)))
    return Response(LeaderboardRowSerializer(records, many=True).data, headers=freshness_headers(freshness))


def freshness_headers(freshness):
    """When the board was last computed, whether newer results wait for its refresh, and whether
    its refreshes failed and were given up."""
    return {"Last-Modified": http_date(freshness.computed_at.timestamp()),
            "Mica-Refresh-Pending": "true" if freshness.pending else "false",
            "Mica-Refresh-Failed": "true" if freshness.failed else "false"}


FRESHNESS_HEADERS = [
    OpenApiParameter("Last-Modified", str, OpenApiParameter.HEADER, response=True,
                     description="When the worker last computed the board."),
    OpenApiParameter("Mica-Refresh-Pending", str, OpenApiParameter.HEADER, response=True, enum=["true", "false"],
                     description="true while newer results wait for the board's next refresh."),
    OpenApiParameter("Mica-Refresh-Failed", str, OpenApiParameter.HEADER, response=True, enum=["true", "false"],
                     description="true when the board's last refreshes failed and were given up (the organizers "
                                 "were told); the next change tries again."),
]


class LeaderboardView(APIView):
    """A phase's public leaderboard; scores rounded to the phase's precision for participants."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(responses=LeaderboardRowSerializer(many=True), parameters=FRESHNESS_HEADERS)
    def get(self, request, phase_pk):
        return _rows(request, access.leaderboard_phase(request.user, phase_pk), Split.PUBLIC)


class PrivateLeaderboardView(APIView):
    """The private leaderboard: organizers, and everyone who sees the public one once revealed."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(responses=LeaderboardRowSerializer(many=True), parameters=FRESHNESS_HEADERS)
    def get(self, request, phase_pk):
        return _rows(request, access.private_leaderboard_phase(request.user, phase_pk), Split.PRIVATE)


# -- statistics ---------------------------------------------------------------------------------
class KendallTauSerializer(serializers.Serializer):
    median = serializers.FloatField(allow_null=True)
    low = serializers.FloatField(allow_null=True, help_text="2.5th percentile over the bootstrap samples.")
    high = serializers.FloatField(allow_null=True, help_text="97.5th percentile over the bootstrap samples.")


class TeamStatisticsSerializer(serializers.Serializer):
    team = serializers.CharField()
    rank = RankField(help_text="The rank under the phase's ranking method and tie rule.")
    band = serializers.IntegerField(help_text="Teams whose difference from the team above is not significant "
                                    "share a band (from 1).")
    value = serializers.FloatField(allow_null=True, help_text="What the method ranks by: the metric, its median, "
                                   "the mean rank, or the share of significant wins; rounded for participants.")
    rank_counts = serializers.ListField(child=serializers.IntegerField(), help_text="Rank stability: how many "
                                        "bootstrap samples put the team at rank 1, 2, …")


class ComparisonSerializer(serializers.Serializer):
    metric = serializers.CharField()
    method = serializers.CharField()
    ties = serializers.CharField()
    alpha = serializers.FloatField()
    test = serializers.CharField(allow_null=True, help_text="The pairwise test (wilcoxon, delong), or null when "
                                 "the metric has none.")
    teams = TeamStatisticsSerializer(many=True, help_text="Best first.")
    p_values = serializers.DictField(child=serializers.DictField(child=serializers.FloatField(allow_null=True)),
                                     help_text="{row team: {column team: Holm-adjusted one-sided p-value that the "
                                     "row team is better}}, among the best `pairwise_teams` teams (the adjustment "
                                     "is over every pair of the board).")
    significant = serializers.DictField(child=serializers.DictField(child=serializers.BooleanField()))
    pairwise_teams = serializers.IntegerField(help_text=f"How many of the best teams the two matrices hold: every "
                                              f"team up to {PAIRWISE_TEAMS}; a larger board's bands still come "
                                              "from every pair.")
    kendall_tau = KendallTauSerializer(help_text="Kendall's tau between the ranking and the rankings of bootstrap "
                                       "samples of the cases.")
    n_resamples = serializers.IntegerField()
    ranks_by_method = serializers.DictField(child=serializers.DictField(child=RankField()), help_text="{method: "
                                            "{team: rank}} for every ranking method that applies to the metric.")


class BoardStatisticsSerializer(serializers.Serializer):
    split = serializers.CharField()
    computed = serializers.BooleanField(help_text="false until the worker has computed the statistics once.")
    computed_at = serializers.DateTimeField(allow_null=True)
    refresh_pending = serializers.BooleanField(help_text="Newer results wait for the board's next refresh.")
    notes = serializers.ListField(child=serializers.CharField())
    comparison = ComparisonSerializer(allow_null=True, help_text="null with fewer than two ranked teams, or when "
                                      "the ranking method does not apply (a note says why).")


def shown_comparison(comparison, phase, is_organizer):
    """The stored comparison (mica.leaderboards.statistics.by_team) as the API gives it; its
    values and p-values rounded like the board's scores for all but organizers."""
    shown = (lambda value: value) if is_organizer else phase.shown_score
    names = comparison["names"]
    return {
        "metric": comparison["metric"], "method": comparison["method"], "ties": comparison["ties"],
        "alpha": comparison["alpha"], "test": comparison["pairwise"]["test"],
        "teams": [{"team": name, "rank": comparison["ranks"][name], "band": comparison["bands"][name],
                   "value": shown(comparison["values"][name]),
                   "rank_counts": comparison["stability"]["rank_counts"][name]} for name in names],
        "p_values": {a: {b: shown(p) for b, p in row.items()} for a, row in comparison["pairwise"]["p_values"].items()},
        "significant": comparison["pairwise"]["significant"],
        "pairwise_teams": comparison["pairwise"].get("teams", len(names)),
        "kendall_tau": {key: shown(value) for key, value in comparison["stability"]["kendall_tau"].items()},
        "n_resamples": comparison["stability"]["n_resamples"],
        "ranks_by_method": comparison["robustness"],
    }


class BoardStatisticsView(APIView):
    """A board's ranking statistics, as its statistics page shows them: pairwise Holm-adjusted
    p-values, significance bands, Kendall's tau and rank stability over bootstrap samples, and
    the ranks under each ranking method. The private board's once revealed (organizers always)."""

    permission_classes = [permissions.AllowAny]
    split = Split.PUBLIC

    @extend_schema(responses=BoardStatisticsSerializer)
    def get(self, request, phase_pk):
        phase = board_phase(request.user, phase_pk, self.split)
        statistics = LeaderboardSnapshot.statistics_for(phase, self.split)
        answer = {"split": self.split, "computed": statistics is not None, "computed_at": None,
                  "refresh_pending": True, "notes": [], "comparison": None}
        if statistics is not None:
            comparison = statistics["comparison"]
            answer.update(
                computed_at=statistics["freshness"].computed_at, refresh_pending=statistics["freshness"].pending,
                notes=statistics["notes"],
                comparison=comparison and shown_comparison(comparison, phase, phase.challenge.is_organizer(request.user)),
            )
        return Response(BoardStatisticsSerializer(answer).data)


class PrivateBoardStatisticsView(BoardStatisticsView):
    """The private board's statistics: organizers, and everyone who sees the public board once revealed."""

    split = Split.PRIVATE
