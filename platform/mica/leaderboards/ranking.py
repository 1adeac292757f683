"""A phase's leaderboard: one row per team, ranked by the challenge's primary metric."""

from dataclasses import dataclass

from mica.submissions.models import Status, Submission


@dataclass(frozen=True)
class LeaderboardRow:
    rank: int
    team: str
    score: float
    interval: list | None  # the primary metric's confidence interval, when the evaluator gives one
    metrics: dict
    submission_uuid: str
    submitted_at: object
    n_scored: int


def leaderboard(phase):
    """Rows sorted best first; ties share the best rank (challengeR's "min")."""
    challenge = phase.challenge
    higher_is_better = challenge.primary_metric_higher_is_better
    scored = (
        Submission.objects.filter(phase=phase, status=Status.SCORED, hidden_from_leaderboard=False)
        .exclude(primary_score=None)
        .select_related("team")
        .order_by("created_at")
    )
    chosen, counts = {}, {}
    for submission in scored:
        team_id = submission.team_id
        counts[team_id] = counts.get(team_id, 0) + 1
        current = chosen.get(team_id)
        latest_wins = challenge.leaderboard_selection == challenge.LeaderboardSelection.LATEST
        if current is None or latest_wins or _is_better(submission.primary_score, current.primary_score, higher_is_better):
            chosen[team_id] = submission

    ordered = sorted(
        chosen.values(),
        key=lambda s: (-s.primary_score if higher_is_better else s.primary_score, s.created_at),
    )
    rows, previous_score, previous_rank = [], None, 0
    for position, submission in enumerate(ordered, start=1):
        rank = previous_rank if submission.primary_score == previous_score else position
        rows.append(
            LeaderboardRow(
                rank=rank,
                team=submission.team.name,
                score=submission.primary_score,
                interval=submission.result["metrics"].get(f"{challenge.primary_metric}_ci"),
                metrics={k: v for k, v in submission.result["metrics"].items() if isinstance(v, (int, float))},
                submission_uuid=str(submission.uuid),
                submitted_at=submission.created_at,
                n_scored=counts[submission.team_id],
            )
        )
        previous_score, previous_rank = submission.primary_score, rank
    return rows


def _is_better(score, other, higher_is_better):
    return score > other if higher_is_better else score < other
