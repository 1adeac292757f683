"""How each algorithm transfers across a phase's sites: scores per site side by side, the
difference between two sites with its 95% interval, and the ranking per site next to the pooled one.

The difference's interval: when both sites share per-case values of the metric (and the metric
is a mean of per-case values), a percentile bootstrap of the difference of means, resampling
each site's cases on their own (unpaired: the sites have different cases; 2000 resamples,
seed 0). Otherwise a normal approximation from the two intervals the sites sent: each site's
standard error is its interval's width / (2 × 1.96), and the difference's is the root of the sum
of their squares. The pooled score is the case-weighted mean of the site scores.
"""

import math

import numpy as np

import evaluator

Z = 1.959963984540054
BOOTSTRAP_RESAMPLES = 2000
NORMAL = "normal approximation from the sites' 95% intervals"
BOOTSTRAP = "unpaired percentile bootstrap of the per-case values"


def _se(interval):
    if not interval or any(v is None for v in interval):
        return None
    return (interval[1] - interval[0]) / (2 * Z)


def difference(metric, first, second):
    """{value, interval, method} of first − second (two site results), or None without values."""
    a, b = first["metrics"].get(metric), second["metrics"].get(metric)
    if a is None or b is None:
        return None
    per_case = [(r.get("per_case") or {}).get(metric) for r in (first, second)]
    described = evaluator.METRICS.get(metric)
    if all(per_case) and described is not None and described.per_case:
        rng = np.random.default_rng(0)
        x, y = (np.array([v for v in values if v is not None], dtype=float) for values in per_case)
        if len(x) and len(y):
            diffs = (x[rng.integers(0, len(x), (BOOTSTRAP_RESAMPLES, len(x)))].mean(axis=1)
                     - y[rng.integers(0, len(y), (BOOTSTRAP_RESAMPLES, len(y)))].mean(axis=1))
            low, high = np.percentile(diffs, [2.5, 97.5])
            return {"value": a - b, "interval": [float(low), float(high)], "method": BOOTSTRAP}
    se_a, se_b = _se((first.get("intervals") or {}).get(metric)), _se((second.get("intervals") or {}).get(metric))
    if se_a is None or se_b is None:
        return {"value": a - b, "interval": None, "method": "no interval: a site sent none"}
    half = Z * math.sqrt(se_a ** 2 + se_b ** 2)
    return {"value": a - b, "interval": [a - b - half, a - b + half], "method": NORMAL}


def _ranks(scores, higher_is_better):
    """{key: rank} (1 best, ties share the best rank); keys without a score are left out."""
    known = {k: v for k, v in scores.items() if v is not None}
    ordered = sorted(known.values(), reverse=higher_is_better)
    return {k: 1 + ordered.index(v) for k, v in known.items()}


def transferability(phase):
    """The view's table for a phase: its sites, the metric, and one row per scored algorithm."""
    from .models import Site

    sites = list(Site.objects.filter(phase=phase))
    metric = phase.primary_metric
    higher = evaluator.METRICS[metric].higher_is_better if metric in evaluator.METRICS else True
    results = {site.pk: site.latest_results() for site in sites}
    algorithms = {}
    for site in sites:
        for job in results[site.pk].values():
            algorithms[job.algorithm_id] = job.algorithm
    rows = []
    for algorithm in algorithms.values():
        cells, weighted, cases = [], 0.0, 0
        for site in sites:
            job = results[site.pk].get(algorithm.pk)
            result = job.result if job else None
            value = result["metrics"].get(metric) if result and metric in result["metrics"] else None
            interval = (result.get("intervals") or {}).get(metric) if result else None
            cells.append({"site": site, "value": value, "interval": interval, "result": result,
                          "n_cases": result.get("n_cases") if result else None})
            if value is not None:
                weighted += value * result["n_cases"]
                cases += result["n_cases"]
        differences = []
        for i in range(len(sites)):
            for j in range(i + 1, len(sites)):
                first, second = cells[i]["result"], cells[j]["result"]
                if first and second and metric in first["metrics"] and metric in second["metrics"]:
                    differences.append({"pair": f"{sites[i].name} − {sites[j].name}",
                                        **(difference(metric, first, second) or {})})
        rows.append({"algorithm": algorithm, "cells": cells, "differences": differences,
                     "pooled": weighted / cases if cases else None})
    for index, site in enumerate(sites):
        ranks = _ranks({row["algorithm"].pk: row["cells"][index]["value"] for row in rows}, higher)
        for row in rows:
            row["cells"][index]["rank"] = ranks.get(row["algorithm"].pk)
    pooled = _ranks({row["algorithm"].pk: row["pooled"] for row in rows}, higher)
    for row in rows:
        row["pooled_rank"] = pooled.get(row["algorithm"].pk)
    rows.sort(key=lambda row: (row["pooled_rank"] is None, row["pooled_rank"] or 0))
    return {"sites": sites, "metric": metric, "higher_is_better": higher, "rows": rows}


def site_columns(phase, user):
    """For the phase's leaderboard and its exports: [(site, {team name: {value, interval}})], the
    phase's primary metric as each site last scored the team's newest algorithm; [] for a phase
    without sites. Rounded for all but the organizers as the board's own scores are
    (Phase.shown_score), so that a site's score cannot decode its labels either."""
    from .models import Site

    shown = (lambda value: value) if phase.challenge.is_organizer(user) else phase.shown_score
    columns = []
    for site in Site.objects.filter(phase=phase):
        cells = {}
        for job in sorted(site.latest_results().values(), key=lambda job: job.algorithm.created_at):
            result = job.result
            interval = (result.get("intervals") or {}).get(phase.primary_metric)
            cells[job.algorithm.team.name] = {"value": shown(result["metrics"].get(phase.primary_metric)),
                                              "interval": [shown(v) for v in interval] if interval else None}
        columns.append((site, cells))
    return columns


def algorithm_site_rows(algorithm):
    """For an algorithm's own transferability page: its newest result at every site, as rows
    of {site, phase, cells: [{value, interval}] for `metrics`}, and those metric names."""
    from .models import SiteJob

    jobs = (SiteJob.objects.filter(algorithm=algorithm, kind=SiteJob.Kind.EVALUATE, status=SiteJob.Status.SUCCEEDED)
            .select_related("site__phase").order_by("site__name", "-completed_at"))
    newest = {}
    for job in jobs:
        newest.setdefault(job.site_id, job)
    metrics = []
    for job in newest.values():
        metrics += [name for name in job.site.metrics if name not in metrics]
    rows = [{"site": job.site, "phase": job.site.phase, "n_cases": job.result.get("n_cases"),
             "cells": [{"value": job.result["metrics"].get(name),
                        "interval": (job.result.get("intervals") or {}).get(name)} for name in metrics]}
            for job in newest.values()]
    return metrics, rows
