"""Segmentation: masks, 2D (``<case_id>.png``) or 3D (``<case_id>.nii.gz``), in a .zip or a folder.

Formats
-------
Truth and predictions are each a ``.zip`` or a folder holding one mask per case, named
``<case_id>.png`` (2D, single channel, spacing from the ``spacing`` option, default 1 mm) or
``<case_id>.nii.gz`` (3D, spacing in mm from the NIfTI header). Values are integer labels: 0
is background, 1 the structure; labels above 1 make a multi-class task, scored per label and
averaged ("dice/2", "dice"). A prediction must have the truth's size and spacing and only the
truth's labels. A ``.zip`` is read in place (see :mod:`evaluator.masks` for what is refused:
links, unsafe paths, duplicate base names, corrupt entries, more entries or bytes than the
truth needs); entries are flattened to their base names; folders, ``__MACOSX/`` and hidden
files (starting with ".") are ignored. A missing case scores Dice, IoU, NSD 0, HD95 the image
diagonal, and counts in ``missing_cases``.

Options
-------
nsd_tolerance (1.0): NSD tolerance in mm.
labels (None): the labels to score (default: every non-zero label found in the truth).
spacing (None): pixel spacing in mm for PNG masks (default 1 × 1).
spacing_rtol (1e-3): relative tolerance when comparing a prediction's spacing to the truth's.
max_mask_voxels (2**28): the largest mask read when the truth's shapes are not known (the
    truth itself, or a participant's check with case ids only).
"""

from __future__ import annotations

import numpy as np

from ..masks import DEFAULT_MAX_VOXELS, MAX_TRUTH_CASES, Limits, MaskHeader, open_masks, read_header, read_mask
from ..problems import ProblemLog
from ..segmentation import case_metrics, image_diagonal
from ._common import case_facts, clean, ids_from, label_of, resolve_options, subset_rows

DEFAULTS = {"nsd_tolerance": 1.0, "labels": None, "spacing": None, "spacing_rtol": 1e-3,
            "max_mask_voxels": DEFAULT_MAX_VOXELS}
HELP = {"nsd_tolerance": ("float", "NSD tolerance in mm."),
        "labels": ("list", "The labels to score (default: every non-zero label of the truth)."),
        "spacing": ("list", "Pixel spacing in mm of PNG masks (default 1 × 1)."),
        "spacing_rtol": ("float", "Relative tolerance when comparing a prediction's spacing to the truth's."),
        "max_mask_voxels": ("int", "The largest mask read when the truth's shapes are not known.")}
NAMES = ("dice", "iou", "hd95", "nsd", "volume_difference")


def _ext_of(shape):
    return ".png" if len(shape) == 2 else ".nii.gz"


class _Truth:
    """The truth's masks, open, with their headers, labels and the facts they give."""

    def __init__(self, path, options, name=None):
        self.log = ProblemLog(f"truth {label_of(path, name)}")
        self.masks = open_masks(path, self.log, name=self.log.file,
                                limits=Limits(max_masks=MAX_TRUTH_CASES, max_records=2 * MAX_TRUTH_CASES + 16))
        try:
            self._read(options)
        except BaseException:
            self.masks.close()
            raise

    def _read(self, options):
        log, files = self.log, self.masks.files
        log.raise_if_any(ValueError)
        if not files:
            raise ValueError(f"{log.file} holds no masks")
        exts = {f.ext for f in files.values()}
        if len(exts) > 1:
            raise ValueError(f"{log.file} mixes {' and '.join(sorted(exts))} masks")
        self.ext = exts.pop()
        self.headers, self.strata, found = {}, {}, set()
        for cid in sorted(files):
            f = files[cid]
            try:
                header = read_header(f, png_spacing=options["spacing"])
                if header.n_voxels > int(options["max_mask_voxels"]):
                    raise ValueError(f"has {header.n_voxels:,} voxels, more than the "
                                     f"{int(options['max_mask_voxels']):,} allowed (option max_mask_voxels)")
                arr = read_mask(f, header)
            except ValueError as exc:
                raise ValueError(f"{f.where}: {exc}") from None
            self.headers[cid] = header
            values = np.unique(arr)
            found.update(int(v) for v in values if v != 0)
            self.strata[cid] = "nonempty" if values.size and values[-1] != 0 else "empty"
        self.labels = sorted(found or {1})

    def read(self, cid):
        f = self.masks.files[cid]
        return read_mask(f, self.headers[cid])

    def facts(self):
        masks = {cid: {"shape": list(h.shape), "dtype": h.dtype, "spacing": list(h.spacing)}
                 for cid, h in self.headers.items()}
        return case_facts("segmentation", list(self.headers), labels=self.labels, strata=dict(self.strata),
                          masks=masks)

    def close(self):
        self.masks.close()


def describe(truth, options, *, strict=True, name=None):
    options = resolve_options(options, DEFAULTS, "segmentation")
    t = _Truth(truth, options, name)
    t.close()
    return t.facts()


def _limits(facts):
    masks = facts.get("masks")
    if not masks:
        return Limits(max_masks=len(facts["case_ids"]) + 16, max_records=2 * len(facts["case_ids"]) + 48)
    needed = sum(int(np.prod(m["shape"])) * np.dtype(m["dtype"]).itemsize for m in masks.values())
    return Limits.from_truth(len(masks), needed)


def _scored_labels(facts, options):
    if options["labels"] is not None:
        return sorted(int(v) for v in options["labels"])
    return facts.get("labels")


class _Checker:
    """Reads and checks one prediction against the truth's facts: header first, pixels after."""

    def __init__(self, facts, options, log):
        self.masks = facts.get("masks") or {}
        self.labels = _scored_labels(facts, options)
        self.options = options
        self.log = log

    def read(self, f):
        """The prediction's labels, or None after logging why it cannot be used."""
        log, options = self.log, self.options
        try:
            header = read_header(f, png_spacing=options["spacing"])
        except ValueError as exc:
            log.add(str(exc), file=f.where, case_id=f.case_id)
            return None
        truth = self.masks.get(f.case_id)
        if truth is None:
            limit = int(options["max_mask_voxels"])
            if header.n_voxels > limit:
                log.add(f"has {header.n_voxels:,} voxels, more than the {limit:,} allowed", file=f.where,
                        case_id=f.case_id)
                return None
        elif not self._like_truth(f, header, truth):
            return None
        try:
            arr = read_mask(f, header)
        except ValueError as exc:
            log.add(str(exc), file=f.where, case_id=f.case_id)
            return None
        if self.labels is not None:
            extra = sorted(set(int(v) for v in np.unique(arr)) - set(self.labels) - {0})
            if extra:
                log.add(f"labels {extra} are not among the truth's labels {self.labels}", file=f.where,
                        case_id=f.case_id)
                return None
        return arr

    def _like_truth(self, f, header: MaskHeader, truth):
        shape, tsp = tuple(truth["shape"]), tuple(truth["spacing"])
        if header.shape != shape:
            self.log.add(f"mask size {header.shape} differs from the truth's {shape}", file=f.where,
                         case_id=f.case_id)
            return False
        sp = header.spacing
        if len(sp) != len(tsp) or not np.allclose(sp, tsp, rtol=float(self.options["spacing_rtol"]), atol=0):
            self.log.add(f"spacing {tuple(round(s, 6) for s in sp)} mm differs from the truth's "
                         f"{tuple(round(s, 6) for s in tsp)} mm", file=f.where, case_id=f.case_id)
            return False
        return True


def _open_predictions(predictions, facts, log, name):
    masks = facts.get("masks")
    ext = _ext_of(next(iter(masks.values()))["shape"]) if masks else None
    found = open_masks(predictions, log, name=name, ext=ext, limits=_limits(facts))
    known = set(facts["case_ids"])
    for cid, f in list(found.files.items()):
        if cid not in known:
            log.add(f"unknown case id {cid!r}", file=f.where, case_id=cid)
            del found.files[cid]
    return found


def validate(predictions, facts, options=None, name=None):
    options = resolve_options(options, DEFAULTS, "segmentation")
    name = label_of(predictions, name)
    log = ProblemLog(name)
    ids_from(facts["case_ids"])
    with _open_predictions(predictions, facts, log, name) as found:
        checker = _Checker(facts, options, log)
        for f in found.files.values():
            checker.read(f)
    log.raise_if_any()


def score(truth, predictions, options=None, case_ids=None, name=None):
    options = resolve_options(options, DEFAULTS, "segmentation")
    tol = float(options["nsd_tolerance"])
    name = label_of(predictions, name)
    t = _Truth(truth, options)
    try:
        facts = t.facts()
        labels = _scored_labels(facts, options)
        ids = facts["case_ids"]
        keep = [ids[i] for i in subset_rows(ids, case_ids)]
        log = ProblemLog(name)
        with _open_predictions(predictions, facts, log, name) as found:
            per_case = _score_cases(t, keep, found.files, _Checker(facts, options, log), labels, tol)
        log.raise_if_any()
    finally:
        t.close()
    metrics = {}
    keys = [k for k in per_case[0] if k not in ("case_id", "missing")]
    for k in keys:
        metrics[k] = clean(float(np.mean([r[k] for r in per_case])))
    return {"task": "segmentation", "n_cases": len(keep), "missing_cases": sum(r["missing"] for r in per_case),
            "metrics": metrics, "per_case": per_case,
            "_intervals": {"replicate": dict}}  # every metric is a per-case mean


def _score_cases(truth, ids, pred_files, checker, labels, tol):
    """One pass: each prediction is read once, checked, then scored; after the first problem the
    rest are only checked."""
    per_case = []
    for cid in ids:
        pred = None
        if cid in pred_files:
            pred = checker.read(pred_files[cid])
            if pred is None:
                continue
        if checker.log:
            continue
        t = truth.read(cid)
        spacing = truth.headers[cid].spacing
        row = {"case_id": cid, "missing": pred is None}
        values = {}
        for lab in labels:
            tm = t == lab
            if pred is not None:
                values[lab] = case_metrics(tm, pred == lab, spacing, tolerance=tol)
            else:
                vt = float(tm.sum()) * float(np.prod(spacing))
                values[lab] = {"dice": 0.0, "iou": 0.0, "hd95": image_diagonal(t.shape, spacing), "nsd": 0.0,
                               "volume_difference": max(vt, t.size * float(np.prod(spacing)) - vt)}
        for metric in NAMES:
            if len(labels) > 1:
                for lab in labels:
                    row[f"{metric}/{lab}"] = clean(values[lab][metric])
            row[metric] = clean(float(np.mean([values[lab][metric] for lab in labels])))
        per_case.append(row)
    return per_case

