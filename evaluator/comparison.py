"""Compare stored results of several submissions on one test set: rankings, tests, stability.

:func:`compare` works from what :func:`evaluator.score` returned (JSON round-tripped, as the
site stores it): the per-case rows carry every per-case metric, and classification rows the
label(s) and score(s) the AUC needs, so no file is read again.

References
----------
Wiesenfarth M. et al. (2021). Methods and open-source toolkit for analyzing and visualizing
challenge results (challengeR). Scientific Reports 11.
DeLong E.R. et al. (1988). Biometrics 44.
"""

from __future__ import annotations

import math
import time
from functools import cached_property

import numpy as np
import torch
from scipy import special

from . import statistics as S
from ._device import pick_device

__all__ = ["compare"]

#: The fewest bootstrap samples a significance ranking's stability is drawn from under ``max_seconds``.
MIN_SIGNIFICANCE_RESAMPLES = 20

#: Per-case value of a case missing from a result, where the evaluator's failure value does not
#: depend on the case (otherwise the worst value any compared result has for that case is used).
FAILURE = {"dice": 0.0, "iou": 0.0, "nsd": 0.0, "map": 0.0,
           "log_loss": -math.log(float(np.finfo(np.float64).eps))}
#: What a null per-case value is worth when teams are compared case by case (rank-then-aggregate,
#: the paired tests): detection's mAP is null on an image with neither truth nor predictions,
#: which the team got right. The mean and median leave such cases out, as RSNA's mAP does.
NULL_IN_CASEWISE = {"map": 1.0}


def compare(task, results, *, metric, higher_is_better, method, ties="min", alpha=0.05, n_resamples=1000,
            seed=0, groups=None, max_seconds=None) -> dict:
    """Rank submissions on one metric, test every pair, and measure how stable the ranking is.

    Parameters
    ----------
    task : the task the results were scored for (one of :data:`evaluator.TASKS`)
    results : {name: result} as :func:`evaluator.score` returned them (JSON round-tripped is fine)
    metric : a metric with per-case values (``dice``, ``dice/2``, ``hd95``, ``log_loss``, ``mae``,
        ``map``, ...), or a classification ``auc`` (binary), ``auc/<label>`` or (multi-label,
        not with ``method="significance"``) the macro ``auc``
    higher_is_better : bool
    method : ``"mean"``, ``"median"`` (aggregate, then rank), ``"rank_then_aggregate"`` (rank in
        each case, mean rank) or ``"significance"`` (significant one-sided wins, Holm-adjusted;
        Wilcoxon signed-rank on per-case values, DeLong for the AUC). For the AUC, which is not a
        mean of per-case values, ``"mean"`` ranks by the AUC itself; ``"median"`` and
        ``"rank_then_aggregate"`` do not apply.
    ties : ``"min"``, ``"average"`` or ``"max"`` (R's ``ties.method``)
    alpha : level of the tests (a win or a band break when the adjusted p ≤ alpha)
    n_resamples, seed : the bootstrap of the cases behind ``stability``
    groups : {case_id: patient}, optional: the bootstrap resamples whole patients
    max_seconds : optional, for ``method="significance"``, whose every bootstrap sample tests
        every pair of teams again: only as many samples as take about this long are drawn,
        judged by how long the tests on all cases took, and at least
        :data:`MIN_SIGNIFICANCE_RESAMPLES` (``stability.n_resamples`` says how many)

    A case that a result lacks counts as a failure: its per-case value is the metric's failure
    value (Dice, IoU, NSD, mAP 0; the log loss of a probability of 0 for a positive), else the
    worst value any compared result has for that case; for the AUC the stand-in score of a
    missing case (below every positive, above every negative).

    Returns
    -------
    dict, JSON-safe (NaN is None); every list is in the order of ``names`` (best first)::

        {"metric", "method", "ties", "alpha", "names", "ranks", "values" (the aggregate: mean,
         median, mean rank, share of significant wins, or AUC), "bands" (0 for the first team; a
         team whose difference from the team above is not significant shares its band),
         "pairwise": {"test": "wilcoxon" | "delong" | None (macro AUC: no test), "p_values": [[...]] (row better than
         column, one-sided, Holm over all ordered pairs), "significant": [[bool]]},
         "stability": {"rank_counts": [[...]] (name × rank 1..K), "kendall_tau": {"median",
         "low", "high"} (2.5 and 97.5 percentiles), "n_resamples"},
         "robustness": {method: [rank per name]} for every method that applies}
    """
    from .api import TASKS

    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    if method not in S.RANKING_METHODS:
        raise ValueError(f"method must be one of {', '.join(S.RANKING_METHODS)}, got {method!r}")
    S._check_ties(ties)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    if not isinstance(results, dict) or not results:
        raise ValueError("results must be a non-empty {name: result} dict")
    names = [str(n) for n in results]
    rows = [_rows(name, r) for name, r in results.items()]
    cases = list(dict.fromkeys(c for by_case in rows for c in by_case))
    patient = None
    if groups is not None:
        lacking = sum(c not in groups for c in cases)
        if lacking:
            raise ValueError(f"groups gives no patient for {lacking} of the {len(cases)} cases")
        patient = [str(groups[c]) for c in cases]
    per_case = any(metric in row for by_case in rows for row in by_case.values())
    if per_case:
        x = _matrix(metric, rows, cases, names, higher_is_better)
        null = NULL_IN_CASEWISE.get(metric.split("/")[0])
        casewise = x if null is None else np.where(np.isnan(x), null, x)
        data = _PerCase(x, casewise, higher_is_better, ties, alpha)
    elif task == "classification" and (metric == "auc" or metric.startswith("auc/")):
        data = _Auc(metric, rows, cases, names, higher_is_better, ties, alpha)
    else:
        raise ValueError(f"metric {metric!r} has no per-case values in these results; compare ranks metrics "
                         "with per-case values, and the AUC of classification")
    if method not in data.methods:
        raise ValueError(f"method {method!r} does not apply to {metric!r}: it needs per-case values")
    started = time.perf_counter()
    p = data.pairwise
    if method == "significance" and max_seconds is not None:
        per_sample = max(time.perf_counter() - started, 1e-9)
        n_resamples = min(n_resamples, max(MIN_SIGNIFICANCE_RESAMPLES, int(max_seconds / per_sample)))
    ranks, values = data.rank(method)
    order = sorted(range(len(names)), key=lambda t: (ranks[t], t))
    significant = (p <= alpha) & ~np.eye(len(names), dtype=bool)
    bands, band = [], 0
    for q, t in enumerate(order):
        if q and significant[order[q - 1], t]:
            band += 1
        bands.append(band)
    boot = data.bootstrap_ranks(method, n_resamples, seed, patient)
    counts, taus = S.stability_summary(ranks, boot)
    lo, med, hi = (np.nanquantile(taus, [0.025, 0.5, 0.975]) if np.isfinite(taus).any() else [np.nan] * 3)
    idx = np.asarray(order)
    return {
        "metric": metric, "method": method, "ties": ties, "alpha": alpha,
        "names": [names[t] for t in order],
        "ranks": _json(ranks[idx]),
        "values": _json(np.asarray(values, dtype=np.float64)[idx]),
        "bands": bands,
        "pairwise": {"test": data.test, "p_values": _json(p[np.ix_(idx, idx)]),
                     "significant": significant[np.ix_(idx, idx)].tolist()},
        "stability": {"rank_counts": counts[idx].tolist(),
                      "kendall_tau": {"median": _json(med), "low": _json(lo), "high": _json(hi)},
                      "n_resamples": int(n_resamples)},
        "robustness": {m: _json(data.rank(m)[0][idx]) for m in data.methods},
    }


def _json(x):
    """Nested lists of Python numbers, NaN and infinities as None (a board's matrices are large:
    converted at once, not number by number)."""
    a = np.asarray(x)
    if a.dtype.kind == "f":
        finite = np.isfinite(a)
        if not finite.all():
            a = a.astype(object)
            a[~finite] = None
    return a.tolist()


def _rows(name, result):
    if not isinstance(result, dict) or not isinstance(result.get("per_case"), list):
        raise ValueError(f"result {name!r} is not what evaluator.score returned (no per_case rows)")
    out = {}
    for i, row in enumerate(result["per_case"]):
        if not isinstance(row, dict) or "case_id" not in row:
            raise ValueError(f"result {name!r}, per_case row {i + 1}: no case_id")
        out[str(row["case_id"])] = row
    return out


def _numbers(values, where):
    """float64 array of ``values`` (None is NaN); ValueError at the first value that is not a
    number, naming ``where(k)`` of its index k (called only then: boards have millions of values)."""
    for k, value in enumerate(values):
        if value is not None and type(value) not in (int, float) and not _is_number(value):
            raise ValueError(f"{where(k)}: expected a number or null, found a {type(value).__name__}")
    return np.array(values, dtype=np.float64)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _present(by_case, cases, keys, name):
    """(indices in ``cases``, rows) of the cases a result has; ValueError at the first row that
    lacks one of ``keys``."""
    at = [c for c, case in enumerate(cases) if case in by_case]
    found = [by_case[cases[c]] for c in at]
    for c, row in zip(at, found):
        if not all(key in row for key in keys):
            raise ValueError(f"result {name!r}, case row {c + 1}: no {' or '.join(map(repr, keys))} value"
                             + (" (results scored before issue 13 lack them: score them again)" if len(keys) > 1 else ""))
    return at, found


def _matrix(metric, rows, cases, names, higher_is_better):
    """(teams, cases) per-case values; a case a result lacks takes the failure value."""
    x = np.full((len(rows), len(cases)), np.nan)
    absent = np.ones_like(x, dtype=bool)
    for t, by_case in enumerate(rows):
        at, found = _present(by_case, cases, (metric,), names[t])
        absent[t, at] = False
        x[t, at] = _numbers([row[metric] for row in found],
                            lambda k: f"result {names[t]!r}, case row {at[k] + 1}, {metric!r}")
    if absent.any():
        failure = FAILURE.get(metric.split("/")[0])
        if failure is None:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # a case nobody has a value for stays NaN
                worst = np.nanmin(x, 0) if higher_is_better else np.nanmax(x, 0)
            x = np.where(absent, worst[None, :], x)
        else:
            x[absent] = failure
    return x


class _PerCase:
    methods = S.RANKING_METHODS
    test = "wilcoxon"

    def __init__(self, x, casewise, higher_is_better, ties, alpha):
        self.x, self.casewise, self.hib, self.ties, self.alpha = x, casewise, higher_is_better, ties, alpha

    def _values(self, method):
        return self.x if method in ("mean", "median") else self.casewise

    def rank(self, method):
        if method == "significance":  # from the tests already run, not a second time
            out = S._significance_from_p(self.pairwise, self.alpha, self.ties)
            return out["ranks"], out["scores"]
        return S.rank_by(self._values(method), method, higher_is_better=self.hib, ties=self.ties, alpha=self.alpha)

    @cached_property
    def pairwise(self):
        return S.holm_offdiagonal(S.pairwise_wilcoxon(self.casewise, higher_is_better=self.hib))

    def bootstrap_ranks(self, method, n_resamples, seed, patient):
        return S._bootstrap_ranks(self._values(method), method, self.hib, self.ties, self.alpha, n_resamples, seed,
                                  patient, pick_device())


class _Auc:
    """The AUC from the stored labels and scores, with DeLong's paired test."""

    methods = ("mean", "significance")
    test = "delong"

    def __init__(self, metric, rows, cases, names, higher_is_better, ties, alpha):
        if not higher_is_better:
            raise ValueError("the AUC is higher-is-better")
        suffixes = [metric[len("auc"):]] if metric != "auc" else None
        if suffixes is None:
            first = next(row for by_case in rows for row in by_case.values())
            suffixes = [""] if "label" in first else [k[len("label"):] for k in first if k.startswith("label/")]
            if len(suffixes) > 1:
                self.methods, self.test = ("mean",), None  # no paired test of a macro AUC
        self.y, self.s = [], []
        for suffix in suffixes:
            y = np.full(len(cases), np.nan)
            s = np.full((len(rows), len(cases)), np.nan)
            label, score = "label" + suffix, "score" + suffix
            for t, by_case in enumerate(rows):
                at, found = _present(by_case, cases, (label, score), names[t])
                y[at] = _numbers([row[label] for row in found],
                                 lambda k: f"result {names[t]!r}, case row {at[k] + 1}, {label!r}")
                s[t, at] = _numbers([row[score] for row in found],
                                    lambda k: f"result {names[t]!r}, case row {at[k] + 1}, {score!r}")
            # a case a result lacks: the stand-in score of a missing case (evaluator.tasks.classification)
            s = np.where(np.isnan(s), np.where(y == 1, -1.0, 2.0)[None, :], s)
            self.y.append(y)
            self.s.append(s)
        self.ties, self.alpha = ties, alpha
        self.strata = ["".join(str(int(y[c])) for y in self.y) for c in range(len(cases))]

    def _auc(self, weights):
        """(teams, R) macro AUC for each row of case weights."""
        return (sum(S.weighted_aucs(y, s, weights) for y, s in zip(self.y, self.s)) / len(self.y)).cpu().numpy()

    def _delong_p(self, y, s):
        auc, z, _ = S.pairwise_delong_test(y, s)
        return 0.5 * special.erfc(z / math.sqrt(2))  # one-sided: row better than column

    @cached_property
    def pairwise(self):
        """Holm-adjusted one-sided p-values, row better than column (computed once: the
        comparison and the significance ranking both read them)."""
        p = self._delong_p(self.y[0], self.s[0]) if len(self.y) == 1 else np.full((len(self.s[0]),) * 2, np.nan)
        return S.holm_offdiagonal(p) if len(self.y) == 1 else p

    def rank(self, method):
        auc = self._auc(torch.ones(1, len(self.y[0]), dtype=torch.float64))[:, 0]
        if method == "mean":
            return S.rank(auc, higher_is_better=True, ties=self.ties), auc
        out = S._significance_from_p(self.pairwise, self.alpha, self.ties)
        return out["ranks"], out["scores"]

    def bootstrap_ranks(self, method, n_resamples, seed, patient):
        n = len(self.y[0])
        W = (S.resample_weights(n, n_resamples, seed, groups=patient) if patient is not None
             else S.resample_weights(n, n_resamples, seed, strata=self.strata))
        if method == "mean":
            auc = self._auc(W)
            return S.rank(np.where(np.isnan(auc), -np.inf, auc), higher_is_better=True, ties=self.ties, axis=0)
        out = []
        for w in W:
            i = np.repeat(np.arange(n), w.to(torch.int64).numpy())
            y = self.y[0][i]
            try:
                p = S.holm_offdiagonal(self._delong_p(y, self.s[0][:, i]))
            except ValueError:  # a resample with fewer than 2 cases of a class: no test, no win
                p = np.ones((len(self.s[0]),) * 2)
            out.append(S._significance_from_p(p, self.alpha, self.ties)["ranks"])
        return np.stack(out, axis=1)
