"""Binary and multi-label classification metrics, computed with torch.

Every function takes ``y_true`` (0/1) and ``y_score`` of shape ``(n_samples,)`` and returns a
float, or of shape ``(n_samples, n_labels)`` and returns one value per label (a numpy array).
Computations run in float64 on :func:`evaluator.pick_device` (or ``device``).

References
----------
DeLong E.R., DeLong D.M., Clarke-Pearson D.L. (1988). Comparing the areas under two or more
correlated receiver operating characteristic curves: a nonparametric approach. Biometrics 44.
Sun X., Xu W. (2014). Fast implementation of DeLong's algorithm for comparing the areas under
correlated receiver operating characteristic curves. IEEE Signal Processing Letters 21(11).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch

from ._device import as_tensor

__all__ = [
    "roc_auc_score",
    "auc_confidence_interval",
    "delong_test",
    "sensitivity_specificity",
    "operating_point",
    "average_precision_score",
    "log_loss",
]

_EPS = float(np.finfo(np.float64).eps)


class UndefinedMetricWarning(UserWarning):
    """A metric is undefined on the data given (e.g. AUC with one class); NaN is returned."""


# ----------------------------------------------------------------------------- helpers
def _prepare(y_true, y_score, device=None, *, check_prob=False):
    """Validate and return ``(y, s, squeeze)`` as float64 tensors of shape (n_labels, n)."""
    yt = np.asarray(y_true.cpu() if isinstance(y_true, torch.Tensor) else y_true)
    ys = y_score.cpu() if isinstance(y_score, torch.Tensor) else y_score
    ys = np.asarray(ys, dtype=np.float64)
    if yt.shape != ys.shape:
        raise ValueError(f"y_true and y_score have different shapes: {yt.shape} and {ys.shape}")
    if yt.ndim not in (1, 2):
        raise ValueError(f"expected 1-D or 2-D (n_samples, n_labels) arrays, got shape {yt.shape}")
    if yt.shape[0] == 0:
        raise ValueError("y_true is empty")
    yt = yt.astype(np.float64)
    if not np.all((yt == 0) | (yt == 1)):
        bad = yt[(yt != 0) & (yt != 1)].ravel()[0]
        raise ValueError(f"y_true must hold only 0 and 1, found {bad!r}")
    if not np.all(np.isfinite(ys)):
        raise ValueError("y_score contains NaN or infinite values")
    if check_prob and (ys.min() < 0 or ys.max() > 1):
        raise ValueError(f"probabilities must lie in [0, 1], found values in [{ys.min()}, {ys.max()}]")
    squeeze = yt.ndim == 1
    if squeeze:
        yt, ys = yt[None, :], ys[None, :]
    else:
        yt, ys = yt.T, ys.T
    return as_tensor(np.ascontiguousarray(yt), device), as_tensor(np.ascontiguousarray(ys), device), squeeze


def _out(t: torch.Tensor, squeeze: bool):
    a = t.detach().cpu().numpy()
    return float(a[0]) if squeeze else a


def _tie_groups(sorted_scores: torch.Tensor):
    """For each position of a sorted (..., n) tensor: first and last index of its tie group."""
    n = sorted_scores.shape[-1]
    idx = torch.arange(n, device=sorted_scores.device).expand_as(sorted_scores)
    is_start = torch.ones_like(sorted_scores, dtype=torch.bool)
    is_start[..., 1:] = sorted_scores[..., 1:] != sorted_scores[..., :-1]
    is_end = torch.ones_like(is_start)
    is_end[..., :-1] = is_start[..., 1:]
    start = torch.cummax(torch.where(is_start, idx, torch.zeros_like(idx)), dim=-1).values
    end = torch.where(is_end, idx, torch.full_like(idx, n - 1)).flip(-1).cummin(dim=-1).values.flip(-1)
    return start, end


def _delong_groups(y: torch.Tensor, s: torch.Tensor):
    """DeLong placements per tie group, in O(n log n) (Sun & Xu 2014), batched over rows.

    Sorts each row of ``s`` once; all cases sharing a score form a group, and every positive
    (negative) of a group has the same placement. Returns a dict with, per group, ``pos`` and
    ``neg`` counts, placements ``v10`` (fraction of negatives below a positive, ties ½) and
    ``v01`` (fraction of positives above a negative, ties ½), the group's row ``row``; per row
    ``auc``, ``m`` positives, ``n`` negatives; and ``gid``/``order`` to map groups back to cases.
    """
    B, N = s.shape
    s_sorted, order = torch.sort(s, dim=-1)
    p = torch.gather(y, -1, order)
    is_start = torch.ones_like(s_sorted, dtype=torch.bool)
    is_start[:, 1:] = s_sorted[:, 1:] != s_sorted[:, :-1]
    gid = torch.cumsum(is_start.reshape(-1), 0) - 1
    G = int(gid[-1]) + 1
    cnt = torch.bincount(gid, minlength=G).to(s.dtype)
    pos = torch.bincount(gid, weights=p.reshape(-1), minlength=G).to(s.dtype)
    neg = cnt - pos
    first = gid.view(B, N)[:, 0]
    per_row = torch.diff(torch.cat([first, first.new_tensor([G])]))
    row = torch.repeat_interleave(torch.arange(B, device=s.device), per_row)
    m = p.sum(-1)
    n = N - m
    neg_excl = torch.cumsum(neg, 0) - neg
    pos_incl = torch.cumsum(pos, 0)
    neg_below = neg_excl - neg_excl[first][row]
    pos_to_end = pos_incl - (pos_incl - pos)[first][row]
    v10 = (neg_below + 0.5 * neg) / n[row]
    v01 = (m[row] - pos_to_end + 0.5 * pos) / m[row]
    auc = torch.zeros(B, dtype=s.dtype, device=s.device).index_add_(0, row, pos * v10) / m
    return {"pos": pos, "neg": neg, "v10": v10, "v01": v01, "row": row, "auc": auc, "m": m, "n": n,
            "gid": gid.view(B, N), "order": order, "p": p}


def _delong_variance(g):
    """Var(AUC) = S₁₀/m + S₀₁/n per row, with sample variances (ddof 1) of the placements."""
    auc_g = g["auc"][g["row"]]
    B = g["auc"].shape[0]
    s10 = torch.zeros(B, dtype=auc_g.dtype, device=auc_g.device).index_add_(0, g["row"], g["pos"] * (g["v10"] - auc_g) ** 2)
    s01 = torch.zeros(B, dtype=auc_g.dtype, device=auc_g.device).index_add_(0, g["row"], g["neg"] * (g["v01"] - auc_g) ** 2)
    m, n = g["m"], g["n"]
    return s10 / (m - 1) / m + s01 / (n - 1) / n


def delong_placements(y: torch.Tensor, s: torch.Tensor):
    """DeLong placements of every case, in the cases' order, batched over rows.

    Returns ``(auc, v10, v01, m, n)``: ``v10`` is, at each positive, the fraction of negatives
    below it (ties count ½); ``v01`` is, at each negative, the fraction of positives above it
    (ties count ½); both are 0 elsewhere. ``m``/``n`` count positives/negatives per row.
    """
    g = _delong_groups(y, s)
    p = g["p"]
    v10_sorted = g["v10"][g["gid"]] * p
    v01_sorted = g["v01"][g["gid"]] * (1 - p)
    v10 = torch.empty_like(v10_sorted).scatter_(-1, g["order"], v10_sorted)
    v01 = torch.empty_like(v01_sorted).scatter_(-1, g["order"], v01_sorted)
    return g["auc"], v10, v01, g["m"], g["n"]


def _delong_cov(y, auc_a, v10_a, v01_a, auc_b, v10_b, v01_b, m, n):
    s10 = (y * (v10_a - auc_a[..., None]) * (v10_b - auc_b[..., None])).sum(-1) / (m - 1)
    s01 = ((1 - y) * (v01_a - auc_a[..., None]) * (v01_b - auc_b[..., None])).sum(-1) / (n - 1)
    return s10 / m + s01 / n


def _warn_one_class(m, n, what):
    if bool(((m == 0) | (n == 0)).any()):
        warnings.warn(f"{what} is undefined when y_true holds only one class; returning NaN",
                      UndefinedMetricWarning, stacklevel=3)


# ----------------------------------------------------------------------------- metrics
def roc_auc_score(y_true, y_score, *, device=None):
    """Area under the ROC curve.

    AUC = P(s₊ > s₋) + ½ P(s₊ = s₋), the Mann-Whitney statistic, as
    :func:`sklearn.metrics.roc_auc_score`. Computed in O(n log n) from DeLong placements.

    Returns NaN (with an :class:`UndefinedMetricWarning`) when ``y_true`` has one class only.
    """
    y, s, squeeze = _prepare(y_true, y_score, device)
    g = _delong_groups(y, s)
    auc, m, n = g["auc"], g["m"], g["n"]
    _warn_one_class(m, n, "AUC")
    auc = torch.where((m > 0) & (n > 0), auc, torch.full_like(auc, float("nan")))
    return _out(auc, squeeze)


def auc_confidence_interval(y_true, y_score, *, alpha=0.05, device=None):
    """AUC with its DeLong confidence interval.

    Var(AUC) = S₁₀/m + S₀₁/n, with S₁₀, S₀₁ the sample variances (ddof 1) of the placements
    of the m positives and n negatives (DeLong 1988; O(n log n) algorithm of Sun & Xu 2014,
    as pROC's ``delong.cpp``). Interval = AUC ± z₁₋α/₂ √Var, **clipped to [0, 1]** as pROC.

    Returns
    -------
    auc, low, high : float or arrays (one per label)
        ``low``/``high`` are NaN (with a warning) when there are fewer than 2 positives or
        fewer than 2 negatives.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    y, s, squeeze = _prepare(y_true, y_score, device)
    g = _delong_groups(y, s)
    auc, m, n = g["auc"], g["m"], g["n"]
    _warn_one_class(m, n, "AUC")
    ok = (m >= 2) & (n >= 2)
    if not bool(ok.all()):
        warnings.warn("the DeLong interval needs at least 2 positives and 2 negatives; returning NaN",
                      UndefinedMetricWarning, stacklevel=2)
    var = _delong_variance(g)
    z = _normal_ppf(1 - alpha / 2)
    half = z * torch.sqrt(torch.clamp(var, min=0))
    nan = torch.full_like(auc, float("nan"))
    low = torch.where(ok, torch.clamp(auc - half, 0, 1), nan)
    high = torch.where(ok, torch.clamp(auc + half, 0, 1), nan)
    auc = torch.where((m > 0) & (n > 0), auc, nan)
    return _out(auc, squeeze), _out(low, squeeze), _out(high, squeeze)


def delong_test(y_true, y_score_a, y_score_b, *, device=None):
    """Paired DeLong test of two AUCs computed on the same cases.

    Z = (A₁ − A₂) / √(Var₁ + Var₂ − 2 Cov₁₂), two-sided p-value from the normal distribution.
    When the difference and its variance are both 0, Z = 0 and p = 1 (as pROC).

    Returns
    -------
    z, p : float
    """
    y, sa, squeeze = _prepare(y_true, y_score_a, device)
    _, sb, _ = _prepare(y_true, y_score_b, device)
    if not squeeze:
        raise ValueError("delong_test takes 1-D arrays (one label)")
    a1, v10a, v01a, m, n = delong_placements(y, sa)
    a2, v10b, v01b, _, _ = delong_placements(y, sb)
    if int(m) < 2 or int(n) < 2:
        raise ValueError(f"the DeLong test needs at least 2 positives and 2 negatives, got {int(m)} and {int(n)}")
    var = (_delong_cov(y, a1, v10a, v01a, a1, v10a, v01a, m, n)
           + _delong_cov(y, a2, v10b, v01b, a2, v10b, v01b, m, n)
           - 2 * _delong_cov(y, a1, v10a, v01a, a2, v10b, v01b, m, n))
    diff = float(a1 - a2)
    var = float(var)
    if diff == 0 and abs(var) < 1e-300:
        return 0.0, 1.0
    if var <= 0:
        z = math.copysign(math.inf, diff)
        return z, 0.0
    z = diff / math.sqrt(var)
    p = math.erfc(abs(z) / math.sqrt(2))
    return z, p


def sensitivity_specificity(y_true, y_score, *, threshold=0.5, device=None):
    """Sensitivity TP/(TP+FN) and specificity TN/(TN+FP), a case being positive when score ≥ threshold.

    The rule ``score >= threshold`` is the one of :func:`sklearn.metrics.roc_curve` and pROC.
    Each is NaN (with a warning) when its denominator is 0.
    """
    y, s, squeeze = _prepare(y_true, y_score, device)
    pred = (s >= threshold).double()
    m, n = y.sum(-1), (1 - y).sum(-1)
    _warn_one_class(m, n, "sensitivity or specificity")
    sens = (pred * y).sum(-1) / m
    spec = ((1 - pred) * (1 - y)).sum(-1) / n
    return _out(sens, squeeze), _out(spec, squeeze)


def _descending_groups(y, s):
    s_sorted, order = torch.sort(s, dim=-1, descending=True)
    start, end = _tie_groups(-s_sorted)
    yy = torch.gather(y, -1, order)
    tps = torch.cumsum(yy, -1)
    fps = torch.cumsum(1 - yy, -1)
    return s_sorted, yy, start, end, tps, fps


def operating_point(y_true, y_score, *, target_sensitivity=0.95, device=None):
    """The highest threshold whose sensitivity reaches ``target_sensitivity`` (Mica's rule).

    Thresholds are the distinct scores (``sklearn.metrics.roc_curve(drop_intermediate=False)``);
    a case is positive when score ≥ threshold.

    Returns
    -------
    threshold, sensitivity, specificity : float or arrays
    """
    if not 0 < target_sensitivity <= 1:
        raise ValueError(f"target_sensitivity must lie in (0, 1], got {target_sensitivity!r}")
    y, s, squeeze = _prepare(y_true, y_score, device)
    s_sorted, yy, start, end, tps, fps = _descending_groups(y, s)
    m, n = y.sum(-1, keepdim=True), (1 - y).sum(-1, keepdim=True)
    _warn_one_class(m, n, "the operating point")
    is_end = end == torch.arange(s.shape[-1], device=s.device)
    tpr = tps / m
    reach = is_end & (tpr >= target_sensitivity - 1e-12)
    first = torch.argmax(reach.to(torch.int8), dim=-1, keepdim=True)
    thr = torch.gather(s_sorted, -1, first).squeeze(-1)
    sens = torch.gather(tpr, -1, first).squeeze(-1)
    spec = 1 - torch.gather(fps, -1, first).squeeze(-1) / n.squeeze(-1)
    nan = torch.full_like(thr, float("nan"))
    undefined = (m.squeeze(-1) == 0) | (n.squeeze(-1) == 0)
    return (_out(torch.where(undefined, nan, thr), squeeze),
            _out(torch.where(undefined, nan, sens), squeeze),
            _out(torch.where(undefined, nan, spec), squeeze))


def average_precision_score(y_true, y_score, *, device=None):
    """Average precision, the step-wise sum AP = Σₖ (Rₖ − Rₖ₋₁) Pₖ over distinct thresholds.

    As :func:`sklearn.metrics.average_precision_score`: not interpolated, not a trapezoid.
    Each positive contributes the precision at the end of its tie group, divided by the number
    of positives. NaN (with a warning) when there is no positive.
    """
    y, s, squeeze = _prepare(y_true, y_score, device)
    s_sorted, yy, start, end, tps, fps = _descending_groups(y, s)
    prec_end = torch.gather(tps / (tps + fps), -1, end)
    m = y.sum(-1)
    if bool((m == 0).any()):
        warnings.warn("average precision is undefined without positives; returning NaN",
                      UndefinedMetricWarning, stacklevel=2)
    ap = (yy * prec_end).sum(-1) / m
    return _out(ap, squeeze)


def log_loss(y_true, y_prob, *, weights=None, device=None):
    """Binary cross-entropy, with probabilities clipped to [ε, 1 − ε], ε = float64 eps.

    ℓ = −mean[y log p + (1 − y) log(1 − p)], as :func:`sklearn.metrics.log_loss`.
    Probabilities outside [0, 1] are an error, not clipped silently.

    With 2-D input and ``weights`` (one per label) the result is the weighted multi-label log
    loss Σⱼ wⱼ ℓⱼ / Σⱼ wⱼ (RSNA hemorrhage: weight 2 on ``any``), equal to sklearn's
    ``log_loss`` on the flattened rows with ``sample_weight``; without weights 2-D input gives
    one loss per label.
    """
    y, p, squeeze = _prepare(y_true, y_prob, device, check_prob=True)
    p = torch.clamp(p, _EPS, 1 - _EPS)
    per_label = -(y * torch.log(p) + (1 - y) * torch.log1p(-p)).mean(-1)
    if weights is None:
        return _out(per_label, squeeze)
    w = as_tensor(np.asarray(weights, dtype=np.float64).reshape(-1), p.device)
    if w.numel() != per_label.numel():
        raise ValueError(f"weights has {w.numel()} values for {per_label.numel()} labels")
    if bool((w < 0).any()) or float(w.sum()) <= 0:
        raise ValueError("weights must be non-negative with a positive sum")
    return float((w * per_label).sum() / w.sum())


def _normal_ppf(q: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(q))
