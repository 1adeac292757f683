"""A phase's leaderboards, read from evaluations: one row per team, ranked by the phase's
primary metric, on the public part of the test set or (once revealed) the private part.

Which submission of a team counts is the phase's rule: its best by public score, its latest, or
the ones it selected (up to N; when it selected none, its N best by public score). On the
private leaderboard the counted submission is still chosen by public score or by the team, and
then ranked by its private score, so no team can pick its submission by the private part.
Baselines are shown, marked, without a rank. Each query count is fixed, whatever the number of
submissions.
"""

from dataclasses import dataclass, field, replace

from django.db.models import Count, F, Q, Window
from django.db.models.functions import RowNumber

from mica.challenges.models import Split
from mica.evaluations.models import Evaluation
from mica.submissions.models import Submission


@dataclass(frozen=True)
class LeaderboardRow:
    rank: int | None  # None for a baseline
    team: str
    is_baseline: bool
    score: float
    interval: list | None  # the primary metric's 95% interval [low, high], when the evaluator gives one
    metrics: dict
    submission_uuid: str
    submitted_at: object
    n_scored: int
    # Every shown metric's interval: {metric: {"low", "high", "degenerate"}}.
    intervals: dict = field(default_factory=dict)
    # Teams whose difference from the team above is not significant share a band (set by the
    # worker's statistics; None before they are computed, and for baselines).
    band: int | None = None

    def rounded(self, phase):
        """The row as participants see it while the phase runs (see Phase.shown_score)."""
        def shown(value):
            if isinstance(value, list):
                return [phase.shown_score(v) for v in value]
            return phase.shown_score(value)

        return replace(self, score=shown(self.score), interval=shown(self.interval) if self.interval else None,
                       metrics={name: shown(value) for name, value in self.metrics.items()},
                       intervals={name: dict(interval, low=shown(interval["low"]), high=shown(interval["high"]))
                                  for name, interval in self.intervals.items()})


def scored_evaluations(phase, split):
    """Successful evaluations of the phase's valid submissions on one part, against the test
    set's latest truth version; disqualified teams left out."""
    return Evaluation.objects.filter(
        submission__phase=phase, truth_version=phase.test_set.latest_version, split=split,
        status=Evaluation.Status.SUCCEEDED, submission__status=Submission.Status.ACCEPTED,
    ).exclude(primary_score=None).filter(Q(submission__team__disqualified_at=None) | Q(submission__is_baseline=True))


def leaderboard(phase, split=Split.PUBLIC):
    """Rows sorted best first; ties share the best rank (challengeR's "min"); baselines last."""
    public = scored_evaluations(phase, Split.PUBLIC)
    teams = public.filter(submission__is_baseline=False)
    counted = _counted_per_team(phase, teams)
    if split == Split.PUBLIC:
        chosen = counted.filter(position=1)
    else:
        chosen = _best_private(phase, counted)
    chosen = list(chosen.select_related("submission__team").only(*_ROW_FIELDS))
    baselines = list(
        scored_evaluations(phase, split).filter(submission__is_baseline=True)
        .select_related("submission").only(*_ROW_FIELDS)
    )
    n_scored = dict(teams.values_list("submission__team_id").annotate(n=Count("pk")).order_by())
    higher = phase.higher_is_better

    def sort_key(evaluation):
        return (-evaluation.primary_score if higher else evaluation.primary_score, evaluation.submission.created_at)

    rows, previous_score, previous_rank = [], None, 0
    for position, evaluation in enumerate(sorted(chosen, key=sort_key), start=1):
        rank = previous_rank if evaluation.primary_score == previous_score else position
        rows.append(_row(phase, evaluation, rank, n_scored.get(evaluation.submission.team_id, 0)))
        previous_score, previous_rank = evaluation.primary_score, rank
    rows += [_row(phase, evaluation, None, 1) for evaluation in sorted(baselines, key=sort_key)]
    return rows


_ROW_FIELDS = ["primary_score", "metrics", "intervals", "submission__uuid", "submission__created_at", "submission__comment",
               "submission__is_baseline", "submission__team__name", "submission__team_id"]


def _counted_per_team(phase, evaluations):
    """Public evaluations annotated with their position among the team's counted submissions."""
    if phase.selection == phase.Selection.LATEST:
        order = [F("submission__created_at").desc()]
    else:
        best = F("primary_score").desc() if phase.higher_is_better else F("primary_score").asc()
        order = [best, F("submission__created_at").asc()]
    return evaluations.annotate(
        position=Window(RowNumber(), partition_by=[F("submission__team_id")], order_by=order)
    )


def _best_private(phase, counted):
    """Each team's best private evaluation among the submissions that count for it."""
    if phase.selection == phase.Selection.SELECTED:
        selected_teams = Submission.objects.filter(phase=phase, selected=True).values("team_id")
        candidates = Submission.objects.filter(
            Q(phase=phase, selected=True)
            | Q(pk__in=counted.filter(position__lte=phase.max_selected).exclude(
                submission__team_id__in=selected_teams).values("submission_id"))
        )
    else:
        candidates = Submission.objects.filter(pk__in=counted.filter(position=1).values("submission_id"))
    private = scored_evaluations(phase, Split.PRIVATE).filter(submission__in=candidates.values("pk"))
    best = F("primary_score").desc() if phase.higher_is_better else F("primary_score").asc()
    return private.annotate(
        position=Window(RowNumber(), partition_by=[F("submission__team_id")],
                        order_by=[best, F("submission__created_at").asc()])
    ).filter(position=1)


def _row(phase, evaluation, rank, n_scored):
    submission = evaluation.submission
    metrics = evaluation.metrics or {}
    intervals = {name: _interval(value) for name, value in (evaluation.intervals or {}).items() if name in phase.metrics}
    primary = intervals.get(phase.primary_metric)
    return LeaderboardRow(
        rank=rank,
        team=(submission.comment or "Baseline") if submission.is_baseline else submission.team.name,
        is_baseline=submission.is_baseline,
        score=evaluation.primary_score,
        interval=[primary["low"], primary["high"]] if primary else metrics.get(f"{phase.primary_metric}_ci"),
        metrics={name: metrics.get(name) for name in phase.metrics},
        submission_uuid=str(submission.uuid),
        submitted_at=submission.created_at,
        n_scored=n_scored,
        intervals=intervals,
    )


def _interval(stored):
    """The part of an evaluator's interval a board shows."""
    return {"low": stored.get("low"), "high": stored.get("high"), "degenerate": bool(stored.get("degenerate"))}
