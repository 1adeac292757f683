"""Where the metrics run."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["pick_device", "as_tensor"]


def pick_device() -> torch.device:
    """Return ``cuda`` when a CUDA device is available, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def as_tensor(x, device=None, dtype=torch.float64) -> torch.Tensor:
    """Convert array-like ``x`` to a tensor on ``device`` (default :func:`pick_device`)."""
    device = pick_device() if device is None else torch.device(device)
    if isinstance(x, torch.Tensor):
        return x.to(device=device, dtype=dtype)
    return torch.as_tensor(np.asarray(x), dtype=dtype, device=device)
