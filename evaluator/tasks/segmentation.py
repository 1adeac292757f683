"""Segmentation: folders of masks, 2D (``<case_id>.png``) or 3D (``<case_id>.nii.gz``).

Formats
-------
Truth and predictions are folders holding one mask per case, named ``<case_id>.png`` (2D,
single channel, spacing from the ``spacing`` option, default 1 mm) or ``<case_id>.nii.gz``
(3D, spacing in mm from the NIfTI header). Values are integer labels: 0 is background, 1 the
structure; labels above 1 make a multi-class task, scored per label and averaged ("dice/2",
"dice"). A prediction must have the truth's size and spacing and only the truth's labels.
Hidden files (starting with ".") are ignored. A missing case scores Dice, IoU, NSD 0, HD95 the
image diagonal, and counts in ``missing_cases``.

Options
-------
nsd_tolerance (1.0): NSD tolerance in mm.
labels (None): the labels to score (default: every non-zero label found in the truth).
spacing (None): pixel spacing in mm for PNG masks (default 1 × 1).
spacing_rtol (1e-3): relative tolerance when comparing a prediction's spacing to the truth's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..problems import ProblemLog
from ..segmentation import case_metrics, image_diagonal
from ._common import clean, ids_from, resolve_options

DEFAULTS = {"nsd_tolerance": 1.0, "labels": None, "spacing": None, "spacing_rtol": 1e-3}
EXTENSIONS = (".nii.gz", ".png")
NAMES = ("dice", "iou", "hd95", "nsd", "volume_difference")


def _case_files(folder: Path, log: ProblemLog | None, ext=None):
    """Map case id → path for the mask files in ``folder``; other files are problems."""
    if not folder.is_dir():
        if log is None:
            raise ValueError(f"truth {folder} is not a folder")
        log.add("is not a folder of masks")
        return {}
    files = {}
    for f in sorted(folder.iterdir()):
        if f.name.startswith("."):
            continue
        found = next((e for e in EXTENSIONS if f.name.endswith(e)), None)
        if f.is_dir() or found is None or (ext is not None and found != ext):
            want = ext or " or ".join(EXTENSIONS)
            msg = f"unexpected file: masks are named <case_id>{want}"
            if log is None:
                raise ValueError(f"truth {folder.name}/{f.name}: {msg}")
            log.add(msg, file=f"{folder.name}/{f.name}")
            continue
        files[f.name[: -len(found)]] = f
    return files


def read_mask(path: Path, options):
    """Return ``(labels array of int64, spacing)``; raise ValueError with the reason when unreadable."""
    if path.name.endswith(".png"):
        from PIL import Image

        try:
            with Image.open(path) as im:
                if im.mode not in ("1", "L", "I", "I;16", "P"):
                    raise ValueError(f"must be a single-channel image, found mode {im.mode}")
                arr = np.asarray(im)
        except (OSError, SyntaxError) as exc:
            raise ValueError(f"is not a readable PNG image ({exc})") from None
        spacing = tuple(float(s) for s in (options["spacing"] or (1.0, 1.0)))
    else:
        import nibabel as nib

        try:
            img = nib.load(str(path))
            arr = np.asanyarray(img.dataobj)
        except Exception as exc:  # nibabel raises many kinds for a corrupt file
            raise ValueError(f"is not a readable NIfTI image ({type(exc).__name__}: {exc})") from None
        arr = np.squeeze(arr) if arr.ndim > 3 else arr
        if arr.ndim != 3:
            raise ValueError(f"must be a 3-D volume, found shape {arr.shape}")
        spacing = tuple(float(z) for z in img.header.get_zooms()[:3])
    if arr.dtype == bool:
        return arr.astype(np.int64), spacing
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError("mask values must be integer labels (found non-integer values)")
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise ValueError(f"mask labels must be non-negative, found {arr.min()}")
    return arr, spacing


def _truth(folder, options):
    folder = Path(folder)
    files = _case_files(folder, None)
    if not files:
        raise ValueError(f"truth {folder} holds no masks")
    exts = {next(e for e in EXTENSIONS if f.name.endswith(e)) for f in files.values()}
    if len(exts) > 1:
        raise ValueError(f"truth {folder} mixes {' and '.join(sorted(exts))} masks")
    return files, exts.pop()


def _truth_info(files, options):
    """Shape, spacing and labels of every truth case (reads each truth mask once)."""
    info, labels = {}, set()
    for cid, f in files.items():
        try:
            arr, spacing = read_mask(f, options)
        except ValueError as exc:
            raise ValueError(f"truth {f.name}: {exc}") from None
        info[cid] = (arr.shape, spacing)
        labels.update(int(v) for v in np.unique(arr) if v != 0)
    if options["labels"] is not None:
        labels = {int(v) for v in options["labels"]}
    return info, sorted(labels or {1})


def _check_prediction(cid, f, arr, spacing, info, labels, options, log):
    name = f"{f.parent.name}/{f.name}"
    shape, tsp = info[cid]
    ok = True
    if arr.shape != shape:
        log.add(f"mask size {arr.shape} differs from the truth's {shape}", file=name, case_id=cid)
        ok = False
    if len(spacing) != len(tsp) or not np.allclose(spacing, tsp, rtol=float(options["spacing_rtol"]), atol=0):
        log.add(f"spacing {tuple(round(s, 6) for s in spacing)} mm differs from the truth's "
                f"{tuple(round(s, 6) for s in tsp)} mm", file=name, case_id=cid)
        ok = False
    extra = sorted(set(int(v) for v in np.unique(arr)) - set(labels) - {0})
    if extra:
        log.add(f"labels {extra} are not among the truth's labels {labels}", file=name, case_id=cid)
        ok = False
    return ok


def _iter_predictions(folder, ext, ids, info, labels, options, log):
    files = _case_files(Path(folder), log, ext)
    known = set(ids)
    for cid, f in files.items():
        if cid not in known:
            log.add(f"unknown case id {cid!r}", file=f"{f.parent.name}/{f.name}", case_id=cid)
            continue
        try:
            arr, spacing = read_mask(f, options)
        except ValueError as exc:
            log.add(str(exc), file=f"{f.parent.name}/{f.name}", case_id=cid)
            continue
        if info is None or _check_prediction(cid, f, arr, spacing, info, labels, options, log):
            yield cid, arr


def validate(predictions, *, truth=None, case_ids=None, options=None):
    options = resolve_options(options, DEFAULTS, "segmentation")
    log = ProblemLog(Path(predictions).name)
    if truth is not None:
        files, ext = _truth(truth, options)
        info, labels = _truth_info(files, options)
        ids = list(files)
    else:
        ids, ext, info, labels = ids_from(case_ids), None, None, None
    for _ in _iter_predictions(predictions, ext, ids, info, labels, options, log):
        pass
    log.raise_if_any()


def score(truth, predictions, options=None):
    options = resolve_options(options, DEFAULTS, "segmentation")
    tol = float(options["nsd_tolerance"])
    files, ext = _truth(truth, options)
    info, labels = _truth_info(files, options)
    log = ProblemLog(Path(predictions).name)
    pred_files = _case_files(Path(predictions), log, ext)
    for cid, f in pred_files.items():
        if cid not in files:
            log.add(f"unknown case id {cid!r}", file=f"{f.parent.name}/{f.name}", case_id=cid)
    per_case = []
    for cid, f in files.items():  # one pass: each prediction is read once, checked, then scored
        t, spacing = read_mask(f, options)
        pred = None
        if cid in pred_files:
            pf = pred_files[cid]
            try:
                arr, psp = read_mask(pf, options)
            except ValueError as exc:
                log.add(str(exc), file=f"{pf.parent.name}/{pf.name}", case_id=cid)
                continue
            if not _check_prediction(cid, pf, arr, psp, info, labels, options, log):
                continue
            pred = arr
        if log:
            continue  # invalid submission: keep checking, stop scoring
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
        for name in NAMES:
            if len(labels) > 1:
                for lab in labels:
                    row[f"{name}/{lab}"] = clean(values[lab][name])
            row[name] = clean(float(np.mean([values[lab][name] for lab in labels])))
        per_case.append(row)
    log.raise_if_any()
    metrics = {}
    keys = [k for k in per_case[0] if k not in ("case_id", "missing")]
    for k in keys:
        metrics[k] = clean(float(np.mean([r[k] for r in per_case])))
    return {"task": "segmentation", "n_cases": len(files), "missing_cases": sum(r["missing"] for r in per_case),
            "metrics": metrics, "per_case": per_case}
