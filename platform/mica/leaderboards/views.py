from dataclasses import asdict

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from mica.challenges import access
from mica.challenges.models import Split
from mica.core.csv_export import csv_response
from mica.core.storage import download_response
from mica.evaluations.models import Backfill
from mica.forum.models import writeup_links
from mica.sites.transfer import site_columns

from .models import LeaderboardSnapshot, PhaseReport
from .report import report_split
from .statistics import counted_results, per_case_metrics, per_case_values

ROWS_PER_PAGE = 100
# Plots drawn from each case's value: a team's own ROC or FROC curve or per-case dots would tell
# it the truth of the hidden cases, so only organizers see them until the phase has ended.
CASE_LEVEL_PLOTS = {"roc", "froc", "cases"}
SIGNIFICANCE_TEAMS = 15  # the matrix of the top teams; the blob plot and its table say the rest


def board_phase(user, phase_pk, split):
    """The phase whose board (public or private part) the user may see: the leaderboards' rules."""
    if split == Split.PRIVATE:
        return access.private_leaderboard_phase(user, phase_pk)
    return access.leaderboard_phase(user, phase_pk)


def shown_plots(request, phase, drawn):
    """The board's stored plots the user may see (see CASE_LEVEL_PLOTS)."""
    if phase.challenge.is_organizer(request.user) or phase.has_ended():
        return drawn
    return {name: plot for name, plot in drawn.items() if name not in CASE_LEVEL_PLOTS}


def shown_rows(request, phase, split):
    """The board's rows as the user sees them (rounded for all but organizers), and their freshness."""
    rows, freshness = LeaderboardSnapshot.rows_for(phase, split)
    if not phase.challenge.is_organizer(request.user):
        rows = [row.rounded(phase) for row in rows]
    return rows, freshness


def _render(request, phase, split):
    challenge = phase.challenge
    rows, freshness = shown_rows(request, phase, split)
    page = Paginator(rows, ROWS_PER_PAGE).get_page(request.GET.get("page"))
    is_organizer = challenge.is_organizer(request.user)
    version = phase.test_set.latest_version
    rescore = getattr(version, "rescore", None) if version else None
    return render(request, "leaderboards/phase.html", {
        "phase": phase, "challenge": challenge, "rows": with_band_starts(page.object_list), "page": page,
        "freshness": freshness,
        "split": split, "is_organizer": is_organizer,
        "version": version, "rescore_progress": rescore.progress() if rescore and is_organizer else None,
        "private_visible": phase.private_visible_to(request.user),
        "metric_names": phase.metrics[1:],
        "site_columns": site_columns(phase, request.user),
        "writeups": writeup_links(challenge),
        "banded": any(row.band for row in rows),
    })


def with_band_starts(rows):
    """(row, whether a new band starts at it): a line is drawn between bands."""
    return [(row, index > 0 and row.band is not None and row.band != rows[index - 1].band)
            for index, row in enumerate(rows)]


def phase_leaderboard(request, phase_pk):
    return _render(request, access.leaderboard_phase(request.user, phase_pk), Split.PUBLIC)


def private_leaderboard(request, phase_pk):
    return _render(request, access.private_leaderboard_phase(request.user, phase_pk), Split.PRIVATE)


# -- significance -------------------------------------------------------------------------------
def significance(request, phase_pk, split=Split.PUBLIC):
    """The pairwise tests of the top teams, their rank stability and the board's plots."""
    phase = board_phase(request.user, phase_pk, split)
    statistics = LeaderboardSnapshot.statistics_for(phase, split) or {}
    comparison = statistics.get("comparison")
    matrix = None
    if comparison:
        names = comparison["names"][:SIGNIFICANCE_TEAMS]
        p_values, significant = comparison["pairwise"]["p_values"], comparison["pairwise"]["significant"]
        matrix = {"names": names, "rows": [
            (a, [(b, p_values.get(a, {}).get(b), bool(significant.get(a, {}).get(b))) for b in names]) for a in names
        ]}
    return render(request, "leaderboards/significance.html", {
        "phase": phase, "challenge": phase.challenge, "split": split, "statistics": statistics,
        "comparison": comparison, "matrix": matrix, "plots": shown_plots(request, phase, statistics.get("plots", {})),
        "case_plots_held": len(shown_plots(request, phase, statistics.get("plots", {}))) < len(statistics.get("plots", {})),
        "private_visible": phase.private_visible_to(request.user), "is_organizer": phase.challenge.is_organizer(request.user),
        "plot_url": "leaderboards:private_plot" if split == Split.PRIVATE else "leaderboards:plot",
        "tab": "private_significance" if split == Split.PRIVATE else "significance",
        "backfill": phase.backfills.first() if phase.challenge.is_organizer(request.user) else None,
    })


@login_required
@require_POST
def request_backfill(request, phase_pk):
    """Organizers: a worker scores again the evaluations stored before results kept intervals,
    per-case labels and scores, and FROC curves (mica.evaluations.models.Backfill)."""
    phase = access.organized_phase(request.user, phase_pk)
    backfill = Backfill.request(phase, request.user)
    if backfill is None:
        messages.info(request, "Every evaluation of this phase has its intervals, per-case values and curves.")
    else:
        messages.success(request, f"{backfill.total} evaluations are being scored again; the boards are refreshed "
                                  "when they are done.")
    return redirect("leaderboards:significance", phase.pk)


def plot_svg(request, phase_pk, name, split=Split.PUBLIC):
    """One stored plot of a board, as an image (pages show it with <img>: no inline code)."""
    phase = board_phase(request.user, phase_pk, split)
    drawn = shown_plots(request, phase, (LeaderboardSnapshot.statistics_for(phase, split) or {}).get("plots") or {}).get(name)
    if drawn is None:
        raise Http404("No such plot.")
    return _svg_response(drawn["svg"])


def _svg_response(svg):
    response = HttpResponse(svg, content_type="image/svg+xml; charset=utf-8")
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, max-age=60"
    return response


# -- exports ------------------------------------------------------------------------------------
def board_records(rows, sites):
    """The rows as plain records, for the JSON export and the API: each with its sites' scores."""
    for row in rows:
        record = asdict(row)
        del record["submission_uuid"]  # another team's submission is not theirs to look up
        record["submitted_at"] = row.submitted_at.isoformat()
        record["sites"] = {site.name: cells.get(row.team) for site, cells in sites}
        yield record


def export_csv(request, phase_pk, split=Split.PUBLIC):
    """The board as CSV: rank, band, team, each metric with its 95% interval, each site's score."""
    phase = board_phase(request.user, phase_pk, split)
    rows, _ = shown_rows(request, phase, split)
    sites = site_columns(phase, request.user)
    header = ["rank", "band", "team", "baseline"]
    for name in phase.metrics:
        header += [name, f"{name}_low", f"{name}_high", f"{name}_degenerate"]
    for site, _ in sites:
        header += [f"site:{site.name}", f"site:{site.name}_low", f"site:{site.name}_high"]
    header += ["n_scored", "submitted_at"]
    lines = []
    for row in rows:
        line = [row.rank, row.band, row.team, row.is_baseline]
        for name in phase.metrics:
            interval = row.intervals.get(name) or {}
            line += [row.metrics.get(name), interval.get("low"), interval.get("high"), interval.get("degenerate")]
        for _, cells in sites:
            cell = cells.get(row.team) or {}
            line += [cell.get("value"), *(cell.get("interval") or [None, None])]
        lines.append(line + [row.n_scored, row.submitted_at.isoformat()])
    return csv_response(f"{phase.challenge.slug}-{phase.pk}-{split}-leaderboard.csv", header, lines)


def export_json(request, phase_pk, split=Split.PUBLIC):
    phase = board_phase(request.user, phase_pk, split)
    rows, freshness = shown_rows(request, phase, split)
    response = JsonResponse({
        "challenge": phase.challenge.slug, "phase": phase.name, "split": split,
        "primary_metric": phase.primary_metric, "higher_is_better": phase.higher_is_better,
        "ranking_method": phase.ranking_method, "ties": phase.ranking_ties, "alpha": phase.ranking_alpha,
        "computed_at": freshness.computed_at.isoformat(), "refresh_pending": freshness.pending,
        "rows": list(board_records(rows, site_columns(phase, request.user))),
    })
    response["Content-Disposition"] = f'attachment; filename="{phase.challenge.slug}-{phase.pk}-{split}-leaderboard.json"'
    return response


@login_required
def per_case_csv(request, phase_pk, split=Split.PUBLIC):
    """Organizers: the long table challengeR reads (team, submission, case, metric, value) of
    the board's counted submissions."""
    phase = access.organized_phase(request.user, phase_pk)
    rows, _ = LeaderboardSnapshot.rows_for(phase, split)
    uuids = {row.team: row.submission_uuid for row in rows if not row.is_baseline}
    results = counted_results(phase, split, rows)
    lines = [
        [team, uuids[team], case_id, metric, value]
        for team, result in results.items() for metric in per_case_metrics(result)
        for case_id, value in per_case_values(result, metric)
    ]
    return csv_response(f"{phase.challenge.slug}-{phase.pk}-{split}-per-case.csv",
                        ["team", "submission", "case", "metric", "value"], lines)


# -- the challenge report -----------------------------------------------------------------------
@login_required
def report(request, phase_pk):
    """Organizers: the latest report of the phase, and the button that builds a new one."""
    phase = access.organized_phase(request.user, phase_pk)
    done = PhaseReport.latest_done(phase)
    return render(request, "leaderboards/report.html", {
        "phase": phase, "challenge": phase.challenge, "report": done,
        "plot_src": {name: reverse("leaderboards:report_plot", args=[phase.pk, name])
                     for name in (done.content["plots"] if done else {})},
        "latest": phase.reports.first(), "split": report_split(phase), "tab": "report", "is_organizer": True,
        "private_visible": True,
    })


@login_required
@require_POST
def request_report(request, phase_pk):
    phase = access.organized_phase(request.user, phase_pk)
    PhaseReport.request(phase, request.user)
    messages.success(request, "The report is being built; this page shows it when it is ready.")
    return redirect("leaderboards:report", phase.pk)


def _done_report(request, phase_pk):
    phase = access.organized_phase(request.user, phase_pk)
    done = PhaseReport.latest_done(phase)
    if done is None:
        raise Http404("No report yet.")
    return phase, done


@login_required
def report_pdf(request, phase_pk):
    phase, done = _done_report(request, phase_pk)
    return download_response(done.pdf, f"{phase.challenge.slug}-{phase.pk}-report.pdf", content_type="application/pdf")


@login_required
def report_plot(request, phase_pk, name):
    _, done = _done_report(request, phase_pk)
    drawn = done.content["plots"].get(name)
    if drawn is None:
        raise Http404("No such plot.")
    return _svg_response(drawn["svg"])
