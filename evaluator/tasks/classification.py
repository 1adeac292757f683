"""Classification: binary and multi-label (e.g. RSNA intracranial hemorrhage).

Formats
-------
Truth: CSV ``case_id,<label 1>,...,<label k>`` with 0/1 values. One label column is a binary
task; several are a multi-label task.

Predictions: one probability in [0, 1] per truth label, with the **same header as the truth**;
when the truth has a single label column, ``case_id,score`` is accepted too (and is the
header :func:`evaluator.predictions_header` gives). One row per case; a case may be missing
(it is then scored as the worst possible prediction: a positive below every other score, a
negative above every other, and counted in ``missing_cases``).

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
max_bytes (200 MB), max_line_bytes (1 MiB): size limits of the predictions file and of a line.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from .. import classification as C
from ..problems import ProblemLog
from ..readers import read_numeric_table
from ._common import (CSV_HELP, CSV_OPTIONS, case_facts, clean, label_of, resolve_options, subset_rows,
                      truth_log)

DEFAULTS = {**CSV_OPTIONS, "threshold": 0.5, "target_sensitivity": None, "log_loss_weights": None,
            "labels": None, "alpha": 0.05}
HELP = {**CSV_HELP,
        "threshold": ("float", "A case is positive when its score is at least this (sensitivity, specificity)."),
        "target_sensitivity": ("float", "Also report the operating point: the highest threshold reaching "
                               "this sensitivity, and the specificity there."),
        "log_loss_weights": ("dict", "{label: weight} for the weighted multi-label log loss (RSNA: {\"any\": 2})."),
        "labels": ("list", "Label names, for validating with case ids instead of the truth."),
        "alpha": ("float", "1 − confidence level of auc_ci (DeLong).")}
MISSING_POSITIVE, MISSING_NEGATIVE = -1.0, 2.0


def read_truth(path, name=None):
    """Return ``(labels, ids, Y)``; a bad truth file raises ValueError."""
    log = truth_log(path, name)
    from ..readers import iter_csv

    got = iter_csv(path, log, max_bytes=None)
    if got is None:
        log.raise_if_any(ValueError)
    header, rows = got
    rows.close()
    if len(header) < 2 or header[0] != "case_id":
        raise ValueError(f"{log.file}: header must be 'case_id,<label>...', found {','.join(header)!r}")
    if len(set(header)) != len(header):
        raise ValueError(f"{log.file}: header has duplicate column names")
    got = read_numeric_table(path, log, expected_header=header, max_bytes=None)
    log.raise_if_any(ValueError)
    ids, Y, lines = got
    bad = ~np.isin(Y, (0.0, 1.0))
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(f"{log.file}, row {lines[i]}, column {header[1 + j]!r}: "
                         f"labels must be 0 or 1, found {Y[i, j]:g}")
    return header[1:], ids, Y


def expected_header(labels):
    return ["case_id", "score"] if len(labels) == 1 else ["case_id", *labels]


def accepted_headers(labels):
    """The predictions headers accepted: the truth's own, and ``case_id,score`` for one label."""
    own = ["case_id", *labels]
    return [["case_id", "score"], own] if len(labels) == 1 and labels[0] != "score" else [own]


def describe(truth, options, *, strict=True, name=None):
    """The facts of a truth; with ``strict``, a label with one class is a ValueError."""
    labels, ids, Y = read_truth(truth, name)
    if strict:
        for j, label in enumerate(labels):
            classes = set(Y[:, j].tolist())
            if len(classes) < 2:
                raise ValueError(
                    f"truth {label_of(truth, name)}: label {label!r} has only one class (all {int(classes.pop())}); "
                    "a test set needs positive and negative cases, or its AUC is undefined"
                )
    if len(labels) == 1:
        strata = [str(int(y)) for y in Y[:, 0]]
    else:
        strata = ["+".join(lab for lab, y in zip(labels, row) if y) or "none" for row in Y]
    return case_facts("classification", ids, header=expected_header(labels), labels=list(labels),
                      strata=dict(zip(ids, strata)))


def read_predictions(path, labels, ids, options, name=None):
    """Validate and read the predictions; raise SubmissionInvalid listing every problem.

    Returns ``(ids, P)`` with the columns of ``P`` in the order of ``labels``.
    """
    log = ProblemLog(label_of(path, name))
    got = read_numeric_table(path, log, expected_header=accepted_headers(labels), allowed_ids=set(ids),
                             lo=0.0, hi=1.0, max_bytes=options["max_bytes"], max_rows=len(ids),
                             max_line_bytes=options["max_line_bytes"])
    log.raise_if_any()
    return got[0], got[1]


def validate(predictions, facts, options=None, name=None):
    options = resolve_options(options, DEFAULTS, "classification")
    labels = facts["labels"] or options["labels"] or _labels_from_header(predictions, name)
    read_predictions(predictions, list(labels), facts["case_ids"], options, name)


def _labels_from_header(path, name):
    """Without truth or ``labels``: take the labels from the predictions header."""
    from ..readers import iter_csv

    log = ProblemLog(label_of(path, name))
    got = iter_csv(path, log, max_bytes=None)
    if got is None:
        log.raise_if_any()
    header, rows = got
    rows.close()
    if len(header) < 2 or header[0] != "case_id":
        log.add(f"wrong header: expected 'case_id,score' or 'case_id,<label>,...', found {','.join(header)!r}", row=1)
        log.raise_if_any()
    return header[1:]


def score(truth, predictions, options=None, case_ids=None, name=None):
    options = resolve_options(options, DEFAULTS, "classification")
    labels, ids, Y = read_truth(truth)
    pred_ids, P = read_predictions(predictions, labels, ids, options, name)
    index = {c: i for i, c in enumerate(ids)}
    S = np.where(Y == 1, MISSING_POSITIVE, MISSING_NEGATIVE)
    present = np.zeros(len(ids), dtype=bool)
    rows = np.fromiter((index[c] for c in pred_ids), dtype=np.int64, count=len(pred_ids))
    S[rows] = P
    present[rows] = True
    keep = subset_rows(ids, case_ids)
    ids, Y, S, present = [ids[i] for i in keep], Y[keep], S[keep], present[keep]
    weights = np.ones(len(labels))
    for label, w in (options["log_loss_weights"] or {}).items():
        if label not in labels:
            raise ValueError(f"log_loss_weights names {label!r}, which is not a truth label ({', '.join(labels)})")
        weights[labels.index(label)] = float(w)
    metrics = compute_metrics(Y, S, labels, options, weights)
    Sc = np.clip(S, np.finfo(np.float64).eps, 1 - np.finfo(np.float64).eps)
    loss = -(Y * np.log(Sc) + (1 - Y) * np.log1p(-Sc))
    per_case_loss = loss @ weights / weights.sum()
    per_case = [{"case_id": c, "missing": bool(not present[i]), "log_loss": clean(per_case_loss[i]),
                 **_label_and_score(labels, Y[i], S[i])} for i, c in enumerate(ids)]
    return {"task": "classification", "n_cases": len(ids), "missing_cases": int((~present).sum()),
            "metrics": metrics, "per_case": per_case, "predictions": describe_scores(P),
            "_intervals": _interval_plan(Y, S, loss, labels, options, metrics)}


def _label_and_score(labels, y, s):
    """What a paired test needs of a case: its label(s) and the score(s) it was scored with (a
    missing case's stand-in scores, -1 for a positive and 2 for a negative, included)."""
    if len(labels) == 1:
        return {"label": int(y[0]), "score": float(s[0])}
    return {**{f"label/{name}": int(v) for name, v in zip(labels, y)},
            **{f"score/{name}": float(v) for name, v in zip(labels, s)}}


def _interval_plan(Y, S, loss, labels, options, metrics):
    """How :mod:`evaluator.intervals` bootstraps this task: every metric but the log loss (a
    per-case mean) from the labels and scores, resampled within each class (label pattern)."""
    from ..statistics import weighted_binary_metrics

    target = options["target_sensitivity"]
    threshold = float(options["threshold"])

    def replicate(W):
        per = [weighted_binary_metrics(Y[:, j], S[:, j], W, threshold=threshold, target_sensitivity=target,
                                       device=W.device) for j in range(len(labels))]
        if len(labels) == 1:
            return per[0]
        L = torch.as_tensor(loss, device=W.device)
        per_label_loss = (W @ L) / W.sum(1, keepdim=True)
        out = {}
        for k in per[0]:
            for j, name in enumerate(labels):
                out[f"{k}/{name}"] = per[j][k]
            if k != "operating_threshold":
                out[k] = torch.stack([per[j][k] for j in range(len(labels))]).mean(0)
        for j, name in enumerate(labels):
            out[f"log_loss/{name}"] = per_label_loss[:, j]
        return out

    if len(labels) == 1:
        delong = {"auc": tuple(metrics["auc_ci"])}
        strata = [str(int(y)) for y in Y[:, 0]]
    else:
        delong = {f"auc/{name}": tuple(metrics[f"auc_ci/{name}"]) for name in labels}
        strata = ["".join(str(int(v)) for v in row) for row in Y]
    delong = {k: tuple(float("nan") if v is None else v for v in lh) for k, lh in delong.items()}
    return {"alpha": float(options["alpha"]), "delong": delong, "strata": strata, "replicate": replicate}


def describe_scores(P):
    """How varied the file's probabilities are (over every row it gives): a near-constant file
    with tiny differences between cases is how a probe decodes labels from one score."""
    if P.size == 0:
        return {"spread": None, "distinct": 0}
    return {"spread": float(P.max() - P.min()), "distinct": int(np.unique(P).size)}


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
