"""Regression metrics (e.g. bone age), computed with torch in float64."""

from __future__ import annotations

import numpy as np
import torch

from ._device import as_tensor

__all__ = ["mean_absolute_error", "root_mean_squared_error"]


def _prepare(y_true, y_pred, device):
    yt = np.asarray(y_true, dtype=np.float64)
    yp = np.asarray(y_pred, dtype=np.float64)
    if yt.shape != yp.shape:
        raise ValueError(f"y_true and y_pred have different shapes: {yt.shape} and {yp.shape}")
    if yt.ndim != 1 or yt.size == 0:
        raise ValueError(f"expected non-empty 1-D arrays, got shape {yt.shape}")
    if not (np.isfinite(yt).all() and np.isfinite(yp).all()):
        raise ValueError("y_true and y_pred must be finite (found NaN or inf)")
    return as_tensor(yt, device), as_tensor(yp, device)


def mean_absolute_error(y_true, y_pred, *, device=None) -> float:
    """MAE = mean |y − ŷ|, as :func:`sklearn.metrics.mean_absolute_error`."""
    y, p = _prepare(y_true, y_pred, device)
    return float(torch.mean(torch.abs(y - p)))


def root_mean_squared_error(y_true, y_pred, *, device=None) -> float:
    """RMSE = √mean (y − ŷ)², as :func:`sklearn.metrics.root_mean_squared_error`."""
    y, p = _prepare(y_true, y_pred, device)
    return float(torch.sqrt(torch.mean((y - p) ** 2)))
