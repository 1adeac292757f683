"""The challenge report of a phase, built by a worker (PhaseReport): the design as the BIAS
guideline asks for it (task, data, split, metrics, ranking, teams, submissions), the raw data,
the podium and ranking heatmap, the blob plot, the significance map, the ranking's robustness
across methods, and the per-case table. Stored as JSON content that the site's page renders,
and as a PDF (WeasyPrint) of the same template with the plots embedded.
"""

import base64
from dataclasses import asdict

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone

from mica.challenges.models import Split
from mica.submissions.models import Submission

from . import plots
from .ranking import leaderboard
from .statistics import (
    case_matrix, compare, counted_results, distribution_metric, leaderboard_plots, missing_plots, patient_groups,
    per_case_metrics, per_case_values, ranked_rows,
)

PER_CASE_ROWS = 60  # the page's excerpt; the organizers' CSV has every row


def report_split(phase):
    """The final ranking's part: the private one when the test set has one."""
    return Split.PRIVATE if phase.test_set.cases.filter(split=Split.PRIVATE).exists() else Split.PUBLIC


def build_content(phase):
    split = report_split(phase)
    rows = leaderboard(phase, split)
    results = counted_results(phase, split, rows)
    notes, comparison = [], None
    try:
        comparison = compare(phase, results, patient_groups(phase, split))
    except ValueError as error:
        notes.append(f"No ranking statistics with the method {phase.get_ranking_method_display()!r}: {error}")
    rows = ranked_rows(phase, rows, comparison)
    names = [row.team for row in rows if not row.is_baseline and row.team in results]
    drawn = leaderboard_plots(phase, split, names, results) if names else {}
    notes += missing_plots(phase, results)
    metric = distribution_metric(phase, results[names[0]]) if names else None
    if metric and len(names) >= 2:
        _, values = case_matrix(results, names, metric)
        higher = _higher_is_better(phase, metric)
        if values and values[names[0]]:
            drawn["podium"] = plots.podium(values, metric=metric, higher_is_better=higher)
            drawn["heatmap"] = plots.ranking_heatmap(values, higher_is_better=higher)
    if comparison is not None:
        drawn["blob"] = plots.blob(comparison["names"], comparison["stability"]["rank_counts"])
        drawn["significance"] = plots.significance_map(comparison["names"], comparison["pairwise"]["significant"])
        drawn["robustness"] = plots.robustness(comparison["names"], comparison["robustness"])
    return {
        "generated_at": timezone.now().isoformat(timespec="seconds"),
        "split": split,
        "design": design(phase, split, rows),
        "ranking": [dict(asdict(row), submitted_at=row.submitted_at.isoformat()) for row in rows],
        "comparison": comparison,
        "plots": drawn,
        "per_case": per_case_excerpt(results, names),
        "notes": notes,
    }


def _higher_is_better(phase, metric):
    import evaluator

    known = evaluator.METRICS.get(metric)
    return known.higher_is_better if known else phase.higher_is_better


def design(phase, split, rows):
    """The BIAS guideline's design fields, as [(section, [(field, value)])]."""
    test_set, challenge = phase.test_set, phase.challenge
    version = test_set.latest_version
    counts = test_set.split_counts()
    n_patients = test_set.cases.exclude(patient="").values("patient").distinct().count()
    submissions = Submission.objects.filter(phase=phase, status=Submission.Status.ACCEPTED)
    return [
        ("Task", [("Challenge", challenge.title), ("Phase", phase.name), ("Task type", challenge.get_task_type_display()),
                  ("Submission period (UTC)", f"{phase.starts_at:%Y-%m-%d %H:%M} – {phase.ends_at:%Y-%m-%d %H:%M}")]),
        ("Data", [("Test set", test_set.name), ("Cases", str(sum(counts.values()))),
                  ("Patients", str(n_patients) if n_patients else "not given by the organizers"),
                  ("Ground truth", f"version {version.number}" + (f" ({version.note})" if version.note else ""))]),
        ("Split", [("Public part", f"{counts.get(Split.PUBLIC, 0)} cases"),
                   ("Private part", f"{counts.get(Split.PRIVATE, 0)} cases"),
                   ("How", f"random, seed {test_set.split_seed}" + (", stratified by label" if test_set.split_stratified else "")
                    + (", no patient in both parts" if test_set.split_grouped else "")),
                   ("Ranked on", f"the {split} part")]),
        ("Metrics", [("Primary", f"{phase.primary_metric} ({'higher' if phase.higher_is_better else 'lower'} is better)"),
                     ("Secondary", ", ".join(phase.secondary_metrics) or "none"),
                     ("Intervals", "95% bootstrap intervals"
                      + (", resampling patients" if n_patients else ", resampling cases"))]),
        ("Ranking", [("Method", phase.get_ranking_method_display()), ("Ties", phase.get_ranking_ties_display()),
                     ("Significance", f"alpha = {phase.ranking_alpha:g}, pairwise tests adjusted by Holm's method"),
                     ("Bootstrap samples", str(settings.MICA_RANKING_RESAMPLES)),
                     ("Counted submissions", phase.selection_rule)]),
        ("Participation", [("Teams ranked", str(sum(1 for row in rows if not row.is_baseline))),
                           ("Baselines", str(sum(1 for row in rows if row.is_baseline))),
                           ("Accepted submissions", str(submissions.count()))]),
    ]


def per_case_excerpt(results, names):
    """The first PER_CASE_ROWS rows of the long table (team, case, metric, value) and its length."""
    rows, total = [], 0
    for name in names:
        for metric in per_case_metrics(results[name]):
            for case_id, value in per_case_values(results[name], metric):
                total += 1
                if len(rows) < PER_CASE_ROWS:
                    rows.append([name, case_id, metric, value])
    return {"columns": ["team", "case", "metric", "value"], "rows": rows, "total": total}


def render_pdf(phase, content):
    """The report as a PDF: the page's own template, standalone, with the SVGs embedded."""
    import weasyprint

    sources = {name: "data:image/svg+xml;base64," + base64.b64encode(drawn["svg"].encode()).decode()
               for name, drawn in content["plots"].items()}
    html = render_to_string("leaderboards/report_document.html",
                            {"phase": phase, "challenge": phase.challenge, "content": content, "plot_src": sources})
    return weasyprint.HTML(string=html).write_pdf()
