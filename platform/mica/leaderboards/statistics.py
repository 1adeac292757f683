"""Whether the winner really won: a board's ranking statistics and plots, computed by the
leaderboard's worker from the counted submissions' stored per-case results (never on a page view).

`board_statistics` (the refresh) calls `evaluator.compare` with the phase's ranking method, tie
rule and alpha, re-ranks the rows when the method is not the plain metric and bands the teams (a
team whose difference from the team above is not significant shares its band); `board_plots`
(the drawing task, after the refresh) draws the plots (mica.leaderboards.plots). Everything they
return is JSON, stored in the board's snapshot.
"""

from dataclasses import replace

from django.conf import settings

import evaluator
from mica.evaluations.models import Evaluation

from . import plots

# Keys of a per-case row that are not a metric's value.
NOT_VALUES = {"case_id", "missing", "label", "score", "n_predictions"}
ROC_TEAMS = 5
# The pairwise matrices are stored for the best teams only: a 1,400-team board's pair of full
# matrices is 110 MB of JSON, rewritten at every refresh and read by every statistics view. The
# bands (each team against the one above) come from the whole matrix; the page shows the top 15
# (views.SIGNIFICANCE_TEAMS), the significance map the top 20 (plots.TOP).
PAIRWISE_TEAMS = 50


def per_case_metrics(result):
    """The metrics a stored result has per-case values of, in the order of its rows' keys."""
    rows = (result or {}).get("per_case") or []
    if not rows:
        return []
    return [key for key, value in rows[0].items()
            if key not in NOT_VALUES and (value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)))]


def per_case_values(result, metric):
    """[(case id, value)] of one metric, in the result's case order."""
    return [(row["case_id"], row.get(metric)) for row in (result or {}).get("per_case") or []]


def counted_results(phase, split, rows):
    """{team: stored result} of the rows' counted submissions on this part (baselines left out)."""
    ranked = [row for row in rows if not row.is_baseline]
    by_uuid = dict(
        Evaluation.objects.filter(
            submission__uuid__in=[row.submission_uuid for row in ranked], split=split,
            truth_version=phase.test_set.latest_version, status=Evaluation.Status.SUCCEEDED,
        ).values_list("submission__uuid", "result")
    )
    by_uuid = {str(uuid): result for uuid, result in by_uuid.items()}
    return {row.team: by_uuid[row.submission_uuid] for row in ranked if row.submission_uuid in by_uuid}


def patient_groups(phase, split):
    cases = phase.test_set.cases.filter(split=split).exclude(patient="")
    return dict(cases.values_list("case_id", "patient")) or None


def compare(phase, results, groups):
    """evaluator.compare with the phase's settings, keyed by team (see `by_team`); None when
    fewer than two teams are ranked. ValueError when the method does not apply to the metric."""
    if len(results) < 2:
        return None
    return by_team(evaluator.compare(
        phase.challenge.task_type, results, metric=phase.primary_metric, higher_is_better=phase.higher_is_better,
        method=phase.ranking_method, ties=phase.ranking_ties, alpha=phase.ranking_alpha,
        n_resamples=settings.MICA_RANKING_RESAMPLES, seed=0, groups=groups,
        max_seconds=settings.MICA_SIGNIFICANCE_STABILITY_SECONDS,
    ))


def by_team(comparison):
    """The evaluator's comparison (lists in the order of `names`, best first) with every list
    keyed by team instead, bands counted from 1: what pages and plots look teams up in. `names`
    keeps the order (a stored JSON object does not). The pairwise matrices keep the best
    `PAIRWISE_TEAMS` teams (their count in `pairwise["teams"]`)."""
    names = comparison["names"]
    top = names[:PAIRWISE_TEAMS]

    def keyed(values):
        return dict(zip(names, values))

    def matrix(rows):
        """{row team: {column team: value}} of the best teams."""
        return {a: dict(zip(top, row[:len(top)])) for a, row in zip(top, rows)}

    pairwise, stability = comparison["pairwise"], comparison["stability"]
    return dict(
        comparison, ranks=keyed(comparison["ranks"]), values=keyed(comparison["values"]),
        bands=keyed(band + 1 for band in comparison["bands"]),
        pairwise=dict(pairwise, p_values=matrix(pairwise["p_values"]), significant=matrix(pairwise["significant"]),
                      teams=len(top)),
        stability=dict(stability, rank_counts=keyed(stability["rank_counts"])),
        robustness={method: keyed(ranks) for method, ranks in comparison["robustness"].items()},
    )


def ranked_rows(phase, rows, comparison):
    """The rows ranked by the comparison (when the phase ranks other than by the plain metric
    with the best shared rank) and banded; baselines stay last, unranked."""
    if comparison is None:
        return rows
    teams = [row for row in rows if not row.is_baseline]
    baselines = [row for row in rows if row.is_baseline]
    plain = phase.ranking_method == phase.RankingMethod.MEAN and phase.ranking_ties == phase.Ties.MIN
    if not plain:
        ranks = comparison["ranks"]
        order = {name: i for i, name in enumerate(comparison["names"])}
        teams = [replace(row, rank=_whole(ranks[row.team])) for row in teams if row.team in ranks]
        teams.sort(key=lambda row: (row.rank, order[row.team]))
    return [replace(row, band=comparison["bands"].get(row.team)) for row in teams] + baselines


def _whole(rank):
    return int(rank) if float(rank).is_integer() else float(rank)


def board_statistics(phase, split, rows):
    """(rows re-ranked and banded, {"comparison", "notes"}): the ranking's statistics."""
    results = counted_results(phase, split, rows)
    notes, comparison = missing_plots(phase, results), None
    try:
        comparison = compare(phase, results, patient_groups(phase, split))
    except ValueError as error:  # e.g. a median of the AUC, which has no per-case values
        notes.append(f"No ranking statistics with the method {phase.get_ranking_method_display()!r}: {error}")
    drawn = comparison and comparison["stability"]["n_resamples"]
    if drawn and drawn < settings.MICA_RANKING_RESAMPLES:
        notes.append(f"Rank stability from {drawn} bootstrap samples, not {settings.MICA_RANKING_RESAMPLES}: the "
                     f"significance ranking of {len(comparison['names'])} teams tests every pair again in each "
                     "sample, and the site gives it about "
                     f"{settings.MICA_SIGNIFICANCE_STABILITY_SECONDS} s (MICA_SIGNIFICANCE_STABILITY_SECONDS).")
    return ranked_rows(phase, rows, comparison), {"comparison": comparison, "notes": notes}


def board_plots(phase, split, rows, statistics):
    """{name: plot} of a board whose rows and statistics are stored: the leaderboard's plots,
    and the blob plot and significance map when teams were compared."""
    results = counted_results(phase, split, rows)
    names = [row.team for row in rows if not row.is_baseline and row.team in results]
    drawn = leaderboard_plots(phase, split, names, results) if names else {}
    comparison = (statistics or {}).get("comparison")
    if comparison is not None:
        drawn["blob"] = plots.blob(comparison["names"], comparison["stability"]["rank_counts"])
        drawn["significance"] = plots.significance_map(comparison["names"], comparison["pairwise"]["significant"])
    return drawn


def missing_plots(phase, results):
    """Why a board lacks a plot its task could have (shown under the plots)."""
    if phase.challenge.task_type != "detection":
        return []
    without = [result for result in results.values() if "froc_curve" not in result]
    if not without:
        return []
    if all(result["metrics"].get("froc") is None for result in without):
        return ["No FROC curves: the truth of this part has no boxes."]
    return [f"No FROC curve for {len(without)} of the {len(results)} teams: their results were scored before "
            "results kept the curve; organizers score them again from the statistics page."]


def leaderboard_plots(phase, split, names, results):
    """ROC curves (classification, binary) or FROC curves (detection), per-case distributions and
    the board's history."""
    drawn = {"history": history_plot(phase, split)}
    if phase.challenge.task_type == "classification":
        curves = roc_curves(names[:ROC_TEAMS], results)
        if curves:
            drawn["roc"] = plots.roc_curves(curves)
    if phase.challenge.task_type == "detection":
        curves = froc_curves(names[:ROC_TEAMS], results)
        if curves:
            drawn["froc"] = plots.froc_curves(curves, fp_rates=results[curves[0][0]]["froc_curve"]["fp_rates"])
    metric = distribution_metric(phase, results[names[0]])
    if metric:
        values = {name: [value for _, value in per_case_values(results[name], metric)] for name in names}
        drawn["cases"] = plots.case_distributions(values, metric=metric, higher_is_better=_higher(metric, phase))
    return drawn


def distribution_metric(phase, result):
    """The first of the phase's metrics with per-case values, else the first such value at all."""
    available = per_case_metrics(result)
    return next((m for m in phase.metrics if m in available), available[0] if available else None)


def _higher(metric, phase):
    known = evaluator.METRICS.get(metric)
    return known.higher_is_better if known else phase.higher_is_better


def roc_curves(names, results):
    from sklearn.metrics import roc_auc_score, roc_curve

    curves = []
    for name in names:
        pairs = [(row.get("label"), row.get("score")) for row in results[name].get("per_case") or []]
        pairs = [(y, s) for y, s in pairs if y in (0, 1) and isinstance(s, (int, float)) and s is not None]
        labels = [y for y, _ in pairs]
        if len(set(labels)) < 2:
            return []
        scores = [s for _, s in pairs]
        fpr, tpr, _ = roc_curve(labels, scores)
        curves.append((name, fpr.tolist(), tpr.tolist(), float(roc_auc_score(labels, scores))))
    return curves


def froc_curves(names, results):
    """[(team, fp_per_image, sensitivity, froc, sensitivities at the rates)] of the teams whose
    results keep their FROC curve (see evaluator/README.md, detection)."""
    return [(name, curve["fp_per_image"], curve["sensitivity"], results[name]["metrics"]["froc"],
             results[name]["metrics"]["froc_sensitivity"])
            for name in names if (curve := results[name].get("froc_curve"))]


def history_plot(phase, split):
    """Each team's best score against time, from every scored submission of the part."""
    from .ranking import scored_evaluations

    # Drawn at the precision participants see: a plot must not carry the digits the board rounds off.
    points = [
        (team, created_at, phase.shown_score(score)) for team, created_at, score in
        scored_evaluations(phase, split).filter(submission__is_baseline=False)
        .values_list("submission__team__name", "submission__created_at", "primary_score")
        if phase.shown_score(score) is not None
    ]
    return plots.history(points, metric=phase.primary_metric, higher_is_better=phase.higher_is_better,
                         start=phase.starts_at)


def case_matrix(results, names, metric):
    """teams × cases values of one metric on the cases every team has a value for."""
    columns = [dict(per_case_values(results[name], metric)) for name in names]
    cases = [case for case, _ in per_case_values(results[names[0]], metric)
             if all(column.get(case) is not None for column in columns)]
    return cases, {name: [column[case] for case in cases] for name, column in zip(names, columns)}

