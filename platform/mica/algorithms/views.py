from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render

from mica.challenges import access as challenge_access
from mica.evaluations.models import Evaluation
from mica.sites.transfer import algorithm_site_rows

from .access import organized_algorithm, organized_phases, run_for
from .forms import RerunForm
from .models import InferenceRun, MetricContainer


@login_required
def run_detail(request, uuid):
    """A run's logs page: exit code, time, peak memory, and its logs where they may be shown."""
    run = run_for(request.user, uuid)
    context = {"run": run, "challenge": run.phase.challenge, "events": run.events.all(),
               "show_logs": run.logs_visible_to(request.user),
               "is_organizer": run.phase.challenge.is_organizer(request.user)}
    return render(request, "algorithms/run.html", context)


@login_required
def challenge_runs(request, slug):
    """Organizers: every run in the challenge, and every algorithm with its re-run and transferability links."""
    challenge = challenge_access.organized_challenge(request.user, slug)
    runs = (InferenceRun.objects.filter(algorithm__challenge=challenge)
            .select_related("algorithm__team", "algorithm__image", "phase", "submission", "truth_version"))
    return render(request, "algorithms/runs.html", {
        "challenge": challenge, "runs": runs,
        "algorithms": challenge.algorithms.select_related("team", "image"),
    })


@login_required
def rerun(request, pk):
    algorithm = organized_algorithm(request.user, pk)
    form = RerunForm(request.POST or None, phases=organized_phases(request.user))
    if request.method == "POST" and form.is_valid():
        try:
            run = InferenceRun.rerun(algorithm=algorithm, phase=form.cleaned_data["phase"],
                                     truth_version=form.cleaned_data["truth_version"], user=request.user)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, "Re-run queued; its scores appear on the transferability page.")
            return redirect(run)
    return render(request, "core/form_page.html", {
        "form": form, "title": f"Re-run {algorithm}", "submit": "Queue the run", "challenge": algorithm.challenge,
        "intro": "Runs this stored image on another test set (or a corrected truth) with that phase's limits, "
                 "and scores it on every case of the test set. Nothing appears on a leaderboard."})


@login_required
def transferability(request, pk):
    """One algorithm's results on several test sets side by side, with their intervals."""
    algorithm = organized_algorithm(request.user, pk)
    metrics, table = transferability_table(algorithm)
    pending = algorithm.runs.filter(status__in=InferenceRun.UNFINISHED).count() + Evaluation.objects.filter(
        submission__inference_run__algorithm=algorithm, status__in=Evaluation.UNFINISHED).count()
    site_metrics, site_rows = algorithm_site_rows(algorithm)
    return render(request, "algorithms/transferability.html", {
        "algorithm": algorithm, "challenge": algorithm.challenge, "metrics": metrics, "rows": table,
        "pending": pending, "site_metrics": site_metrics, "site_rows": site_rows})


def transferability_table(algorithm):
    """(metric names, rows each with a `cells` list: value and interval per metric)."""
    rows = algorithm.transferability()
    metrics = []
    for row in rows:
        for name in row["phase"].metrics:
            if name not in metrics:
                metrics.append(name)
    return metrics, [{**row, "cells": [_cell(row["result"], name) for name in metrics]} for row in rows]


def _cell(result, name):
    """A metric's value and interval from an evaluator result: `intervals` where the statistics
    give them, else the metric's own `<name>_ci`, else none."""
    metrics = result.get("metrics") or {}
    interval = (result.get("intervals") or {}).get(name) or metrics.get(f"{name}_ci")
    if isinstance(interval, dict):
        interval = [interval.get("low"), interval.get("high")]
    return {"value": metrics.get(name), "interval": interval}


@login_required
def metric_container(request, phase_pk):
    """Organizers: the phase's metric container (its declared metrics) and the form to send one."""
    phase = challenge_access.organized_phase(request.user, phase_pk)
    return render(request, "algorithms/metric_container.html", {
        "phase": phase, "challenge": phase.challenge, "container": getattr(phase, "metric_container", None),
        "problem": MetricContainer.attach_problem(phase)})
