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
    w.scatter_add_(1, idx.to(device), torch.ones(idx.shape, dtype=torch.float64, device=device))
    return w


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


# ----------------------------------------------------------------------------- ranking
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


def _rank_min(x, higher_is_better, axis=0):
    from scipy.stats import rankdata

    return rankdata(-x if higher_is_better else x, method="min", axis=axis).astype(np.int64)


def rank_aggregate_then_rank(values, *, higher_is_better: bool, aggregate="mean"):
    """Aggregate each team over cases (``"mean"`` or ``"median"``), then rank; ties share the best rank.

    ``values`` is (teams, cases) without NaN (score missing cases as failures first).
    Returns ``(ranks, aggregates)``; rank 1 is best.
    """
    x = _check_values(values, allow_nan=False)
    if aggregate not in ("mean", "median"):
        raise ValueError(f"aggregate must be 'mean' or 'median', got {aggregate!r}")
    agg = x.mean(1) if aggregate == "mean" else np.median(x, axis=1)
    return _rank_min(agg, higher_is_better), agg


def rank_then_aggregate(values, *, higher_is_better: bool):
    """Rank teams within each case ("min" ties), average the ranks, rank again.

    A missing value (NaN) takes the worst rank, the number of teams. Returns
    ``(ranks, mean_ranks)``.
    """
    x = _check_values(values, allow_nan=True)
    k = x.shape[0]
    filled = np.where(np.isnan(x), -np.inf if higher_is_better else np.inf, x)
    per_case = _rank_min(filled, higher_is_better, axis=0).astype(np.float64)
    per_case[np.isnan(x)] = k
    mean_rank = per_case.mean(1)
    return _rank_min(mean_rank, False), mean_rank


def significance_ranking(values, *, higher_is_better: bool, alpha=0.05, adjust="holm"):
    """Significance ranking as challengeR: a team's score is its significant wins / (K − 1).

    For each ordered pair (i, j), a one-sided paired Wilcoxon signed-rank test that i is better
    than j on the cases both have (``scipy.stats.wilcoxon(zero_method="wilcox", correction=True,
    method="asymptotic")``); p-values adjusted over all K(K − 1) pairs (``"holm"``, Mica's
    choice, or ``"none"``, challengeR's default). A pair with no non-zero difference has p = 1.

    Returns a dict: ``ranks`` (1 best, "min" ties), ``scores``, ``p_values`` (K, K) adjusted.
    """
    from scipy.stats import wilcoxon

    x = _check_values(values, allow_nan=True)
    k = x.shape[0]
    if adjust not in ("holm", "none"):
        raise ValueError(f"adjust must be 'holm' or 'none', got {adjust!r}")
    p = np.ones((k, k))
    pairs = [(i, j) for i in range(k) for j in range(k) if i != j]
    raw = []
    for i, j in pairs:
        both = ~np.isnan(x[i]) & ~np.isnan(x[j])
        d = (x[i] - x[j])[both]
        if not higher_is_better:
            d = -d
        if not np.any(d != 0):
            raw.append(1.0)
            continue
        raw.append(float(wilcoxon(d, zero_method="wilcox", correction=True, method="asymptotic",
                                  alternative="greater").pvalue))
    if pairs:
        adj = holm(raw) if adjust == "holm" else np.asarray(raw)
        for (i, j), q in zip(pairs, adj):
            p[i, j] = q
    wins = ((p < alpha) & ~np.eye(k, dtype=bool)).sum(1)
    scores = wins / max(k - 1, 1)
    return {"ranks": _rank_min(scores, True), "scores": scores, "p_values": p}


def rank_stability(values, *, higher_is_better: bool, n_resamples=1000, seed=0, groups=None, device=None):
    """Rank stability under bootstrap resampling of cases (aggregate-then-rank with the mean).

    Each bootstrap sample of cases is reranked; Kendall's τ-b (``scipy.stats.kendalltau``)
    compares it with the ranking on all cases.

    Returns a dict: ``ranks`` (the full ranking, (T,)), ``bootstrap_ranks`` (T, R),
    ``kendall_tau`` (R,), ``rank_counts`` (T, T): how often team t got rank r + 1.
    """
    from scipy.stats import kendalltau

    x = _check_values(values, allow_nan=False)
    full, _ = rank_aggregate_then_rank(x, higher_is_better=higher_is_better)
    reps = bootstrap_means(x, n_resamples=n_resamples, seed=seed, groups=groups, device=device).cpu().numpy()
    ranks = _rank_min(reps, higher_is_better, axis=0)
    taus = np.array([kendalltau(full, ranks[:, r]).statistic for r in range(ranks.shape[1])])
    k = x.shape[0]
    counts = np.zeros((k, k), dtype=np.int64)
    for t in range(k):
        counts[t] = np.bincount(ranks[t] - 1, minlength=k)
    return {"ranks": full, "bootstrap_ranks": ranks, "kendall_tau": taus, "rank_counts": counts}
