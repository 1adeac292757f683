"""Detection metrics: RSNA pneumonia mAP (torch, vectorized over images) and FROC.

Boxes are ``(x, y, width, height)`` in pixels, as in the RSNA pneumonia challenge; a
prediction is ``(confidence, x, y, width, height)``. Both functions take one array per image:
``truth[i]`` of shape (k, 4) and ``predictions[i]`` of shape (p, 5).
"""

from __future__ import annotations

import numpy as np
import torch

from ._device import pick_device

__all__ = ["RSNA_IOU_THRESHOLDS", "FROC_FP_RATES", "FROC_RULES", "box_iou", "rsna_map", "rsna_map_per_image",
           "froc_events", "froc_curve", "froc_curve_of", "froc_read", "froc_score", "froc_scores_weighted", "froc_curve_points"]

#: IoU thresholds of the RSNA pneumonia challenge: 0.40, 0.45, ..., 0.75.
RSNA_IOU_THRESHOLDS = tuple(round(0.4 + 0.05 * i, 2) for i in range(8))
#: False positives per image at which FROC reads the sensitivity (LUNA16).
FROC_FP_RATES = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def _as_list(boxes, width, what):
    out = []
    for i, b in enumerate(boxes):
        a = np.asarray(b, dtype=np.float64).reshape(-1, width) if len(b) else np.zeros((0, width))
        if not np.isfinite(a).all():
            raise ValueError(f"{what}[{i}] contains NaN or inf")
        if (a[:, -2:] < 0).any():
            raise ValueError(f"{what}[{i}] has a negative width or height")
        out.append(a)
    return out


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of (..., P, 4) and (..., G, 4) boxes ``(x, y, w, h)`` → (..., P, G); 0 when the union is 0."""
    ax1, ay1, aw, ah = a.unbind(-1)
    bx1, by1, bw, bh = b.unbind(-1)
    ix = (torch.minimum((ax1 + aw)[..., :, None], (bx1 + bw)[..., None, :])
          - torch.maximum(ax1[..., :, None], bx1[..., None, :])).clamp(min=0)
    iy = (torch.minimum((ay1 + ah)[..., :, None], (by1 + bh)[..., None, :])
          - torch.maximum(ay1[..., :, None], by1[..., None, :])).clamp(min=0)
    inter = ix * iy
    union = (aw * ah)[..., :, None] + (bw * bh)[..., None, :] - inter
    return torch.where(union > 0, inter / torch.where(union > 0, union, torch.ones_like(union)),
                       torch.zeros_like(union))


def _flatten(boxes, width, what):
    """Concatenate per-image box arrays: returns ``(all boxes (K, width), counts (I,))``."""
    counts = np.fromiter((len(b) for b in boxes), dtype=np.int64, count=len(boxes))
    try:
        cat = np.concatenate([*boxes, np.zeros((0, width))], axis=0).astype(np.float64, copy=False)
        if cat.ndim != 2 or cat.shape[1] != width or cat.shape[0] != counts.sum():
            raise ValueError
    except ValueError:
        cat = np.concatenate([np.asarray(b, dtype=np.float64).reshape(-1, width) for b in boxes]
                             + [np.zeros((0, width))], axis=0)
        counts = np.fromiter((np.asarray(b).size // width for b in boxes), dtype=np.int64, count=len(boxes))
    if not np.isfinite(cat).all():
        raise ValueError(f"{what} contain NaN or inf")
    if (cat[:, -2:] < 0).any():
        raise ValueError(f"{what} have a negative width or height")
    return cat, counts


def _padded(cat, counts, order=None):
    """(I, max count, width) zero-padded array and the validity mask from flattened boxes."""
    n_img, k = len(counts), int(counts.max(initial=0))
    img = np.repeat(np.arange(n_img), counts)
    starts = np.cumsum(counts) - counts
    if order is not None:
        cat, img = cat[order], img[order]
    slot = np.arange(len(img)) - starts[img]
    out = np.zeros((n_img, k, cat.shape[1]))
    out[img, slot] = cat
    return out


def rsna_map_per_image(truth, predictions, *, thresholds=RSNA_IOU_THRESHOLDS, device=None):
    """Each image's RSNA score; NaN for an image with neither truth nor predictions.

    For each IoU threshold t, predictions are taken in descending confidence (ties keep their
    order), each matched to the still unmatched truth box of highest IoU among those with IoU
    **strictly greater** than t; precision(t) = TP / (TP + FP + FN). The image's score is the
    mean over thresholds: 0 with predictions but no truth, or truth but no predictions.
    Vectorized over images: one step per prediction rank, all images and thresholds at once.
    """
    if len(truth) != len(predictions):
        raise ValueError(f"truth has {len(truth)} images and predictions {len(predictions)}")
    device = pick_device() if device is None else torch.device(device)
    tcat, tcount = _flatten(truth, 4, "truth boxes")
    pcat, pcount = _flatten(predictions, 5, "predictions")
    n_img = len(truth)
    G, P = int(tcount.max(initial=0)), int(pcount.max(initial=0))
    ng = torch.as_tensor(tcount, dtype=torch.float64, device=device)
    npred = torch.as_tensor(pcount, dtype=torch.float64, device=device)
    thr = torch.tensor(thresholds, dtype=torch.float64, device=device)
    tp = torch.zeros(n_img, len(thresholds), dtype=torch.float64, device=device)
    if G and P:
        pimg = np.repeat(np.arange(n_img), pcount)
        order = np.lexsort((-pcat[:, 0], pimg))  # by image, then descending confidence (stable)
        tb = torch.as_tensor(_padded(tcat, tcount), device=device)
        pb = torch.as_tensor(_padded(pcat, pcount, order)[:, :, 1:], device=device)
        gvalid = torch.arange(G, device=device)[None, :] < ng[:, None]
        iou = box_iou(pb, tb)  # (I, P, G)
        iou = torch.where(gvalid[:, None, :], iou, torch.full_like(iou, -1.0))
        matched = torch.zeros(n_img, len(thresholds), G, dtype=torch.bool, device=device)
        for k in range(P):
            ik = iou[:, k, None, :].expand(-1, len(thresholds), -1)
            cand = (ik > thr[None, :, None]) & ~matched & (k < npred)[:, None, None]
            masked = torch.where(cand, ik, torch.full_like(ik, -1.0))
            best = masked.argmax(-1, keepdim=True)
            has = cand.any(-1)
            matched.scatter_(-1, best, torch.gather(matched, -1, best) | has[..., None])
            tp += has
    fp = npred[:, None] - tp
    fn = ng[:, None] - tp
    denom = tp + fp + fn
    prec = torch.where(denom > 0, tp / torch.where(denom > 0, denom, torch.ones_like(denom)), torch.zeros_like(denom))
    score = prec.mean(-1)
    score = torch.where((ng == 0) & (npred == 0), torch.full_like(score, float("nan")), score)
    return score.cpu().numpy()


def rsna_map(truth, predictions, *, thresholds=RSNA_IOU_THRESHOLDS, device=None) -> float:
    """RSNA pneumonia mAP: mean over images of :func:`rsna_map_per_image`, leaving out images with
    neither truth nor predictions (NaN, with no image left)."""
    s = rsna_map_per_image(truth, predictions, thresholds=thresholds, device=device)
    s = s[~np.isnan(s)]
    return float(s.mean()) if s.size else float("nan")


def froc_events(truth, predictions, *, iou_threshold=None):
    """What a FROC curve is made of: ``(lesion_scores, lesion_image, fp_scores, fp_image, n_images)``.

    A prediction hits a lesion when its centre lies inside the truth box (inclusive), or with
    ``iou_threshold`` when its IoU is above it. Each lesion has the highest confidence of the
    predictions hitting it (-inf when none does: never found); a prediction hitting a lesion
    is never a false positive (LUNA16). Images are counted by their position in the lists.
    """
    truth = _as_list(truth, 4, "truth")
    preds = _as_list(predictions, 5, "predictions")
    if len(truth) != len(preds):
        raise ValueError(f"truth has {len(truth)} images and predictions {len(preds)}")
    ls, li, fs, fi = [], [], [], []
    for i, (t, p) in enumerate(zip(truth, preds)):
        lesion, false_positive = np.full(len(t), -np.inf), p[:, 0]
        if len(p) and len(t):
            if iou_threshold is None:
                cx = p[:, 1] + p[:, 3] / 2
                cy = p[:, 2] + p[:, 4] / 2
                hit = ((cx[:, None] >= t[None, :, 0]) & (cx[:, None] <= t[None, :, 0] + t[None, :, 2])
                       & (cy[:, None] >= t[None, :, 1]) & (cy[:, None] <= t[None, :, 1] + t[None, :, 3]))
            else:
                hit = box_iou(torch.as_tensor(p[:, 1:]), torch.as_tensor(t)).numpy() > iou_threshold
            lesion = np.where(hit, p[:, :1], -np.inf).max(0)
            false_positive = p[~hit.any(1), 0]
        ls.append(lesion)
        li.append(np.full(len(t), i))
        fs.append(false_positive)
        fi.append(np.full(len(false_positive), i))
    def cat(parts, dtype):
        return np.concatenate([*parts, np.zeros(0)]).astype(dtype)

    lesion_scores, fp_scores = cat(ls, np.float64), cat(fs, np.float64)
    lesion_image, fp_image = cat(li, np.int64), cat(fi, np.int64)
    if len(lesion_scores) == 0:
        raise ValueError("FROC is undefined without any truth lesion")
    return lesion_scores, lesion_image, fp_scores, fp_image, len(truth)


def _weighted_curves(events, weights, device):
    """FROC curves of every row of image ``weights`` (R, I): ``(fp_per_image, sensitivity)``, each
    (R, 1 + thresholds), starting at (0, 0), one point per distinct confidence, descending."""
    ls, li, fs, fi, n_img = events
    W = (weights.to(device=device, dtype=torch.float64) if isinstance(weights, torch.Tensor)
         else torch.as_tensor(np.asarray(weights, dtype=np.float64), device=device)).reshape(-1, n_img)
    found = np.isfinite(ls)
    score = np.concatenate([ls[found], fs])
    image = torch.as_tensor(np.concatenate([li[found], fi]), device=device)
    is_lesion = torch.as_tensor(np.concatenate([np.ones(found.sum()), np.zeros(len(fs))]), device=device)
    order = np.argsort(-score, kind="stable")
    ends = np.flatnonzero(np.r_[score[order][1:] != score[order][:-1], True]) if len(score) else np.zeros(0, int)
    order_t, ends_t = torch.as_tensor(order, device=device), torch.as_tensor(ends, device=device)
    w = W[:, image[order_t]]
    lesion = torch.cumsum(w * is_lesion[order_t], 1)[:, ends_t]
    fp = torch.cumsum(w * (1 - is_lesion[order_t]), 1)[:, ends_t]
    n_lesions = W[:, torch.as_tensor(li, device=device)].sum(1, keepdim=True)
    n_images = W.sum(1, keepdim=True)
    zero = torch.zeros(W.shape[0], 1, dtype=W.dtype, device=device)
    with np.errstate(invalid="ignore"):
        return (torch.cat([zero, fp / n_images], 1), torch.cat([zero, lesion / n_lesions], 1))


#: How the FROC score reads a sensitivity off the curve at each false-positive rate.
FROC_RULES = ("interpolated", "nearest")


def froc_read(fpi: torch.Tensor, sens: torch.Tensor, fp_rates, rule="interpolated") -> torch.Tensor:
    """The sensitivity of each curve (rows of ``fpi``, ``sens``: nondecreasing) at ``fp_rates``.

    ``"interpolated"`` (MONAI's ``compute_froc_score``, CAMELYON16): a straight line between the
    last point with fp ≤ rate (the highest sensitivity reached there) and the first point with
    fp > rate; beyond the curve's last point, its sensitivity. ``"nearest"`` (the LUNA16
    organisers' ``getCPM``): the curve point whose fp is nearest the rate (on a tie, the first
    in curve order, the lower sensitivity); 0 when no point lies nearer than the curve's largest
    fp, so a rate the curve never comes close to scores 0.
    """
    rates = torch.as_tensor(np.asarray(fp_rates, dtype=np.float64), device=fpi.device)
    R = fpi.shape[0]
    if rule == "interpolated":
        r = rates[None, :].expand(R, -1).contiguous()
        left = torch.searchsorted(fpi.contiguous(), r, right=True) - 1
        right = (left + 1).clamp(max=fpi.shape[1] - 1)
        xl, xr = fpi.gather(1, left), fpi.gather(1, right)
        yl, yr = sens.gather(1, left), sens.gather(1, right)
        inside = xr > r
        t = torch.where(inside, (r - xl) / torch.where(inside, xr - xl, torch.ones_like(xr)), torch.zeros_like(r))
        return yl + t * (yr - yl)
    if rule == "nearest":
        diff = (fpi[:, None, :] - rates[None, :, None]).abs()          # (R, rates, points)
        best = diff.argmin(-1)
        near = diff.gather(2, best[..., None])[..., 0] < fpi.max(1).values[:, None]
        return torch.where(near, sens.gather(1, best), torch.zeros_like(near, dtype=sens.dtype))
    raise ValueError(f"rule must be one of {', '.join(FROC_RULES)}, got {rule!r}")


def froc_curve(truth, predictions, *, iou_threshold=None):
    """FROC points ``(fp_per_image, sensitivity)``, starting at (0, 0), one per distinct confidence.

    Hits as :func:`froc_events`; several hits on one lesion count once, at the highest confidence.
    """
    return froc_curve_of(froc_events(truth, predictions, iou_threshold=iou_threshold))


def froc_curve_of(events):
    """:func:`froc_curve` of :func:`froc_events`' ``events``."""
    fpi, sens = _weighted_curves(events, np.ones(events[-1]), "cpu")
    return fpi[0].numpy(), sens[0].numpy()


def froc_score(truth, predictions, *, fp_rates=FROC_FP_RATES, iou_threshold=None, rule="interpolated"):
    """Mean sensitivity at ``fp_rates`` false positives per image, read off :func:`froc_curve` by
    ``rule`` (see :func:`froc_read`): ``"interpolated"`` is the CPM as MONAI and CAMELYON16
    compute it, ``"nearest"`` the LUNA16 organisers' calculator. Returns ``(score, sensitivities)``.
    """
    events = froc_events(truth, predictions, iou_threshold=iou_threshold)
    at = froc_scores_weighted(events, np.ones((1, len(truth))), fp_rates, rule, "cpu")[0].numpy()
    return float(at.mean()), at


def froc_scores_weighted(events, weights, fp_rates, rule, device):
    """(R, rates) sensitivities of the FROC of every row of image ``weights`` (bootstrap counts)."""
    fpi, sens = _weighted_curves(events, weights, device)
    return froc_read(fpi, sens, fp_rates, rule)


def froc_curve_points(fpi, fp_rates, *, max_points=200):
    """The indices of the points of a FROC curve (``fpi``: its nondecreasing false positives per
    image) to keep when it is stored small: about ``max_points`` evenly spread along the curve,
    plus every point either rule of :func:`froc_read` uses at ``fp_rates`` (the last point with fp ≤ rate, the
    first above it, the nearest one) and the curve's ends, so the kept curve reads the same
    sensitivities as the whole one."""
    fpi, n = np.asarray(fpi, dtype=np.float64), len(fpi)
    needed = {0, n - 1}
    for rate in fp_rates:
        left = int(np.searchsorted(fpi, rate, side="right")) - 1
        needed.update({max(left, 0), min(left + 1, n - 1), int(np.abs(fpi - rate).argmin())})
    spread = np.linspace(0, n - 1, max(max_points - len(needed), 2)).round().astype(int)
    return np.unique(np.r_[sorted(needed), spread])
