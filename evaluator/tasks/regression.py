"""Regression (e.g. bone age in months).

Formats
-------
Truth and predictions: CSV ``case_id,value`` (finite numbers), one row per case.

Options
-------
value_range (None): ``[low, high]``, the range the organizer allows. A missing case is scored
    as the largest error the range allows, max(|y − low|, |y − high|); without the option the
    range of all the truth's values is used (also when scoring a subset of its cases).
alpha (0.05), n_resamples (1000), seed (0): the bootstrap percentile interval ``mae_ci``.
max_bytes (200 MB), max_line_bytes (1 MiB): size limits of the predictions file and of a line.
"""

from __future__ import annotations

import numpy as np
import torch

from ..problems import ProblemLog
from ..readers import read_numeric_table
from .. import regression as R
from ._common import (CSV_HELP, CSV_OPTIONS, case_facts, clean, label_of, quartile_bins, resolve_options,
                      subset_rows, truth_log)

DEFAULTS = {**CSV_OPTIONS, "value_range": None, "alpha": 0.05, "n_resamples": 1000, "seed": 0}
HELP = {**CSV_HELP,
        "value_range": ("list", "[low, high], the values allowed; a missing case scores the largest error "
                        "this allows (default: the truth's range)."),
        "alpha": ("float", "1 − confidence level of mae_ci."),
        "n_resamples": ("int", "Bootstrap resamples of mae_ci."),
        "seed": ("int", "Seed of the bootstrap of mae_ci.")}
HEADER = ["case_id", "value"]


def read_truth(path, name=None):
    log = truth_log(path, name)
    got = read_numeric_table(path, log, expected_header=HEADER, max_bytes=None)
    log.raise_if_any(ValueError)
    return got[0], got[1][:, 0]


def describe(truth, options, *, strict=True, name=None):
    ids, y = read_truth(truth, name)
    return case_facts("regression", ids, header=list(HEADER), strata=dict(zip(ids, quartile_bins(y))))


def read_predictions(path, ids, options, name=None):
    log = ProblemLog(label_of(path, name))
    got = read_numeric_table(path, log, expected_header=HEADER, allowed_ids=set(ids),
                             max_bytes=options["max_bytes"], max_rows=len(ids),
                             max_line_bytes=options["max_line_bytes"])
    log.raise_if_any()
    return got[0], got[1][:, 0]


def validate(predictions, facts, options=None, name=None):
    options = resolve_options(options, DEFAULTS, "regression")
    read_predictions(predictions, facts["case_ids"], options, name)


def score(truth, predictions, options=None, case_ids=None, name=None):
    from ..statistics import bootstrap_ci

    options = resolve_options(options, DEFAULTS, "regression")
    ids, y = read_truth(truth)
    pred_ids, p = read_predictions(predictions, ids, options, name)
    if options["value_range"] is not None:
        lo, hi = (float(v) for v in options["value_range"])
        if not lo < hi:
            raise ValueError(f"value_range must be [low, high] with low < high, got {options['value_range']!r}")
    else:
        lo, hi = float(y.min()), float(y.max())
    index = {c: i for i, c in enumerate(ids)}
    present = np.zeros(len(ids), dtype=bool)
    yhat = np.where(np.abs(y - lo) >= np.abs(y - hi), lo, hi)  # the worst allowed prediction
    rows = np.fromiter((index[c] for c in pred_ids), dtype=np.int64, count=len(pred_ids))
    yhat[rows] = p
    present[rows] = True
    keep = subset_rows(ids, case_ids)
    ids, y, yhat, present = [ids[i] for i in keep], y[keep], yhat[keep], present[keep]
    with np.errstate(over="ignore"):  # an overflow is reported in the result's notes
        err = np.abs(y - yhat)
    if np.isfinite(err).all():
        low, high = bootstrap_ci(err, n_resamples=int(options["n_resamples"]), alpha=float(options["alpha"]),
                                 seed=int(options["seed"]))
    else:  # an error beyond float64 (1e308 against -1e308): no interval; the result notes it
        low = high = float("inf")
    metrics = {"mae": R.mean_absolute_error(y, yhat), "mae_ci": [clean(low), clean(high)],
               "rmse": R.root_mean_squared_error(y, yhat)}
    per_case = [{"case_id": c, "missing": bool(not present[i]), "mae": float(err[i])} for i, c in enumerate(ids)]
    with np.errstate(over="ignore"):
        squared = err ** 2

    def replicate(W):  # the MAE is a per-case mean, bootstrapped by evaluator.intervals
        return {"rmse": torch.sqrt((W @ torch.as_tensor(squared, device=W.device)) / W.sum(1))}

    return {"task": "regression", "n_cases": len(ids), "missing_cases": int((~present).sum()),
            "metrics": metrics, "per_case": per_case,
            "_intervals": {"alpha": float(options["alpha"]), "replicate": replicate}}
