"""Helpers shared by the task modules."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..problems import ProblemLog
from ..readers import DEFAULT_MAX_BYTES

COMMON_OPTIONS = {"max_bytes": DEFAULT_MAX_BYTES}


def resolve_options(options, defaults: dict, task: str) -> dict:
    """Merge ``options`` into ``defaults``; an unknown key is a ValueError naming it."""
    merged = dict(COMMON_OPTIONS)
    merged.update(defaults)
    for key, value in (options or {}).items():
        if key not in merged:
            raise ValueError(f"unknown option {key!r} for task {task!r}; known: {', '.join(sorted(merged))}")
        merged[key] = value
    return merged


def label_of(path) -> str:
    return Path(path).name


def truth_log(path) -> ProblemLog:
    return ProblemLog(f"truth {label_of(path)}")


def clean(value):
    """Turn numpy scalars/arrays and NaN into JSON-serialisable values (NaN → None)."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return [clean(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return None if not math.isfinite(v) else v
    return value


def ids_from(case_ids):
    ids = [str(c) for c in case_ids]
    if len(set(ids)) != len(ids):
        raise ValueError("case_ids contains duplicates")
    return ids
