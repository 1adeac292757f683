"""Helpers shared by the task modules."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..problems import ProblemLog
from ..readers import DEFAULT_MAX_BYTES, DEFAULT_MAX_LINE_BYTES

#: The options every CSV task adds to its own, and their (type, help).
CSV_OPTIONS = {"max_bytes": DEFAULT_MAX_BYTES, "max_line_bytes": DEFAULT_MAX_LINE_BYTES}
CSV_HELP = {"max_bytes": ("int", "Size limit of a predictions CSV in bytes."),
            "max_line_bytes": ("int", "Length limit of one CSV line in bytes.")}


def resolve_options(options, defaults: dict, task: str) -> dict:
    """Merge ``options`` into ``defaults``; an unknown key is a ValueError naming it."""
    merged = dict(defaults)
    for key, value in (options or {}).items():
        if key not in merged:
            raise ValueError(f"unknown option {key!r} for task {task!r}; known: {', '.join(sorted(merged))}")
        merged[key] = value
    return merged


def label_of(path, name=None) -> str:
    """What messages call a file: the display ``name`` when given, never a server path."""
    return name or Path(path).name


def truth_log(path, name=None) -> ProblemLog:
    return ProblemLog(f"truth {label_of(path, name)}")


def clean(value):
    """Turn numpy scalars and arrays into plain Python values (non-finite floats stay floats:
    ``evaluator.api`` turns them into null with a note)."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return [clean(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value)
    return value


def ids_from(case_ids):
    ids = [str(c) for c in case_ids]
    if len(set(ids)) != len(ids):
        raise ValueError("case_ids contains duplicates")
    return ids


def subset_rows(ids, case_ids):
    """Row numbers (into ``ids``, in truth order) of the cases in ``case_ids``; all when None.

    A case id that the truth does not have is a ValueError (counted, not quoted).
    """
    if case_ids is None:
        return np.arange(len(ids))
    wanted = set(ids_from(case_ids))
    if not wanted:
        raise ValueError("case_ids is empty: there is nothing to score")
    unknown = len(wanted - set(ids))
    if unknown:
        raise ValueError(f"case_ids names {unknown} case{'s' if unknown != 1 else ''} that the truth does not have")
    return np.fromiter((i for i, c in enumerate(ids) if c in wanted), dtype=np.int64)


def case_facts(task, ids, *, header=None, labels=None, strata=None, masks=None) -> dict:
    """The facts :func:`evaluator.describe_truth` returns (JSON-safe)."""
    return {"task": task, "case_ids": list(ids), "predictions_header": header, "labels": labels,
            "strata": strata, "masks": masks}


def quartile_bins(values) -> list[str]:
    """"q1".."q4": the quartile of the truth values each value falls in (ties share a bin)."""
    values = np.asarray(values, dtype=np.float64)
    edges = np.quantile(values, [0.25, 0.5, 0.75])
    return [f"q{int(b) + 1}" for b in np.searchsorted(edges, values, side="left")]
