"""Statistics for a fair leaderboard: bootstrap intervals, DeLong tests, rankings, stability.

All bootstrap functions are seeded: the resampling indices are drawn on the CPU with
``torch.Generator().manual_seed(seed)`` (so CPU and GPU give the same numbers) and the
replicates are computed in a vectorized way on :func:`evaluator.pick_device`.

Percentile intervals use the α/2 and 1 − α/2 quantiles with linear interpolation (numpy's
default); note that ``scipy.stats.bootstrap`` defaults to BCa (ask for ``method="percentile"``).

References
----------
Wiesenfarth M. et al. (2021). Methods and open-source toolkit for analyzing and visualizing
challenge results (challengeR). Scientific Reports 11.
Efron B., Tibshirani R. (1993). An Introduction to the Bootstrap.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ._device import as_tensor, pick_device
from .classification import _tie_groups, delong_placements, delong_test

__all__ = [
    "bootstrap_indices",
    "bootstrap_ci",
    "bootstrap_means",
    "bootstrap_metric_ci",
    "bootstrap_auc_ci",
    "delong_test",
    "pairwise_delong_test",
    "holm",
    "rank_aggregate_then_rank",
    "rank_then_aggregate",
    "significance_ranking",
    "rank_stability",
    "resample_weights",
    "weighted_binary_metrics",
    "weighted_aucs",
    "wilcoxon_greater",
    "rank",
    "rank_by",
    "case_ranks",
    "pairwise_wilcoxon",
    "holm_offdiagonal",
    "stability_summary",
    "RANKING_METHODS",
    "TIES",
]


# ----------------------------------------------------------------------------- bootstrap
def bootstrap_indices(n: int, n_resamples: int, seed: int) -> torch.Tensor:
    """The (n_resamples, n) indices every bootstrap in this module uses for a given seed."""
    if n < 1:
        raise ValueError("cannot bootstrap an empty sample")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    g = torch.Generator().manual_seed(int(seed))
    return torch.randint(0, n, (int(n_resamples), n), generator=g)


def _counts(idx: torch.Tensor, n: int, device) -> torch.Tensor:
    w = torch.zeros(idx.shape[0], n, dtype=torch.float64, device=device)
    return _add_counts(w, idx.to(device))


def _add_counts(w: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
    """Add 1 to ``w[r, c]`` for every ``c`` of ``columns[r]`` (a one broadcast, not a tensor of ones)."""
    one = torch.ones(1, 1, dtype=w.dtype, device=w.device)
    return w.scatter_add_(1, columns, one.expand(columns.shape))


def _percentile(reps: torch.Tensor, alpha: float):
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    q = torch.tensor([alpha / 2, 1 - alpha / 2], dtype=reps.dtype, device=reps.device)
    lo, hi = torch.quantile(reps, q, dim=-1)  # linear interpolation, as numpy
    return lo, hi


def _groups_index(groups, n):
    if groups is None:
        return None, n
    g = np.asarray(groups)
    if g.shape != (n,):
        raise ValueError(f"groups must have one entry per case ({n}), got shape {g.shape}")
    _, inv = np.unique(g, return_inverse=True)
    return torch.as_tensor(inv), int(inv.max()) + 1


def bootstrap_means(values, *, n_resamples=1000, seed=0, groups=None, device=None, chunk=None):
    """Bootstrap replicates of the mean of per-case ``values``: shape (n_resamples,) or (T, n_resamples).

    ``values`` is (n_cases,) or (T, n_cases) (e.g. T teams scored on the same cases; every team
    gets the same resamples, which keeps comparisons paired). With ``groups`` (e.g. patient
    ids) whole groups are resampled. Vectorized as a matrix product of the resample counts.
    """
    device = pick_device() if device is None else torch.device(device)
    x = np.asarray(values, dtype=np.float64)
    squeeze = x.ndim == 1
    x2 = x[None, :] if squeeze else x
    if x2.ndim != 2:
        raise ValueError(f"values must be 1-D or 2-D (teams, cases), got shape {x.shape}")
    if not np.isfinite(x2).all():
        raise ValueError("values contain NaN or inf: score missing cases as failures first")
    n = x2.shape[1]
    gidx, ng = _groups_index(groups, n)
    idx = bootstrap_indices(ng, n_resamples, seed)
    X = as_tensor(x2, device)
    chunk = chunk or max(1, int(2e8 // (8 * n)))
    out = []
    for s in range(0, idx.shape[0], chunk):
        w = _counts(idx[s:s + chunk], ng, device)
        if gidx is not None:
            w = w[:, gidx.to(device)]
        out.append((X @ w.T) / w.sum(1))
    reps = torch.cat(out, dim=1)
    return reps[0] if squeeze else reps


def bootstrap_ci(values, *, n_resamples=1000, alpha=0.05, seed=0, groups=None, device=None):
    """Percentile bootstrap interval of the mean of per-case ``values`` (Dice, absolute error, ...).

    Returns ``(low, high)``: floats for 1-D ``values``, arrays of length T for (T, n_cases).
    """
    reps = bootstrap_means(values, n_resamples=n_resamples, seed=seed, groups=groups, device=device)
    lo, hi = _percentile(reps, alpha)
    if reps.ndim == 1:
        return float(lo), float(hi)
    return lo.cpu().numpy(), hi.cpu().numpy()


def bootstrap_metric_ci(metric, *arrays, n_resamples=1000, alpha=0.05, seed=0):
    """Percentile bootstrap interval of any ``metric(*arrays) -> float`` (a loop over replicates).

    Uses the same resamples as :func:`bootstrap_ci` for the same seed. Prefer the vectorized
    functions (:func:`bootstrap_ci`, :func:`bootstrap_auc_ci`) where they apply.
    """
    arrays = [np.asarray(a) for a in arrays]
    n = len(arrays[0])
    if any(len(a) != n for a in arrays):
        raise ValueError(f"arrays have different lengths: {[len(a) for a in arrays]}")
    idx = bootstrap_indices(n, n_resamples, seed).numpy()
    reps = np.array([metric(*(a[i] for a in arrays)) for i in idx], dtype=np.float64)
    lo, hi = np.quantile(reps, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def bootstrap_auc_ci(y_true, y_score, *, n_resamples=1000, alpha=0.05, seed=0, device=None,
                     return_replicates=False):
    """Stratified percentile bootstrap interval of the AUC, for one or many teams.

    Positives and negatives are resampled separately (as pROC's stratified bootstrap), the
    same resamples for every team. Each replicate's AUC is computed from the weighted
    placements on the scores sorted once per team, so the cost is O(T·R·n) after the sorts.

    Parameters
    ----------
    y_true : (n,) 0/1
    y_score : (n,) or (T, n)

    Returns
    -------
    low, high : float or arrays of length T (and the (T, R) replicates when asked)
    """
    device = pick_device() if device is None else torch.device(device)
    y = np.asarray(y_true, dtype=np.float64)
    s = np.asarray(y_score, dtype=np.float64)
    squeeze = s.ndim == 1
    s2 = s[None, :] if squeeze else s
    if s2.ndim != 2 or s2.shape[1] != y.shape[0] or y.ndim != 1:
        raise ValueError(f"y_true must be (n,) and y_score (n,) or (T, n); got {y.shape} and {s.shape}")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("y_true must hold only 0 and 1")
    if not np.isfinite(s2).all():
        raise ValueError("y_score contains NaN or inf")
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    m, n = len(pos), len(neg)
    if m == 0 or n == 0:
        raise ValueError("the AUC bootstrap needs both classes in y_true")
    ip = bootstrap_indices(m, n_resamples, seed)       # positions among the positives
    ineg = bootstrap_indices(n, n_resamples, seed + 1)  # positions among the negatives
    N = len(y)
    S = as_tensor(s2, device)
    pos_t = torch.as_tensor(pos, device=device)
    neg_t = torch.as_tensor(neg, device=device)
    # Per team: sort once; for each positive, the first and last sorted position of its tie group.
    sorted_s, order = torch.sort(S, dim=-1)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(N, device=device).expand_as(order).contiguous())
    starts, ends = [], []
    for t in range(S.shape[0]):
        st, en = _tie_groups(sorted_s[t])
        starts.append(st[rank[t, pos_t]])
        ends.append(en[rank[t, pos_t]])
    # Exact integer arithmetic: AUC_r = Σ_k w⁺_k (below_k + up-to-end_k) / (2 m n), with below and
    # up-to-end the resampled negatives strictly below / at or below the k-th positive's score.
    reps = torch.empty(S.shape[0], ip.shape[0], dtype=torch.float64, device=device)
    chunk = max(1, int(2e8 // (4 * N)))
    # column 0 of wn stays 0, so a cumulative sum read at position start (instead of start - 1)
    # counts the negatives strictly below
    order_pad = torch.cat([torch.zeros(S.shape[0], 1, dtype=order.dtype, device=device), order + 1], dim=1)
    for c in range(0, ip.shape[0], chunk):
        r = min(chunk, ip.shape[0] - c)
        wp = torch.zeros(r, m, dtype=torch.float64, device=device)
        wp.scatter_add_(1, ip[c:c + r].to(device), torch.ones(r, m, dtype=torch.float64, device=device))
        wn = torch.zeros(r, N + 1, dtype=torch.int32, device=device)
        wn.scatter_add_(1, neg_t[ineg[c:c + r].to(device)] + 1, torch.ones(r, n, dtype=torch.int32, device=device))
        for t in range(S.shape[0]):
            cn = torch.cumsum(torch.index_select(wn, 1, order_pad[t]), dim=1, dtype=torch.int32)
            total = (torch.index_select(cn, 1, starts[t]) + torch.index_select(cn, 1, ends[t] + 1)).to(torch.float64)
            # integer-valued terms below 2^53: exact in float64
            reps[t, c:c + r] = (wp * total).sum(1) / (2.0 * m * n)

    lo, hi = _percentile(reps, alpha)
    res = (float(lo[0]), float(hi[0])) if squeeze else (lo.cpu().numpy(), hi.cpu().numpy())
    if return_replicates:
        return (*res, reps.cpu().numpy())
    return res


# ----------------------------------------------------------------------------- DeLong
def pairwise_delong_test(y_true, y_score, *, device=None):
    """Paired DeLong tests between every pair of T teams' AUCs on the same cases.

    Returns ``(auc, z, p)``: AUCs (T,), and (T, T) matrices with z[i, j] the statistic of
    A_i − A_j (see :func:`evaluator.classification.delong_test`; z = 0, p = 1 on the diagonal
    and wherever difference and variance are both 0).
    """
    y = np.asarray(y_true, dtype=np.float64)
    s = np.asarray(y_score, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] != y.shape[0]:
        raise ValueError(f"y_score must be (T, n) with n = len(y_true) = {y.shape[0]}, got {s.shape}")
    yt = as_tensor(y, device)[None, :].expand(s.shape[0], -1).contiguous()
    auc, v10, v01, m, n = delong_placements(yt, as_tensor(s, yt.device))
    m, n = float(m[0]), float(n[0])
    if m < 2 or n < 2:
        raise ValueError(f"the DeLong test needs at least 2 positives and 2 negatives, got {m:g} and {n:g}")
    a10 = (v10 - auc[:, None]) * yt
    a01 = (v01 - auc[:, None]) * (1 - yt)
    cov = a10 @ a10.T / (m - 1) / m + a01 @ a01.T / (n - 1) / n
    var = torch.diag(cov)[:, None] + torch.diag(cov)[None, :] - 2 * cov
    diff = auc[:, None] - auc[None, :]
    zero = (diff == 0) & (var.abs() < 1e-300)
    z = torch.where(zero, torch.zeros_like(diff), diff / torch.sqrt(torch.clamp(var, min=1e-300)))
    p = torch.erfc(z.abs() / math.sqrt(2))
    return auc.cpu().numpy(), z.cpu().numpy(), p.cpu().numpy()


# ----------------------------------------------------------------------------- resampling weights
def resample_weights(n, n_resamples, seed, *, strata=None, groups=None):
    """The bootstrap as (n_resamples, n) case counts (float64, CPU): how often each case is drawn.

    ``groups`` (one label per case, e.g. the patient): whole groups are drawn (a cluster
    bootstrap, the same draws as :func:`bootstrap_means`). ``strata`` (one label per case, e.g.
    the class), without groups: each stratum, in sorted order, is resampled on its own with
    seed + its position, so every replicate keeps the strata's sizes. Otherwise the cases are
    drawn as :func:`bootstrap_indices` (the same draws as :func:`bootstrap_ci`).
    """
    if groups is not None:
        gidx, ng = _groups_index(groups, n)
        return _counts(bootstrap_indices(ng, n_resamples, seed), ng, "cpu")[:, gidx]
    if strata is None:
        return _counts(bootstrap_indices(n, n_resamples, seed), n, "cpu")
    st = np.asarray(strata)
    if st.shape != (n,):
        raise ValueError(f"strata must have one entry per case ({n}), got shape {st.shape}")
    w = torch.zeros(int(n_resamples), n, dtype=torch.float64)
    for k, value in enumerate(np.unique(st)):
        members = torch.as_tensor(np.flatnonzero(st == value))
        _add_counts(w, members[bootstrap_indices(len(members), n_resamples, seed + k)])
    return w


#: Rows of case weights :func:`weighted_binary_metrics` handles at a time, as a count of numbers:
#: on the CPU small enough that a chunk's sorted copies and cumulative sums stay in cache.
_BINARY_CHUNK_NUMBERS = {"cpu": 2 ** 18, "cuda": 2 ** 24}


def weighted_binary_metrics(y_true, y_score, weights, *, threshold=0.5, target_sensitivity=None, device=None):
    """Binary classification metrics of every row of case ``weights`` (R, n) at once.

    With integer weights (bootstrap counts) each row gives exactly the metrics of the cases
    repeated that many times: ``auc`` (Mann-Whitney, ties ½), ``average_precision``
    (step-wise, as scikit-learn), ``sensitivity``/``specificity`` (positive when score ≥
    ``threshold``) and, with ``target_sensitivity``, ``operating_threshold``,
    ``operating_sensitivity``, ``operating_specificity`` (see
    :func:`evaluator.classification.operating_point`). One sort of the scores, then per row
    the cumulative weights of the positives and of the negatives in descending score order,
    read at the tie groups that hold a positive: O(R·n), in chunks of rows. A row without
    positives or negatives gives NaN where the metric is undefined.
    Returns ``{name: (R,) float64 tensor}``.
    """
    device = pick_device() if device is None else torch.device(device)
    y = as_tensor(y_true, device)
    s = as_tensor(y_score, device)
    W = as_tensor(weights, device)
    if W.ndim == 1:
        W = W[None, :]
    order = torch.argsort(-s, stable=True)
    ys, ss = y[order], s[order]
    start, end = _tie_groups(-ss)
    is_pos = ys == 1
    positive_at = torch.nonzero(is_pos)[:, 0]                           # sorted positions of the positives
    pos_cases, neg_cases = order[is_pos], order[~is_pos]
    # Only the tie groups holding a positive add to the AUC and the AP, and the operating point
    # is always at one of them (the sensitivity grows nowhere else), or at the first group when
    # the target is reached at once or never. Of each such group: its last sorted position
    # (g_end), first position (g_start), and its last and first positive (g_last, g_first:
    # indices among the positives; a first group without positives has g_last -1).
    k = torch.arange(len(positive_at), device=device)
    last_of_group = torch.ones_like(k, dtype=torch.bool)
    last_of_group[:-1] = end[positive_at[:-1]] != end[positive_at[1:]]
    g_end = end[positive_at][last_of_group]
    g_last = k[last_of_group]
    g_start = start[g_end]
    g_first = torch.cat([g_last.new_zeros(1), g_last[:-1] + 1])[: len(g_last)]
    if len(g_end) == 0 or int(g_start[0]) != 0:                           # the first group, without positives
        g_end = torch.cat([end[:1], g_end])
        g_start = torch.cat([start.new_zeros(1), g_start])
        g_last = torch.cat([g_last.new_full((1,), -1), g_last])
        g_first = torch.cat([g_first.new_zeros(1), g_first])
    neg_through = g_end - g_last                    # negatives at positions ≤ the group's end (g_end + 1 positions)
    neg_before = g_start - g_first                                        # negatives at positions < its start
    n_pos_above = int((s[pos_cases] >= threshold).sum())                  # the positives called positive: a prefix
    n_neg_above = int((s[neg_cases] >= threshold).sum())
    chunk = max(1, min(W.shape[0], _BINARY_CHUNK_NUMBERS.get(device.type, 2 ** 24) // max(W.shape[1], 1)))
    # Reused buffers for the cumulative weights: fresh large tensors per chunk cost more in page
    # faults than the sums themselves. Column j holds the weight of the first j positives
    # (negatives): column 0 is gathered from any case, then set to 0 before the sum. ``gather``
    # is twice as fast as ``index_select`` on columns.
    first_case = order[:1]
    pos_index = torch.cat([first_case, pos_cases]).expand(chunk, -1)
    neg_index = torch.cat([first_case, neg_cases]).expand(chunk, -1)
    cum_pos = torch.empty(pos_index.shape, dtype=W.dtype, device=device)
    cum_neg = torch.empty(neg_index.shape, dtype=W.dtype, device=device)
    # read: the total, the weight called positive (score ≥ threshold: a prefix), and at the groups
    read_pos = torch.cat([torch.tensor([len(pos_cases), n_pos_above], device=device), g_last + 1])
    read_neg = torch.cat([torch.tensor([len(neg_cases), n_neg_above], device=device), neg_through, neg_before])
    g_score, parts = ss[g_end], []
    for i in range(0, max(W.shape[0], 1), chunk):                        # once for no rows
        w = W[i:i + chunk]
        r = w.shape[0]
        at_pos = _cumulative_at(w, pos_index[:r], cum_pos[:r], read_pos)
        at_neg = _cumulative_at(w, neg_index[:r], cum_neg[:r], read_neg)
        parts.append(_binary_chunk(at_pos, at_neg, g_score, target_sensitivity))
    return {name: torch.cat([p[name] for p in parts]) for name in parts[0]}


#: Resamples :func:`weighted_aucs` takes at a time, as a count of numbers (cases × resamples): on
#: the CPU a chunk's sorted weights and their cumulative sums stay in cache while they are read.
_AUC_CHUNK_NUMBERS = {"cpu": 2 ** 19, "cuda": 2 ** 26}
#: The AUC's sums of integer weights are computed in int32 while they stay below this.
_INT32_LIMIT = 2 ** 31


def weighted_aucs(y_true, scores, weights, *, device=None):
    """The AUC (Mann-Whitney, ties ½) of each row of ``scores`` (T, n) under each row of case
    ``weights`` (R, n): a (T, R) float64 tensor, equal to :func:`weighted_binary_metrics`'s
    ``auc`` row by row. A case is a positive where ``y_true`` is 1, a negative elsewhere.

    Made for ranking many teams on the same resamples (:func:`evaluator.compare`'s stability of an
    AUC board): the positives' and negatives' weights are gathered once for all teams, and each
    team costs one sort of its negatives' scores, a cumulative sum of their weights in that order
    and a read of it at each positive: 2·AUC·P·N = Σ over positives of its weight times (weight of
    the negatives below + weight of those at or below). Integer weights (bootstrap counts) are
    summed in int32 while the sums fit, at half float64's memory traffic; others in float64.
    Either way the sums are exact for integer weights, so teams with the same AUC tie exactly.
    A row without positives or negatives gives NaN.
    """
    device = pick_device() if device is None else torch.device(device)
    positive = as_tensor(y_true, device) == 1
    S = as_tensor(scores, device)
    W = as_tensor(weights, device)
    S, W = (S[None, :] if S.ndim == 1 else S), (W[None, :] if W.ndim == 1 else W)
    if torch.isnan(S).any():
        raise ValueError("scores must not be NaN")
    P, N = W[:, positive].sum(1), W[:, ~positive].sum(1)
    # 2·P·N ≤ (P + N)² / 2 bounds every partial sum below
    integers = bool((W == W.round()).all()) and float((P + N).max()) ** 2 / 2 < _INT32_LIMIT
    dtype = torch.int32 if integers else torch.float64
    pos_scores, neg_scores = S[:, positive], S[:, ~positive]
    neg_order = torch.argsort(neg_scores, dim=1)
    neg_sorted = torch.gather(neg_scores, 1, neg_order)
    chunk = max(1, _AUC_CHUNK_NUMBERS.get(device.type, 2 ** 26) // max(W.shape[1], 1))
    out = torch.empty(S.shape[0], W.shape[0], dtype=torch.float64, device=device)
    for i in range(0, W.shape[0], chunk):
        # A case's weights in all the chunk's resamples are one row: gathering cases copies rows.
        w = W[i:i + chunk].T.to(dtype)
        w_pos, w_neg = w[positive].contiguous(), w[~positive].contiguous()
        cumulative = torch.zeros(w_neg.shape[0] + 1, w.shape[1], dtype=dtype, device=device)
        for t in range(S.shape[0]):
            torch.cumsum(w_neg.index_select(0, neg_order[t]), 0, out=cumulative[1:])
            below = torch.searchsorted(neg_sorted[t], pos_scores[t], side="left")
            through = torch.searchsorted(neg_sorted[t], pos_scores[t], side="right")
            read = cumulative.index_select(0, below)
            twice = read * 2 if torch.equal(below, through) else read + cumulative.index_select(0, through)
            out[t, i:i + chunk] = (w_pos * twice).sum(0).to(torch.float64)
    undefined = (P == 0) | (N == 0)
    return torch.where(undefined, torch.nan, out / (2 * P * N).masked_fill(undefined, 1))


def _cumulative_at(w, index, buffer, at):
    """Each row's cumulative weight of the cases ``index[:, 1:]`` (in that order), read at
    ``at`` (0: none of them)."""
    torch.gather(w, 1, index, out=buffer)
    buffer[:, 0] = 0
    buffer.cumsum_(1)
    return torch.gather(buffer, 1, at.expand(buffer.shape[0], -1))


def _binary_chunk(at_pos, at_neg, g_score, target_sensitivity):
    """The metrics of :func:`weighted_binary_metrics` from the cumulative weights it reads."""
    G = at_pos.shape[1] - 2
    P, tp_above, tp_g = at_pos[:, 0], at_pos[:, 1], at_pos[:, 2:]         # tp_g: through each group's end
    N, fp_above_threshold = at_neg[:, 0], at_neg[:, 1]
    fp_g, fp_above = at_neg[:, 2:2 + G], at_neg[:, 2 + G:]               # through its end, above its start
    in_group = torch.diff(tp_g, dim=1, prepend=torch.zeros_like(tp_g[:, :1]))  # each group's positive weight
    nan = torch.full_like(P, float("nan"))
    auc = (in_group * ((N[:, None] - fp_g) + 0.5 * (fp_g - fp_above))).sum(1) / (P * N)
    called = tp_g + fp_g                                                  # > 0 wherever in_group > 0
    ap = (in_group * tp_g / called.masked_fill_(called == 0, 1)).sum(1) / P
    out = {"auc": torch.where((P > 0) & (N > 0), auc, nan),
           "average_precision": torch.where(P > 0, ap, nan),
           "sensitivity": torch.where(P > 0, tp_above / P, nan),
           "specificity": torch.where(N > 0, (N - fp_above_threshold) / N, nan)}
    if target_sensitivity is not None:
        tpr = tp_g / torch.where(P > 0, P, torch.ones_like(P))[:, None]
        reach = tpr >= float(target_sensitivity) - 1e-12
        first = torch.argmax(reach.to(torch.int8), dim=1)
        defined = (P > 0) & (N > 0)
        out["operating_threshold"] = torch.where(defined, g_score[first], nan)
        out["operating_sensitivity"] = torch.where(defined, tpr.gather(1, first[:, None])[:, 0], nan)
        out["operating_specificity"] = torch.where(defined, 1 - fp_g.gather(1, first[:, None])[:, 0] / N, nan)
    return out


# ----------------------------------------------------------------------------- Wilcoxon
def wilcoxon_greater(d, *, device=None):
    """One-sided paired Wilcoxon signed-rank p-values that each row of ``d`` is above 0.

    ``d`` is (..., n): differences (better minus worse); zeros and NaN are left out (R's
    ``wilcox.test(x, y, paired=TRUE, alternative="greater", exact=FALSE, correct=TRUE)``,
    scipy's ``wilcoxon(zero_method="wilcox", correction=True, method="asymptotic")``): the
    normal approximation with the tie correction of the variance and a continuity correction
    of ½. A row with no non-zero difference has p = 1. Batched over all leading dimensions.
    """
    device = pick_device() if device is None else torch.device(device)
    D = as_tensor(d, device)
    shape = D.shape[:-1]
    D = D.reshape(-1, D.shape[-1])
    used = ~torch.isnan(D) & (D != 0)
    a = torch.where(used, D.abs(), torch.full_like(D, float("inf")))
    sa, order = torch.sort(a, dim=1)
    start, end = _tie_groups(sa)
    ranks = (start + end).to(D.dtype) / 2 + 1                    # average ranks, 1-based
    positive = torch.gather((D > 0) & used, 1, order).to(D.dtype)
    used_sorted = torch.gather(used, 1, order)
    r_plus = (ranks * positive).sum(1)
    count = used.sum(1).to(D.dtype)
    is_end = (end == torch.arange(D.shape[1], device=device)) & used_sorted
    t = (end - start + 1).to(D.dtype)
    ties = torch.where(is_end, t ** 3 - t, torch.zeros_like(t)).sum(1)
    var = (count * (count + 1) * (2 * count + 1) - ties / 2) / 24
    z = (r_plus - count * (count + 1) / 4 - 0.5) / torch.sqrt(torch.clamp(var, min=1e-300))
    p = 0.5 * torch.erfc(z / math.sqrt(2))
    p = torch.where(count > 0, p, torch.ones_like(p))
    return p.reshape(shape).cpu().numpy()


# ----------------------------------------------------------------------------- ranking
#: The ranking methods of :func:`rank_by` (challengeR's: aggregate-then-rank with the mean or
#: the median, rank-then-aggregate with the mean, test-based significance ranking).
RANKING_METHODS = ("mean", "median", "rank_then_aggregate", "significance")
#: How tied teams are ranked (R's ``rank(ties.method=...)``, challengeR's ``ties.method``).
TIES = ("min", "average", "max")


def holm(p_values):
    """Holm's step-down adjustment of a 1-D array of p-values (as R's ``p.adjust(method="holm")``)."""
    p = np.asarray(p_values, dtype=np.float64).ravel()
    k = p.size
    order = np.argsort(p, kind="stable")
    adj = np.minimum(1.0, np.maximum.accumulate((k - np.arange(k)) * p[order]))
    out = np.empty_like(adj)
    out[order] = adj
    return out


def _check_values(values, allow_nan):
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"values must be a (teams, cases) array, got shape {x.shape}")
    if np.isinf(x).any() or (not allow_nan and np.isnan(x).any()):
        raise ValueError("values contain " + ("inf" if allow_nan else "NaN or inf")
                         + ("" if allow_nan else ": score missing cases as failures first"))
    return x


def _check_ties(ties):
    if ties not in TIES:
        raise ValueError(f"ties must be one of {', '.join(TIES)}, got {ties!r}")


def rank(x, *, higher_is_better: bool, ties="min", axis=0):
    """Ranks along ``axis`` (1 best), ties as R's ``rank(ties.method=ties)``: int, float for "average"."""
    from scipy.stats import rankdata

    _check_ties(ties)
    r = rankdata(-np.asarray(x) if higher_is_better else np.asarray(x), method=ties, axis=axis)
    return r if ties == "average" else r.astype(np.int64)


def rank_aggregate_then_rank(values, *, higher_is_better: bool, aggregate="mean", ties="min"):
    """Aggregate each team over cases (``"mean"`` or ``"median"``), then rank (``ties`` as R).

    ``values`` is (teams, cases); NaN (a case with no value, e.g. a detection image with neither
    truth nor predictions) is left out of the team's aggregate. Returns ``(ranks, aggregates)``;
    rank 1 is best.
    """
    x = _check_values(values, allow_nan=True)
    if aggregate not in ("mean", "median"):
        raise ValueError(f"aggregate must be 'mean' or 'median', got {aggregate!r}")
    agg = _aggregate(x, aggregate)
    return rank(agg, higher_is_better=higher_is_better, ties=ties), agg


def _aggregate(x, aggregate, axis=-1):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN team aggregates to NaN
        return np.nanmean(x, axis=axis) if aggregate == "mean" else np.nanmedian(x, axis=axis)


def case_ranks(values, *, higher_is_better: bool, ties="min"):
    """Each team's rank within each case, challengeR's way: a missing value (NaN) ranks one
    below the worst observed rank of that case (all missing: rank 1)."""
    x = _check_values(values, allow_nan=True)
    missing = np.isnan(x)
    filled = np.where(missing, -np.inf if higher_is_better else np.inf, x)
    r = rank(filled, higher_is_better=higher_is_better, ties=ties, axis=0).astype(np.float64)
    observed = np.where(missing, -np.inf, r).max(0)
    worst = np.where(np.isfinite(observed), observed, 0) + 1
    return np.where(missing, worst[None, :], r)


def rank_then_aggregate(values, *, higher_is_better: bool, ties="min"):
    """Rank teams within each case (``ties`` as R), average each team's ranks, rank again.

    A missing value (NaN) takes the worst observed rank of its case + 1, as challengeR
    (``rankNA2``). Returns ``(ranks, mean_ranks)``.
    """
    mean_rank = case_ranks(values, higher_is_better=higher_is_better, ties=ties).mean(1)
    return rank(mean_rank, higher_is_better=False, ties=ties), mean_rank


def pairwise_wilcoxon(values, *, higher_is_better: bool, device=None):
    """(K, K) raw one-sided p-values: p[i, j] tests that team i is better than team j on the
    cases both have (:func:`wilcoxon_greater`); 1 on the diagonal."""
    x = _check_values(values, allow_nan=True)
    k, n = x.shape
    sign = 1.0 if higher_is_better else -1.0
    rows = max(1, int(2e7 // (k * n)))  # bounded memory: a few rows of pairs at a time
    p = np.concatenate([wilcoxon_greater(sign * (x[i:i + rows, None, :] - x[None, :, :]), device=device)
                        for i in range(0, k, rows)])
    p[np.arange(k), np.arange(k)] = 1.0
    return p


def holm_offdiagonal(p):
    """Holm over the K(K − 1) off-diagonal entries of a (K, K) matrix; the diagonal stays 1."""
    p = np.asarray(p, dtype=np.float64)
    k = p.shape[0]
    off = ~np.eye(k, dtype=bool)
    out = np.ones_like(p)
    if k > 1:
        out[off] = holm(p[off])
    return out


def significance_ranking(values, *, higher_is_better: bool, alpha=0.05, adjust="holm", ties="min"):
    """Significance ranking as challengeR: a team's score is its significant wins / (K − 1).

    For each ordered pair (i, j), a one-sided paired Wilcoxon signed-rank test that i is better
    than j on the cases both have (:func:`wilcoxon_greater`); p-values adjusted over all
    K(K − 1) pairs (``"holm"``, Mica's choice, or ``"none"``, challengeR's default). A win
    counts when p ≤ ``alpha`` (challengeR). A pair with no non-zero difference has p = 1.

    Returns a dict: ``ranks`` (1 best, ``ties`` as R), ``scores``, ``p_values`` (K, K) adjusted.
    """
    if adjust not in ("holm", "none"):
        raise ValueError(f"adjust must be 'holm' or 'none', got {adjust!r}")
    raw = pairwise_wilcoxon(values, higher_is_better=higher_is_better)
    p = holm_offdiagonal(raw) if adjust == "holm" else raw
    return _significance_from_p(p, alpha, ties)


def _significance_from_p(p, alpha, ties):
    k = p.shape[0]
    wins = ((p <= alpha) & ~np.eye(k, dtype=bool)).sum(1)
    scores = wins / max(k - 1, 1)
    return {"ranks": rank(scores, higher_is_better=True, ties=ties), "scores": scores, "p_values": p}


def rank_by(values, method, *, higher_is_better: bool, ties="min", alpha=0.05):
    """Rank teams' (teams, cases) ``values`` with one of :data:`RANKING_METHODS`.

    Returns ``(ranks, aggregates)``: the mean or median, the mean rank, or the share of
    significant wins.
    """
    if method in ("mean", "median"):
        return rank_aggregate_then_rank(values, higher_is_better=higher_is_better, aggregate=method, ties=ties)
    if method == "rank_then_aggregate":
        return rank_then_aggregate(values, higher_is_better=higher_is_better, ties=ties)
    if method == "significance":
        out = significance_ranking(values, higher_is_better=higher_is_better, alpha=alpha, ties=ties)
        return out["ranks"], out["scores"]
    raise ValueError(f"method must be one of {', '.join(RANKING_METHODS)}, got {method!r}")


def _bootstrap_ranks(x, method, higher_is_better, ties, alpha, n_resamples, seed, groups, device):
    """(T, R) ranks of every bootstrap sample of the cases, re-applying ``method``."""
    k, n = x.shape
    W = resample_weights(n, n_resamples, seed, groups=groups)
    if method == "mean" or method == "rank_then_aggregate":
        # both are weighted means of per-case numbers (values, or ranks, which resampling
        # whole cases does not change): one matrix product per chunk
        v = case_ranks(x, higher_is_better=higher_is_better, ties=ties) if method == "rank_then_aggregate" else x
        present = ~np.isnan(v)
        X = as_tensor(np.where(present, v, 0.0), device)
        M = as_tensor(present, device)
        chunk = max(1, int(2e8 // (8 * n)))
        aggs = []
        for s in range(0, W.shape[0], chunk):
            w = W[s:s + chunk].to(X.device)
            with np.errstate(invalid="ignore"):
                aggs.append(((X @ w.T) / (M @ w.T)).cpu().numpy())
        agg = np.concatenate(aggs, axis=1)
        better = higher_is_better and method == "mean"
        return rank(np.where(np.isnan(agg), -np.inf if better else np.inf, agg), higher_is_better=better,
                    ties=ties, axis=0)
    idx = [np.repeat(np.arange(n), W[r].to(torch.int64).numpy()) for r in range(W.shape[0])]
    out = np.empty((k, len(idx)), dtype=np.float64 if ties == "average" else np.int64)
    for r, i in enumerate(idx):
        if method == "median":
            agg = _aggregate(x[:, i], "median")
            out[:, r] = rank(np.where(np.isnan(agg), -np.inf if higher_is_better else np.inf, agg),
                             higher_is_better=higher_is_better, ties=ties)
        else:
            out[:, r] = rank_by(x[:, i], method, higher_is_better=higher_is_better, ties=ties, alpha=alpha)[0]
    return out


def stability_summary(full, boot):
    """``rank_counts`` (T, T): replicates in which team t had rank r + 1 (a fractional rank,
    from ties="average", counts at its integer part); Kendall's τ-b of each replicate's ranking
    with ``full`` (R,) (NaN when either ranking is all ties)."""
    from scipy.stats import kendalltau

    k = boot.shape[0]
    counts = np.zeros((k, k), dtype=np.int64)
    whole = np.clip(np.floor(boot).astype(np.int64), 1, k) - 1
    for t in range(k):
        counts[t] = np.bincount(whole[t], minlength=k)
    taus = np.array([kendalltau(full, boot[:, r]).statistic if k > 1 else np.nan for r in range(boot.shape[1])])
    return counts, taus


def rank_stability(values, *, higher_is_better: bool, method="mean", ties="min", alpha=0.05, n_resamples=1000,
                   seed=0, groups=None, device=None):
    """Rank stability under bootstrap resampling of cases, re-applying ranking ``method``.

    Each bootstrap sample of the cases (whole ``groups`` when given) is ranked again with the
    same method and ties rule; Kendall's τ-b (``scipy.stats.kendalltau``) compares it with the
    ranking on all cases. ``mean`` and ``rank_then_aggregate`` are vectorized (a matrix
    product of resample counts); ``median`` and ``significance`` rank each resample in turn.

    Returns a dict: ``ranks`` (the full ranking, (T,)), ``bootstrap_ranks`` (T, R),
    ``kendall_tau`` (R,), ``rank_counts`` (T, T): how often team t got rank r + 1.
    """
    x = _check_values(values, allow_nan=True)
    full, _ = rank_by(x, method, higher_is_better=higher_is_better, ties=ties, alpha=alpha)
    boot = _bootstrap_ranks(x, method, higher_is_better, ties, alpha, n_resamples, seed, groups,
                            pick_device() if device is None else torch.device(device))
    counts, taus = stability_summary(full, boot)
    return {"ranks": full, "bootstrap_ranks": boot, "kendall_tau": taus, "rank_counts": counts}
