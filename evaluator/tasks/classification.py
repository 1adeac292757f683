"""Classification: binary and multi-label (e.g. RSNA intracranial hemorrhage).

Formats
-------
Truth: CSV ``case_id,<label 1>,...,<label k>`` with 0/1 values. One label column is a binary
task; several are a multi-label task.

Predictions: one probability in [0, 1] per truth label, with the **same header as the truth**,
except that when the truth has a single label column the predictions header is exactly
``case_id,score``. One row per case; a case may be missing (it is then scored as the worst
possible prediction: a positive below every other score, a negative above every other, and
counted in ``missing_cases``).

Options
-------
threshold (0.5): a case is positive when score ≥ threshold (sensitivity, specificity).
target_sensitivity (None): also report the operating point: the highest threshold whose
    sensitivity reaches the target, and the specificity there. Missing cases can put this
    threshold outside [0, 1] (at -1 or 2, the scores standing for them) when the target can
    only be reached by counting them.
log_loss_weights (None): ``{label: weight}`` for the weighted multi-label log loss
    (RSNA hemorrhage: ``{"any": 2}``; unlisted labels weigh 1).
labels (None): label names, for validating with ``case_ids`` instead of the truth.
alpha (0.05): 1 − confidence level of ``auc_ci``.
max_bytes (200 MB): size limit of the predictions file.
"""

from __future__ import annotations

import warnings

import numpy as np

from .. import classification as C
from ..problems import ProblemLog
from ..readers import read_numeric_table
from ._common import clean, ids_from, label_of, resolve_options, truth_log

DEFAULTS = {"threshold": 0.5, "target_sensitivity": None, "log_loss_weights": None, "labels": None,
            "alpha": 0.05}
MISSING_POSITIVE, MISSING_NEGATIVE = -1.0, 2.0


def read_truth(path):
    """Return ``(labels, ids, Y)``; a bad truth file raises ValueError."""
    log = truth_log(path)
    from ..readers import iter_csv

    got = iter_csv(path, log, max_bytes=None)
    if got is None:
        log.raise_if_any(ValueError)
    header, rows = got
    rows.close()
    if len(header) < 2 or header[0] != "case_id":
        raise ValueError(f"truth {label_of(path)}: header must be 'case_id,<label>...', found {','.join(header)!r}")
    if len(set(header)) != len(header):
        raise ValueError(f"truth {label_of(path)}: header has duplicate column names")
    got = read_numeric_table(path, log, expected_header=header, max_bytes=None)
    log.raise_if_any(ValueError)
    ids, Y, lines = got
    bad = ~np.isin(Y, (0.0, 1.0))
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(f"truth {label_of(path)}, row {lines[i]}, column {header[1 + j]!r}: "
                         f"labels must be 0 or 1, found {Y[i, j]:g}")
    return header[1:], ids, Y


def expected_header(labels):
    return ["case_id", "score"] if len(labels) == 1 else ["case_id", *labels]


def read_predictions(path, labels, ids, options):
    """Validate and read the predictions; raise SubmissionInvalid listing every problem."""
    log = ProblemLog(label_of(path))
    got = read_numeric_table(path, log, expected_header=expected_header(labels), allowed_ids=set(ids),
                             lo=0.0, hi=1.0, max_bytes=options["max_bytes"], max_rows=len(ids))
    log.raise_if_any()
    return got[0], got[1]


def validate(predictions, *, truth=None, case_ids=None, options=None):
    options = resolve_options(options, DEFAULTS, "classification")
    if truth is not None:
        labels, ids, _ = read_truth(truth)
    else:
        ids = ids_from(case_ids)
        labels = options["labels"]
        if labels is None:
            labels = _labels_from_header(predictions)
    read_predictions(predictions, list(labels), ids, options)


def _labels_from_header(path):
    """Without truth or ``labels``: take the labels from the predictions header."""
    from ..readers import iter_csv

    log = ProblemLog(label_of(path))
    got = iter_csv(path, log, max_bytes=None)
    if got is None:
        log.raise_if_any()
    header, rows = got
    rows.close()
    if header == ["case_id", "score"]:
        return ["score"]
    if len(header) < 2 or header[0] != "case_id":
        log.add(f"wrong header: expected 'case_id,score' or 'case_id,<label>,...', found {','.join(header)!r}", row=1)
        log.raise_if_any()
    return header[1:]


def score(truth, predictions, options=None):
    options = resolve_options(options, DEFAULTS, "classification")
    labels, ids, Y = read_truth(truth)
    pred_ids, P = read_predictions(predictions, labels, ids, options)
    index = {c: i for i, c in enumerate(ids)}
    S = np.where(Y == 1, MISSING_POSITIVE, MISSING_NEGATIVE)
    present = np.zeros(len(ids), dtype=bool)
    rows = np.fromiter((index[c] for c in pred_ids), dtype=np.int64, count=len(pred_ids))
    S[rows] = P
    present[rows] = True
    weights = np.ones(len(labels))
    for name, w in (options["log_loss_weights"] or {}).items():
        if name not in labels:
            raise ValueError(f"log_loss_weights names {name!r}, which is not a truth label ({', '.join(labels)})")
        weights[labels.index(name)] = float(w)
    metrics = compute_metrics(Y, S, labels, options, weights)
    Sc = np.clip(S, np.finfo(np.float64).eps, 1 - np.finfo(np.float64).eps)
    per_case_loss = -(Y * np.log(Sc) + (1 - Y) * np.log1p(-Sc)) @ weights / weights.sum()
    per_case = [{"case_id": c, "missing": bool(not present[i]), "log_loss": clean(per_case_loss[i])}
                for i, c in enumerate(ids)]
    return {"task": "classification", "n_cases": len(ids), "missing_cases": int((~present).sum()),
            "metrics": metrics, "per_case": per_case}


def compute_metrics(Y, S, labels, options, weights):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", C.UndefinedMetricWarning)
        auc, lo, hi = C.auc_confidence_interval(Y, S, alpha=options["alpha"])
        sens, spec = C.sensitivity_specificity(Y, S, threshold=float(options["threshold"]))
        ap = C.average_precision_score(Y, S)
        ll = C.log_loss(Y, np.clip(S, 0, 1))
        op = None
        if options["target_sensitivity"] is not None:
            op = C.operating_point(Y, S, target_sensitivity=float(options["target_sensitivity"]))
    per_label = {"auc": auc, "sensitivity": sens, "specificity": spec, "average_precision": ap, "log_loss": ll}
    if op is not None:
        per_label.update({"operating_threshold": op[0], "operating_sensitivity": op[1],
                          "operating_specificity": op[2]})
    out = {}
    if len(labels) == 1:
        for k, v in per_label.items():
            out[k] = clean(v[0])
        out["auc_ci"] = [clean(lo[0]), clean(hi[0])]
        return out
    for k, v in per_label.items():
        for j, name in enumerate(labels):
            out[f"{k}/{name}"] = clean(v[j])
        if k == "log_loss":
            out[k] = clean(float(np.dot(weights, v) / weights.sum()))
        elif not k.startswith("operating_threshold"):
            out[k] = clean(float(np.mean(v)))
    for j, name in enumerate(labels):
        out[f"auc_ci/{name}"] = [clean(lo[j]), clean(hi[j])]
    return out
