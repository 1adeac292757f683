"""Consensus of several readers: case labels, boxes and masks.

Every function takes a table ``{case_id: {reader: answer}}`` (``None`` means the reader did
not answer) and returns ``{case_id: result}``. A case that the rule cannot settle is marked
``needs_adjudication``; no tie is ever broken silently.

- :func:`majority_vote`: the label most readers chose; a tie goes to adjudication.
- :func:`fuse_boxes`: weighted box fusion (Solovyev et al. 2021, ``ensemble-boxes``) keeping the
  fused boxes that enough readers agree on.
- :func:`staple`: STAPLE (Warfield et al. 2004, SimpleITK's ``STAPLEImageFilter``) for binary masks.
- :func:`multilabel_staple`: multi-label STAPLE (SimpleITK's ``MultiLabelSTAPLEImageFilter``).
- :func:`majority_vote_mask`: per-pixel label voting, ties flagged.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np

from . import _inputs as I

__all__ = ["Vote", "majority_vote", "FusedBoxes", "fuse_boxes", "StapleResult", "staple", "LabelStaple",
           "multilabel_staple", "MaskVote", "majority_vote_mask", "needing_adjudication"]


@dataclass(frozen=True)
class Vote:
    """One case's vote. ``label`` is None when the vote did not settle the case."""

    label: object
    votes: dict  # label -> number of readers, most votes first
    n_readers: int

    @property
    def needs_adjudication(self) -> bool:
        return self.label is None


def majority_vote(answers, *, strict: bool = False) -> dict:
    """Case labels by majority vote.

    The label chosen by the most readers wins. When two or more labels share the top count the
    case is a tie: ``label`` is None and the case needs adjudication. With ``strict=True`` the
    winner also needs more than half of the case's readers (3 of 5, 2 of 3, 2 of 2).

    Parameters
    ----------
    answers : mapping ``{case_id: {reader: label}}``; labels are hashable (str, int, bool).

    Returns
    -------
    ``{case_id: Vote}``.
    """
    answers = I.table(answers)
    out = {}
    for case_id, row in answers.items():
        counts = Counter(I.check_label(a, case_id, r) for r, a in row.items())
        ranked = counts.most_common()
        top = ranked[0][1]
        winners = [label for label, n in ranked if n == top]
        decided = len(winners) == 1 and (not strict or 2 * top > len(row))
        out[case_id] = Vote(winners[0] if decided else None, dict(ranked), len(row))
    return out


def needing_adjudication(results: dict) -> list:
    """The case ids of a consensus result that need an adjudicator, in input order."""
    return [case_id for case_id, r in results.items() if r.needs_adjudication]


@dataclass(frozen=True)
class FusedBoxes:
    """One case's fused boxes, ``(x, y, width, height)`` in pixels.

    ``boxes``/``n_readers``: the fused boxes that at least ``min_readers`` readers agreed on, and
    how many readers drew a box in each; ``rejected``/``rejected_n_readers``: the fused boxes
    with too few readers. ``n_readers_total``: the readers who read the case (a reader who drew
    no box counts: they said "nothing here").
    """

    boxes: np.ndarray
    n_readers: np.ndarray
    rejected: np.ndarray
    rejected_n_readers: np.ndarray
    n_readers_total: int
    min_readers: int

    @property
    def needs_adjudication(self) -> bool:
        """A box that some readers drew and too few others confirmed."""
        return len(self.rejected) > 0


def fuse_boxes(boxes, image_sizes, *, min_readers: int | None = None, iou_threshold: float = 0.5) -> dict:
    """Boxes by weighted box fusion, keeping those enough readers agree on.

    Each reader's boxes go to ``ensemble_boxes.weighted_boxes_fusion`` as one "model" with
    confidence 1 and weight 1, in coordinates divided by the image's width and height (the
    package works in [0, 1]). WBF takes the boxes in turn and adds each to the cluster whose
    fused box it overlaps with IoU above ``iou_threshold``, else starts a new cluster; a fused
    box is the mean of its cluster's corners. With ``conf_type="box_and_model_avg"`` and these
    unit confidences, the package's fused score is (distinct readers in the cluster) / (readers
    of the case), which gives the number of agreeing readers exactly: two overlapping boxes
    from one reader count once.

    Fused coordinates are rounded to a thousandth of a pixel (the package computes in float32).

    Parameters
    ----------
    boxes : ``{case_id: {reader: (k, 4) array-like}}``, ``(x, y, width, height)`` in pixels; an
        empty list means the reader saw nothing; ``None`` that the reader did not read the case.
    image_sizes : ``{case_id: (width, height)}`` in pixels.
    min_readers : int, default: more than half of the case's readers.
    iou_threshold : float, the IoU a box needs with a cluster to join it (ensemble-boxes ``iou_thr``).

    Returns
    -------
    ``{case_id: FusedBoxes}``.
    """
    from ensemble_boxes import weighted_boxes_fusion

    boxes = I.table(boxes, "boxes")
    if not 0 <= iou_threshold < 1:
        raise ValueError(f"iou_threshold must be in [0, 1), got {iou_threshold}")
    if min_readers is not None and (int(min_readers) != min_readers or min_readers < 1):
        raise ValueError(f"min_readers must be a positive integer, got {min_readers}")
    out = {}
    for case_id, row in boxes.items():
        if case_id not in image_sizes:
            raise ValueError(f"{I.where(case_id)}: no image size given for this case")
        width, height = _image_size(image_sizes[case_id], case_id)
        readers = list(row)
        boxes_list, scores_list, labels_list = [], [], []
        for reader in readers:
            arr = I.boxes_array(row[reader], case_id, reader)
            x1, y1 = arr[:, 0], arr[:, 1]
            x2, y2 = x1 + arr[:, 2], y1 + arr[:, 3]
            if (x1 < 0).any() or (y1 < 0).any() or (x2 > width).any() or (y2 > height).any():
                raise ValueError(f"{I.where(case_id, reader)}: a box lies outside the "
                                 f"{width:g}×{height:g} image")
            boxes_list.append(np.c_[x1 / width, y1 / height, x2 / width, y2 / height])
            scores_list.append(np.ones(len(arr)))
            labels_list.append(np.zeros(len(arr)))
        n_total = len(readers)
        need = n_total // 2 + 1 if min_readers is None else int(min_readers)
        fused, scores, _ = weighted_boxes_fusion(boxes_list, scores_list, labels_list, iou_thr=iou_threshold,
                                                 skip_box_thr=0.0, conf_type="box_and_model_avg")
        agreeing = np.rint(np.asarray(scores, dtype=np.float64) * n_total).astype(np.int64)
        pixels = np.asarray(fused, dtype=np.float64).reshape(-1, 4) * [width, height, width, height]
        # ensemble-boxes averages in float32 (about 1e-4 px at 4000 px): keep a thousandth of a pixel
        xywh = np.round(np.c_[pixels[:, :2], pixels[:, 2:] - pixels[:, :2]], 3)
        order = np.argsort(-agreeing, kind="stable")
        xywh, agreeing = xywh[order], agreeing[order]
        keep = agreeing >= need
        out[case_id] = FusedBoxes(xywh[keep], agreeing[keep], xywh[~keep], agreeing[~keep], n_total, need)
    return out


def _image_size(size, case_id):
    try:
        width, height = (float(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"{I.where(case_id)}: the image size must be (width, height)") from None
    if not (width > 0 and height > 0 and math.isfinite(width) and math.isfinite(height)):
        raise ValueError(f"{I.where(case_id)}: the image size must be two positive numbers")
    return width, height


@dataclass(frozen=True)
class StapleResult:
    """STAPLE's estimate for one case.

    ``probability``: the posterior probability that each pixel is foreground; ``mask``:
    ``probability >= threshold``; ``sensitivity``/``specificity``: each reader's, as STAPLE
    estimated them (NaN where undefined: no foreground or no background anywhere).
    """

    mask: np.ndarray
    probability: np.ndarray
    sensitivity: dict
    specificity: dict
    iterations: int


def staple(masks, *, threshold: float = 0.5, max_iterations: int = 1000) -> dict:
    """Binary masks by STAPLE (Simultaneous Truth And Performance Level Estimation).

    Runs SimpleITK's ``STAPLEImageFilter`` (foreground value 1), which alternates between the
    probability that each pixel is foreground (E-step) and each reader's sensitivity p and
    specificity q (M-step), starting from p = q = 0.99999 and a prior equal to the mean
    foreground fraction of the readers, until the estimate stops changing.

    When no reader marked any pixel (or every reader marked every pixel) STAPLE is undefined
    (SimpleITK returns NaN): the consensus is then that empty (or full) mask, with
    probability 0 (or 1) and NaN sensitivities or specificities.

    Parameters
    ----------
    masks : ``{case_id: {reader: 2-D or 3-D array of 0/1 or bool}}``, one shape per case.
    threshold : float, the posterior probability from which a pixel is foreground.
    max_iterations : int, an upper bound on the EM iterations.

    Returns
    -------
    ``{case_id: StapleResult}``.
    """
    import SimpleITK as sitk

    masks = I.table(masks, "masks")
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must be in (0, 1), got {threshold}")
    out = {}
    for case_id, row in masks.items():
        arrays = {r: I.binary_mask(m, case_id, r) for r, m in row.items()}
        I.same_shapes(arrays, case_id)
        readers = list(arrays)
        stack = np.stack([arrays[r] for r in readers])
        if not stack.any() or stack.all():
            full = bool(stack.all())
            nan = dict.fromkeys(readers, math.nan)
            one = dict.fromkeys(readers, 1.0)
            out[case_id] = StapleResult(stack[0].copy(), stack[0].astype(np.float64), one if full else nan,
                                        nan if full else one, 0)
            continue
        f = sitk.STAPLEImageFilter()
        f.SetForegroundValue(1)
        f.SetMaximumIterations(int(max_iterations))
        probability = sitk.GetArrayFromImage(f.Execute([sitk.GetImageFromArray(a.astype(np.uint8)) for a in stack]))
        out[case_id] = StapleResult(probability >= threshold, probability,
                                    dict(zip(readers, f.GetSensitivity())), dict(zip(readers, f.GetSpecificity())),
                                    int(f.GetElapsedIterations()))
    return out


@dataclass(frozen=True)
class LabelStaple:
    """Multi-label STAPLE for one case: ``mask`` holds the estimated label (0 where undecided);
    ``undecided`` marks the pixels whose top posterior probability is shared by two labels."""

    mask: np.ndarray
    undecided: np.ndarray

    @property
    def needs_adjudication(self) -> bool:
        return bool(self.undecided.any())


def multilabel_staple(masks, *, max_iterations: int | None = None) -> dict:
    """Label masks by multi-label STAPLE (Rohlfing et al. 2004), SimpleITK's
    ``MultiLabelSTAPLEImageFilter``.

    Each reader is modelled by a confusion matrix (the probability of answering label k where the
    truth is label c), estimated by expectation–maximisation together with the label of each
    pixel, starting from a majority vote. A pixel whose top probability is shared by two labels
    is undecided: 0 in ``mask`` and marked in ``undecided``. For the readers' estimated
    sensitivities and specificities of one structure, use :func:`staple` on that label.

    Parameters
    ----------
    masks : ``{case_id: {reader: 2-D or 3-D array of non-negative integer labels}}``.
    max_iterations : int, default SimpleITK's (until the estimate stops changing).

    Returns
    -------
    ``{case_id: LabelStaple}``.
    """
    import SimpleITK as sitk

    masks = I.table(masks, "masks")
    out = {}
    for case_id, row in masks.items():
        arrays = {r: I.label_mask(m, case_id, r) for r, m in row.items()}
        I.same_shapes(arrays, case_id)
        top = max(int(a.max(initial=0)) for a in arrays.values())
        dtype = np.uint8 if top < 255 else np.uint16 if top < 65535 else np.uint32
        f = sitk.MultiLabelSTAPLEImageFilter()
        f.SetLabelForUndecidedPixels(top + 1)
        if max_iterations is not None:
            f.SetMaximumNumberOfIterations(int(max_iterations))
        labels = sitk.GetArrayFromImage(f.Execute([sitk.GetImageFromArray(a.astype(dtype)) for a in arrays.values()]))
        undecided = labels == top + 1
        out[case_id] = LabelStaple(np.where(undecided, 0, labels).astype(np.int64), undecided)
    return out


@dataclass(frozen=True)
class MaskVote:
    """Per-pixel vote for one case: ``mask`` holds the winning label (0 where tied); ``tied``
    marks the pixels where two or more labels share the top count; ``votes`` is the number of
    readers who chose the winning label."""

    mask: np.ndarray
    tied: np.ndarray
    votes: np.ndarray

    @property
    def needs_adjudication(self) -> bool:
        return bool(self.tied.any())


def majority_vote_mask(masks) -> dict:
    """Masks by per-pixel majority vote over labels (background 0 is a label too).

    Each pixel takes the label most readers gave it; with two readers disagreeing, or any tie for
    the top count, the pixel is left 0 and marked in ``tied``. For binary masks this is "more
    than half of the readers marked it". The same rule as SimpleITK's ``LabelVotingImageFilter``,
    whose undecided label marks the same pixels.

    Parameters
    ----------
    masks : ``{case_id: {reader: 2-D or 3-D array of non-negative integer labels}}``.

    Returns
    -------
    ``{case_id: MaskVote}``.
    """
    masks = I.table(masks, "masks")
    out = {}
    for case_id, row in masks.items():
        arrays = {r: I.label_mask(m, case_id, r) for r, m in row.items()}
        I.same_shapes(arrays, case_id)
        stack = np.stack(list(arrays.values()))
        labels = np.unique(stack)
        counts = np.stack([(stack == label).sum(axis=0) for label in labels])
        top = counts.max(axis=0)
        tied = (counts == top).sum(axis=0) > 1
        winner = labels[counts.argmax(axis=0)]
        out[case_id] = MaskVote(np.where(tied, 0, winner), tied, top)
    return out
