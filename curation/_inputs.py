"""Checks shared by every function: the ``{case_id: {reader: answer}}`` table and its values.

Every problem raises ``ValueError`` naming the case and the reader it was found at. Messages
quote case ids and reader names (pseudonymous UIDs and user names), never an answer's content.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np


def where(case_id=None, reader=None) -> str:
    parts = []
    if case_id is not None:
        parts.append(f"case {case_id!r}")
    if reader is not None:
        parts.append(f"reader {reader!r}")
    return ", ".join(parts) or "input"


def table(answers, what="answers", *, allow_empty_cases=False) -> dict:
    """Return ``{case_id: {reader: answer}}`` without the ``None`` answers (None means unanswered).

    Raises ValueError when ``answers`` is not a mapping of mappings, or (unless
    ``allow_empty_cases``) when a case has no answer at all.
    """
    if not isinstance(answers, Mapping):
        raise ValueError(f"{what} must be a mapping {{case_id: {{reader: answer}}}}, "
                         f"got {type(answers).__name__}")
    out = {}
    for case_id, by_reader in answers.items():
        if not isinstance(by_reader, Mapping):
            raise ValueError(f"{what}, {where(case_id)}: expected a mapping {{reader: answer}}, "
                             f"got {type(by_reader).__name__}")
        row = {reader: a for reader, a in by_reader.items() if a is not None}
        if not row and not allow_empty_cases:
            raise ValueError(f"{what}, {where(case_id)}: no reader answered this case")
        out[case_id] = row
    return out


def readers_of(answers: dict) -> list:
    """Readers in the order they first appear."""
    return list(dict.fromkeys(r for row in answers.values() for r in row))


def check_label(value, case_id, reader):
    """A categorical answer must be hashable and not NaN."""
    try:
        hash(value)
    except TypeError:
        raise ValueError(f"{where(case_id, reader)}: a label must be a single hashable value "
                         f"(str, int, bool), got {type(value).__name__}") from None
    if isinstance(value, float) and math.isnan(value):
        raise ValueError(f"{where(case_id, reader)}: the answer is NaN (use None for no answer)")
    return value


def category_index(tables: list, categories=None, *, ordered: bool) -> dict:
    """Map each category to its position: ``categories`` as given, else the sorted answers of
    every table in ``tables``.

    An answer outside ``categories`` raises ValueError naming the case and reader.
    """
    if categories is not None:
        cats = list(categories)
        if len(set(cats)) != len(cats):
            raise ValueError("categories must not repeat a value")
        index = {c: i for i, c in enumerate(cats)}
        for case_id, row in _cells(tables):
            for reader, a in row.items():
                check_label(a, case_id, reader)
                if a not in index:
                    raise ValueError(f"{where(case_id, reader)}: the answer is not one of the "
                                     f"{len(cats)} categories given")
        return index
    seen = {}
    for case_id, row in _cells(tables):
        for reader, a in row.items():
            seen.setdefault(check_label(a, case_id, reader), (case_id, reader))
    try:
        cats = sorted(seen)
    except TypeError:
        if ordered:
            raise ValueError("answers of different types cannot be ordered: pass categories "
                             "in their order") from None
        cats = list(seen)
    return {c: i for i, c in enumerate(cats)}


def _cells(tables):
    for answers in tables:
        yield from answers.items()


def number(value, case_id, reader) -> float:
    """An interval or ratio answer: a finite real number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{where(case_id, reader)}: expected a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{where(case_id, reader)}: the answer is not a finite number")
    return float(value)


def binary_mask(mask, case_id, reader) -> np.ndarray:
    """A 2-D or 3-D mask of 0/1 (or bool) values as a bool array."""
    arr = np.asarray(mask)
    if arr.ndim not in (2, 3):
        raise ValueError(f"{where(case_id, reader)}: a mask must be 2-D or 3-D, got shape {arr.shape}")
    if arr.dtype != bool:
        if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
            raise ValueError(f"{where(case_id, reader)}: a mask must hold numbers, got dtype {arr.dtype}")
        if not np.isin(arr, (0, 1)).all():
            raise ValueError(f"{where(case_id, reader)}: a binary mask must hold only 0 and 1")
        arr = arr.astype(bool)
    return arr


def label_mask(mask, case_id, reader) -> np.ndarray:
    """A 2-D or 3-D mask of non-negative integer labels as an int64 array."""
    arr = np.asarray(mask)
    if arr.ndim not in (2, 3):
        raise ValueError(f"{where(case_id, reader)}: a mask must be 2-D or 3-D, got shape {arr.shape}")
    if arr.dtype == bool:
        return arr.astype(np.int64)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all() or not (arr == np.round(arr)).all():
            raise ValueError(f"{where(case_id, reader)}: mask labels must be integers")
    elif not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{where(case_id, reader)}: a mask must hold integer labels, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if arr.size and arr.min() < 0:
        raise ValueError(f"{where(case_id, reader)}: mask labels must be non-negative")
    return arr


def same_shapes(masks: dict, case_id):
    """All readers' masks of one case must have one shape."""
    shapes = {r: m.shape for r, m in masks.items()}
    first_reader, first = next(iter(shapes.items()))
    for reader, shape in shapes.items():
        if shape != first:
            raise ValueError(f"{where(case_id, reader)}: mask shape {shape} differs from reader "
                             f"{first_reader!r}'s {first}")


def boxes_array(boxes, case_id, reader) -> np.ndarray:
    """Boxes ``(x, y, width, height)`` in pixels as a (k, 4) float array; width and height > 0."""
    try:
        arr = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{where(case_id, reader)}: boxes must be numbers (x, y, width, height)") from None
    if arr.size == 0:
        return np.zeros((0, 4))
    if arr.ndim == 1 and arr.shape[0] == 4:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"{where(case_id, reader)}: boxes must have shape (k, 4) "
                         f"(x, y, width, height), got {arr.shape}")
    for bad, problem in ((~np.isfinite(arr).all(axis=1), "holds NaN or inf"),
                         ((arr[:, 2:] < 0).any(axis=1), "has a negative width or height"),
                         ((arr[:, 2:] == 0).any(axis=1), "has zero width or height")):
        if bad.any():
            raise ValueError(f"{where(case_id, reader)}: box {int(np.argmax(bad))} {problem}")
    return arr
