"""A consensus written as a ground truth in the evaluator's formats.

Every function checks all of its input before writing anything, then writes to a temporary
name beside the target and renames it into place, so a failure leaves no half-written truth and
an existing file or folder at ``path`` is never touched (it raises ``FileExistsError``).
"""

from __future__ import annotations

import csv
import math
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from . import _inputs as I

__all__ = ["write_classification_truth", "write_multilabel_truth", "write_regression_truth", "write_detection_truth",
           "write_mask_truth"]

#: A case id that is safe as a file name on every system (the anonymizer's ``2.25.`` UIDs are).
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _new_path(path) -> Path:
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path.name} already exists; choose a new name for a new truth version")
    return path


def write_classification_truth(path, labels, *, positive, column: str = "label") -> Path:
    """Write the binary classification truth ``case_id,<column>`` with 1 where the consensus
    label equals ``positive`` and 0 otherwise.

    ``labels``: ``{case_id: label}``; a case whose label is None (not settled: adjudicate it
    first) raises ValueError naming it.
    """
    path = _new_path(path)
    if not column or column == "case_id" or "," in column:
        raise ValueError(f"the label column must be a name other than case_id, without commas, got {column!r}")
    rows = []
    for case_id, label in labels.items():
        _check_case_id(case_id)
        if label is None:
            raise ValueError(f"{I.where(case_id)}: no consensus label; adjudicate the case first")
        rows.append((case_id, int(I.check_label(label, case_id, None) == positive)))
    if not rows:
        raise ValueError("no cases to write")
    return _write_csv(path, ["case_id", column], rows)


def write_multilabel_truth(path, labels, *, columns) -> Path:
    """Write the multi-label classification truth ``case_id,<column>...``: 1 where the case's
    consensus (a set of labels) holds the column's label, else 0.

    ``labels``: ``{case_id: iterable of labels}``; ``columns``: every label, in column order. A
    case without consensus (None) or a label outside ``columns`` raises ValueError naming the case.
    """
    path = _new_path(path)
    columns = [str(column) for column in columns]
    if len(columns) < 2 or len(set(columns)) != len(columns) or any(c in ("", "case_id") or "," in c for c in columns):
        raise ValueError("give at least two different label columns, none named case_id or holding a comma")
    rows = []
    for case_id, chosen in labels.items():
        _check_case_id(case_id)
        if chosen is None:
            raise ValueError(f"{I.where(case_id)}: no consensus label; adjudicate the case first")
        chosen = {str(label) for label in chosen}
        if chosen - set(columns):
            raise ValueError(f"{I.where(case_id)}: a label that is not one of the columns")
        rows.append((case_id, *(int(column in chosen) for column in columns)))
    if not rows:
        raise ValueError("no cases to write")
    return _write_csv(path, ["case_id", *columns], rows)


def write_regression_truth(path, values) -> Path:
    """Write the regression truth ``case_id,value``; ``values``: ``{case_id: finite number}``
    (None, text or a non-finite number raises ValueError naming the case)."""
    path = _new_path(path)
    rows = []
    for case_id, value in values.items():
        _check_case_id(case_id)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ValueError(f"{I.where(case_id)}: no consensus value, or not a finite number")
        rows.append((case_id, _number(value)))
    if not rows:
        raise ValueError("no cases to write")
    return _write_csv(path, ["case_id", "value"], rows)


def write_detection_truth(path, boxes) -> Path:
    """Write the RSNA pneumonia truth ``patientId,x,y,width,height,Target``.

    ``boxes``: ``{case_id: (k, 4) array-like}``, ``(x, y, width, height)`` in pixels (e.g. each
    case's ``FusedBoxes.boxes``). One row per box with Target 1; a case without boxes gets one row
    with empty coordinates and Target 0, so the evaluator knows the image.
    """
    path = _new_path(path)
    rows = []
    for case_id, case_boxes in boxes.items():
        _check_case_id(case_id)
        arr = I.boxes_array(case_boxes, case_id, None)
        if not len(arr):
            rows.append((case_id, "", "", "", "", 0))
        rows.extend((case_id, *(_number(v) for v in box), 1) for box in arr)
    if not rows:
        raise ValueError("no cases to write")
    return _write_csv(path, ["patientId", "x", "y", "width", "height", "Target"], rows)


def write_mask_truth(folder, masks, *, spacing=None) -> Path:
    """Write one mask per case into a new folder: ``<case_id>.png`` for 2-D masks (8-bit, or 16-bit
    when a label exceeds 255), ``<case_id>.nii.gz`` for 3-D masks (``spacing`` in mm per axis,
    ``{case_id: (sx, sy, sz)}``, default 1 mm; an identity orientation otherwise).

    ``masks``: ``{case_id: array of non-negative integer labels}`` (e.g. ``StapleResult.mask`` or
    ``MaskVote.mask``), 0 background. All masks must have the same number of dimensions, as the
    evaluator refuses a truth that mixes PNG and NIfTI.
    """
    folder = _new_path(folder)
    arrays = {}
    for case_id, mask in masks.items():
        _check_case_id(case_id)
        arrays[case_id] = I.label_mask(mask, case_id, None)
    if not arrays:
        raise ValueError("no cases to write")
    dims = {a.ndim for a in arrays.values()}
    if len(dims) > 1:
        case_id = next(c for c, a in arrays.items() if a.ndim != next(iter(arrays.values())).ndim)
        raise ValueError(f"{I.where(case_id)}: 2-D and 3-D masks cannot share one truth")
    spacing = spacing or {}
    for case_id in spacing:
        if case_id not in arrays:
            raise ValueError(f"{I.where(case_id)}: a spacing for a case without a mask (unknown case)")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for case_id, arr in arrays.items():
            if arr.ndim == 2:
                _write_png(staging / f"{case_id}.png", arr, case_id)
            else:
                _write_nifti(staging / f"{case_id}.nii.gz", arr, spacing.get(case_id), case_id)
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def _write_png(path, arr, case_id):
    from PIL import Image

    top = int(arr.max(initial=0))
    if top > 65535:
        raise ValueError(f"{I.where(case_id)}: label {top} does not fit a 16-bit PNG")
    Image.fromarray(arr.astype(np.uint8 if top <= 255 else np.uint16)).save(path)


def _write_nifti(path, arr, spacing, case_id):
    import nibabel as nib

    zooms = (1.0, 1.0, 1.0) if spacing is None else tuple(float(s) for s in spacing)
    if len(zooms) != 3 or not all(s > 0 and math.isfinite(s) for s in zooms):
        raise ValueError(f"{I.where(case_id)}: spacing must be 3 positive numbers (mm)")
    dtype = np.uint8 if arr.max(initial=0) <= 255 else np.uint16 if arr.max() <= 65535 else np.int32
    image = nib.Nifti1Image(arr.astype(dtype), np.diag([*zooms, 1.0]))
    nib.save(image, str(path))


def _check_case_id(case_id):
    if not isinstance(case_id, str) or not SAFE_NAME.match(case_id):
        raise ValueError(f"{I.where(case_id)}: a case id must be letters, digits, '.', '_' or '-' "
                         "(it names a row and a file)")


def _number(v) -> str:
    return repr(float(v)) if v != int(v) else str(int(v))


def _write_csv(path, header, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(rows)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path
