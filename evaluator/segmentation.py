"""Segmentation metrics for one case: Dice, IoU, HD95, NSD, volume difference (2D and 3D).

Masks are boolean arrays of the same shape; ``spacing`` gives the voxel size in mm along each
axis (from the image header). Counting runs in torch on :func:`evaluator.pick_device`; the
surface distances use an exact Euclidean distance transform (``scipy.ndimage``) on the CPU, or
an exact chunked nearest-neighbour search (``torch.cdist``) on CUDA; both are computed only in
the bounding box of the two masks (plus one voxel), which gives the same distances as the whole
image because every surface voxel lies inside it.

Empty masks (Mica's convention, after Metrics Reloaded): both empty gives Dice, IoU, NSD = 1
and HD95 = 0; exactly one empty gives Dice, IoU, NSD = 0 and HD95 = the image diagonal in mm,
√Σ(sizeᵢ·spacingᵢ)², the worst possible. A :class:`EmptyMaskWarning` says when this applies.
MONAI returns NaN or inf in these cases instead.

References
----------
MONAI ``compute_hausdorff_distance`` (HD95), DeepMind ``surface-distance``
``compute_surface_dice_at_tolerance`` (NSD; Nikolov et al. 2021, arXiv:1809.04430),
Maier-Hein, Reinke et al. (2024), Metrics Reloaded, Nature Methods 21.
"""

from __future__ import annotations

import functools
import itertools
import math
import warnings

import numpy as np
import torch

from ._device import pick_device

__all__ = ["dice_score", "iou_score", "absolute_volume_difference", "hausdorff_distance_95",
           "normalized_surface_dice", "case_metrics", "EmptyMaskWarning", "image_diagonal"]


class EmptyMaskWarning(UserWarning):
    """An empty truth or prediction mask: Mica's empty-mask convention decided the value."""


def _prepare(truth, pred, spacing=None):
    t = np.asarray(truth.cpu() if isinstance(truth, torch.Tensor) else truth)
    p = np.asarray(pred.cpu() if isinstance(pred, torch.Tensor) else pred)
    if t.shape != p.shape:
        raise ValueError(f"truth and prediction masks have different shapes: {t.shape} and {p.shape}")
    if t.ndim not in (2, 3):
        raise ValueError(f"masks must be 2-D or 3-D, got shape {t.shape}")
    if spacing is None:
        spacing = (1.0,) * t.ndim
    spacing = tuple(float(s) for s in spacing)
    if len(spacing) != t.ndim or not all(s > 0 and math.isfinite(s) for s in spacing):
        raise ValueError(f"spacing must be {t.ndim} positive numbers, got {spacing}")
    return t.astype(bool), p.astype(bool), spacing


def image_diagonal(shape, spacing) -> float:
    """√Σ(sizeᵢ·spacingᵢ)², the largest distance possible in the image (mm)."""
    return float(math.sqrt(sum((n * s) ** 2 for n, s in zip(shape, spacing))))


def _empty_case(nt, np_, what):
    if nt == 0 or np_ == 0:
        which = "both masks are" if nt == 0 and np_ == 0 else ("the truth is" if nt == 0 else "the prediction is")
        warnings.warn(f"{what}: {which} empty; Mica's empty-mask convention applies", EmptyMaskWarning,
                      stacklevel=3)
        return True
    return False


def _counts(t, p, device):
    device = pick_device() if device is None else torch.device(device)
    tt = torch.as_tensor(t, device=device)
    pp = torch.as_tensor(p, device=device)
    return int(tt.sum()), int(pp.sum()), int((tt & pp).sum())


def dice_score(truth, pred, spacing=None, *, device=None) -> float:
    """Dice = 2|A∩B| / (|A| + |B|); 1 when both masks are empty (with an :class:`EmptyMaskWarning`)."""
    t, p, _ = _prepare(truth, pred, spacing)
    nt, np_, inter = _counts(t, p, device)
    if _empty_case(nt, np_, "Dice") and nt + np_ == 0:
        return 1.0
    return 2.0 * inter / (nt + np_)


def iou_score(truth, pred, spacing=None, *, device=None) -> float:
    """IoU (Jaccard) = |A∩B| / |A∪B|; 1 when both masks are empty."""
    t, p, _ = _prepare(truth, pred, spacing)
    nt, np_, inter = _counts(t, p, device)
    if _empty_case(nt, np_, "IoU") and nt + np_ == 0:
        return 1.0
    return inter / (nt + np_ - inter)


def absolute_volume_difference(truth, pred, spacing=None, *, device=None) -> float:
    """| |B| − |A| | × voxel volume, in mm³ (mm² in 2D)."""
    t, p, spacing = _prepare(truth, pred, spacing)
    nt, np_, _ = _counts(t, p, device)
    return abs(np_ - nt) * float(np.prod(spacing))


# ----------------------------------------------------------------------------- surfaces
def _bbox_crop(t, p, pad_before=1, pad_after=1):
    """Crop both masks to the bounding box of their union, with zero padding."""
    union = t | p
    idx = [np.flatnonzero(union.any(axis=tuple(a for a in range(t.ndim) if a != ax))) for ax in range(t.ndim)]
    sl = tuple(slice(i[0], i[-1] + 1) for i in idx)
    shape = tuple(s.stop - s.start + pad_before + pad_after for s in sl)
    inner = tuple(slice(pad_before, pad_before + s.stop - s.start) for s in sl)
    ct = np.zeros(shape, bool)
    cp = np.zeros(shape, bool)
    ct[inner] = t[sl]
    cp[inner] = p[sl]
    return ct, cp


def _border(mask: torch.Tensor) -> torch.Tensor:
    """mask XOR its binary erosion with the cross structure (mask zero-padded by the caller)."""
    er = mask.clone()
    for ax in range(mask.ndim):
        n = mask.shape[ax]
        lo = mask.narrow(ax, 0, n - 2)
        hi = mask.narrow(ax, 2, n - 2)
        core = er.narrow(ax, 1, n - 2)
        core &= lo & hi
        er.narrow(ax, 0, 1).zero_()
        er.narrow(ax, n - 1, 1).zero_()
    return mask & ~er


def _directed_distances(src: torch.Tensor, dst: torch.Tensor, spacing, method):
    """Distance (mm) from each True voxel of ``src`` to the nearest True voxel of ``dst``."""
    if method == "edt":
        from scipy.ndimage import distance_transform_edt

        dist = distance_transform_edt(~dst.cpu().numpy(), sampling=spacing)
        return torch.as_tensor(dist[src.cpu().numpy()], dtype=torch.float64)
    sp = torch.tensor(spacing, dtype=torch.float64, device=src.device)
    a = torch.nonzero(src).to(torch.float64) * sp
    b = torch.nonzero(dst).to(torch.float64) * sp
    out = torch.empty(a.shape[0], dtype=torch.float64, device=src.device)
    chunk = max(1, int(2 ** 27 // max(b.shape[0], 1)))
    for s in range(0, a.shape[0], chunk):
        out[s:s + chunk] = torch.cdist(a[s:s + chunk], b, compute_mode="donot_use_mm_for_euclid_dist").min(1).values
    return out


def _default_method(device):
    return "cdist" if device.type == "cuda" else "edt"


def _quantile(x: torch.Tensor, q: float) -> float:
    if x.numel() > 10_000_000:
        return float(np.quantile(x.cpu().numpy(), q))
    return float(torch.quantile(x, q))


def hausdorff_distance_95(truth, pred, spacing=None, *, percentile=95.0, device=None, method=None) -> float:
    """95th percentile Hausdorff distance in mm, as MONAI's ``compute_hausdorff_distance(percentile=95)``.

    Surface = mask XOR its binary erosion (cross structure, voxels on the image border count as
    surface). For each direction, the distances from one surface to the nearest voxel of the
    other (Euclidean, with the spacing); the ``percentile`` with linear interpolation; the
    result is the larger of the two. (medpy pools both directions into one percentile: a
    different number.) Empty masks: see the module docstring.
    """
    t, p, spacing = _prepare(truth, pred, spacing)
    device = pick_device() if device is None else torch.device(device)
    if not t.any() or not p.any():
        _empty_case(int(t.sum()), int(p.sum()), "HD95")
        return 0.0 if not (t.any() or p.any()) else image_diagonal(t.shape, spacing)
    return _hd_cropped(*_bbox_crop(t, p), spacing, device, method or _default_method(device), percentile)


def _hd_cropped(ct, cp, spacing, device, method, percentile=95.0):
    bt = _border(torch.as_tensor(ct, device=device))
    bp = _border(torch.as_tensor(cp, device=device))
    d_pt = _directed_distances(bp, bt, spacing, method)
    d_tp = _directed_distances(bt, bp, spacing, method)
    return max(_quantile(d_pt, percentile / 100), _quantile(d_tp, percentile / 100))


# ----------------------------------------------------------------------------- NSD
@functools.lru_cache(maxsize=64)
def surfel_measure_table(spacing: tuple) -> np.ndarray:
    """Length (2D) or area (3D) in mm of the surface inside each 2×2(×2) neighbourhood code.

    Taken from DeepMind's ``surface_distance.lookup_tables`` (the reference METRICS.md names):
    2D marching squares with edge midpoints; 3D the sum of the norms of the marching-cubes
    triangles' area vectors, scaled by the spacing. Using the reference's own table is what
    makes NSD agree with ``compute_surface_dice_at_tolerance`` to rounding error.
    """
    from surface_distance import lookup_tables

    if len(spacing) == 2:
        return lookup_tables.create_table_neighbour_code_to_contour_length(spacing)
    return lookup_tables.create_table_neighbour_code_to_surface_area(spacing)


def _neighbour_codes(mask: torch.Tensor) -> torch.Tensor:
    """Code of each 2×2(×2) neighbourhood, on a grid one larger than the (unpadded) mask."""
    ndim = mask.ndim
    m = torch.nn.functional.pad(mask.to(torch.int32), (1, 1) * ndim)
    code = torch.zeros([s + 1 for s in mask.shape], dtype=torch.int32, device=mask.device)
    nbits = 2 ** ndim
    for k, off in enumerate(itertools.product((0, 1), repeat=ndim)):
        sl = tuple(slice(o, o + s + 1) for o, s in zip(off, mask.shape))
        code += m[sl] << (nbits - 1 - k)
    return code


def _nsd_parts(ct, cp, spacing, device, method):
    """Surface distances and surfel measures of two masks cropped by :func:`_bbox_crop`."""
    full = 2 ** (2 ** ct.ndim) - 1
    table = torch.as_tensor(surfel_measure_table(tuple(spacing)), device=device)
    code_t = _neighbour_codes(torch.as_tensor(ct, device=device))
    code_p = _neighbour_codes(torch.as_tensor(cp, device=device))
    bt = (code_t != 0) & (code_t != full)
    bp = (code_p != 0) & (code_p != full)
    d_tp = _directed_distances(bt, bp, spacing, method).to(device)
    d_pt = _directed_distances(bp, bt, spacing, method).to(device)
    return d_tp, table[code_t[bt].long()], d_pt, table[code_p[bp].long()]


def normalized_surface_dice(truth, pred, spacing=None, *, tolerance=1.0, device=None, method=None) -> float:
    """Normalized surface Dice at ``tolerance`` mm, as DeepMind's ``compute_surface_dice_at_tolerance``.

    Surface elements sit on the grid of 2×2(×2) neighbourhoods and are weighted by their
    length/area (:func:`surfel_measure_table`); NSD = (area of the truth surface within τ of
    the prediction surface + area of the prediction surface within τ of the truth surface) /
    (total area of both), τ inclusive (up to a relative 1e-6, :data:`NSD_RELATIVE_SLACK`, on
    every path, so that rounding never puts a distance of exactly τ outside). MONAI's default counts edge voxels with equal weight
    (a different number). Empty masks: see the module docstring.
    """
    if not tolerance >= 0:
        raise ValueError(f"tolerance must be a non-negative number of mm, got {tolerance!r}")
    t, p, spacing = _prepare(truth, pred, spacing)
    device = pick_device() if device is None else torch.device(device)
    if not t.any() or not p.any():
        _empty_case(int(t.sum()), int(p.sum()), "NSD")
        return 1.0 if not (t.any() or p.any()) else 0.0
    return _nsd_cropped(*_bbox_crop(t, p), spacing, device, method or _default_method(device), tolerance)


#: NSD's tolerance is inclusive up to this relative slack: a distance of exactly τ must count
#: whatever rounding made of it (coordinates scaled before subtracting on the cdist path; NIfTI
#: spacing stored as float32, so a 0.8 × 0.6 mm diagonal comes out a hair above 1 mm).
NSD_RELATIVE_SLACK = 1e-6


def _nsd_cropped(ct, cp, spacing, device, method, tolerance):
    d_tp, a_t, d_pt, a_p = _nsd_parts(ct, cp, spacing, device, method)
    limit = tolerance * (1 + NSD_RELATIVE_SLACK)
    num = a_t[d_tp <= limit].sum() + a_p[d_pt <= limit].sum()
    return float(num / (a_t.sum() + a_p.sum()))


def case_metrics(truth, pred, spacing=None, *, tolerance=1.0, device=None, method=None) -> dict:
    """All segmentation metrics of one case and one label, as a dict."""
    t, p, spacing = _prepare(truth, pred, spacing)
    device = pick_device() if device is None else torch.device(device)
    if not (t.any() or p.any()):
        return {"volume_difference": 0.0, "dice": 1.0, "iou": 1.0, "hd95": 0.0, "nsd": 1.0}
    ct, cp = _bbox_crop(t, p)  # every voxel of both masks lies in the crop
    nt, np_, inter = _counts(ct, cp, device)
    out = {"volume_difference": abs(np_ - nt) * float(np.prod(spacing))}
    if nt == 0 or np_ == 0:
        out.update(dice=0.0, iou=0.0, hd95=image_diagonal(t.shape, spacing), nsd=0.0)
        return out
    method = method or _default_method(device)
    out.update(dice=2.0 * inter / (nt + np_), iou=inter / (nt + np_ - inter),
               hd95=_hd_cropped(ct, cp, spacing, device, method),
               nsd=_nsd_cropped(ct, cp, spacing, device, method, tolerance))
    return out
