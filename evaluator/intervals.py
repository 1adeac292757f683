"""The interval of every metric of a scored submission (what :func:`evaluator.score` adds).

Each task's ``score`` hands over a plan with its result: ``alpha``, the DeLong intervals it
computed (``delong``: {metric: (low, high)}), and ``replicate(W) -> {metric: (R,) tensor}``,
the metrics that are not a mean of per-case values, computed for every row of bootstrap
case counts ``W`` (R, n) at once, with ``strata`` (one per case) to resample them within.
Metrics whose value is the mean of the per-case rows' value of the same name (NaN left out)
are bootstrapped here, as one matrix product.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ._device import pick_device
from .statistics import resample_weights

__all__ = ["metric_intervals"]

#: Case counts are handed over in chunks of about this many numbers (bounded memory).
_CHUNK_NUMBERS = 2 ** 24


def _chunks(W, device):
    step = max(1, _CHUNK_NUMBERS // max(W.shape[1], 1))
    for s in range(0, W.shape[0], step):
        yield W[s:s + step].to(device)


def _interval(reps, alpha, method):
    reps = reps[torch.isfinite(reps)]
    if reps.numel() == 0:
        return _entry(None, None, alpha, method)
    q = torch.tensor([alpha / 2, 1 - alpha / 2], dtype=reps.dtype, device=reps.device)
    lo, hi = torch.quantile(reps, q).tolist()
    return _entry(lo, hi, alpha, method)


def _entry(low, high, alpha, method):
    finite = low is not None and high is not None and math.isfinite(low) and math.isfinite(high)
    if not finite:
        low = high = None
    degenerate = finite and high - low <= 1e-12 * max(1.0, abs(high))
    return {"low": low, "high": high, "level": round(1 - alpha, 12), "method": method, "degenerate": bool(degenerate)}


def metric_intervals(result, plan, *, groups=None, n_resamples=2000, seed=0, device=None) -> dict:
    """``{metric: {"low", "high", "level", "method", "degenerate"}}`` for every scalar metric.

    ``groups`` ({case_id: patient}) makes every interval a cluster bootstrap over patients
    (``"bootstrap-patient"``, DeLong included, whose variance assumes independent cases).
    """
    device = pick_device() if device is None else torch.device(device)
    alpha = float(plan.get("alpha", 0.05))
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    if int(n_resamples) < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples!r}")
    rows = result["per_case"]
    n = len(rows)
    patient = None
    if groups is not None:
        lacking = sum(r["case_id"] not in groups for r in rows)
        if lacking:
            raise ValueError(f"groups gives no patient for {lacking} of the {n} scored case"
                             f"{'s' if n != 1 else ''}")
        patient = [str(groups[r["case_id"]]) for r in rows]
    scalar = [k for k, v in result["metrics"].items() if v is None or isinstance(v, (int, float))]
    per_case = [k for k in scalar if n and all(k in r for r in rows)]
    out = {}
    plain = resample_weights(n, n_resamples, seed, groups=patient) if n else None
    if per_case:
        V = torch.tensor([[math.nan if r[k] is None else float(r[k]) for r in rows] for k in per_case],
                         dtype=torch.float64, device=device)
        present = ~torch.isnan(V)
        V0 = torch.where(present, V, torch.zeros_like(V))
        M = present.to(V.dtype)
        reps = torch.cat([(V0 @ w.T) / (M @ w.T) for w in _chunks(plain, device)], dim=1)
        method = "bootstrap-patient" if patient else "bootstrap"
        for k, r in zip(per_case, reps):
            out[k] = _interval(r, alpha, method)
    rest = [k for k in scalar if k not in out]
    if rest and n:
        strata = plan.get("strata")
        if patient is not None:
            W, method = plain, "bootstrap-patient"
        elif strata is not None:
            W, method = resample_weights(n, n_resamples, seed, strata=strata), "bootstrap-stratified"
        else:
            W, method = plain, "bootstrap"
        collected: dict[str, list] = {}
        for w in _chunks(W, device):
            for k, v in plan["replicate"](w).items():
                collected.setdefault(k, []).append(v)
        for k in rest:
            low_high = plan.get("delong", {}).get(k)
            if patient is None and low_high is not None and None not in low_high and not any(map(math.isnan, low_high)):
                out[k] = _entry(*low_high, alpha, "delong")
            elif k in collected:
                out[k] = _interval(torch.cat(collected[k]), alpha, method)
    for k in scalar:
        if result["metrics"][k] is None or (isinstance(result["metrics"][k], float)
                                            and not math.isfinite(result["metrics"][k])):
            out[k] = _entry(None, None, alpha, out.get(k, {}).get("method", "bootstrap"))
        elif k not in out:
            raise AssertionError(f"no interval rule for metric {k!r}")
    return {k: out[k] for k in scalar}
