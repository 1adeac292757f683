"""The entry points the site, the CLI and workers call: one interface for every task.

:func:`describe_truth` checks an organizer's truth once and returns the facts a test set
keeps; :func:`validate` checks a submission against the truth or those facts; :func:`score`
scores it (on all the truth's cases or a split of them); :func:`task_options` lists what each
task can be told.
"""

from __future__ import annotations

import importlib
import math
from collections import Counter
from pathlib import Path

from .problems import Problem, SubmissionInvalid

__all__ = ["TASKS", "describe_truth", "predictions_header", "score", "task_options", "truth_case_ids",
           "validate"]

TASKS = ("classification", "regression", "detection", "segmentation")


def _module(task):
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    return importlib.import_module(f"evaluator.tasks.{task}")


def _truth_path(p):
    if p is None:
        raise ValueError("truth is required")
    path = Path(p)
    if not path.exists():
        raise ValueError(f"truth {path.name!r} does not exist")
    return path


def _predictions_path(p, name):
    if p is None or not Path(p).exists():
        raise SubmissionInvalid([Problem(name or Path(str(p)).name, message="does not exist")])
    return Path(p)


def score(task, truth, predictions, options=None, *, case_ids=None, name=None, groups=None, n_resamples=2000,
          seed=0) -> dict:
    """Score a submission.

    Parameters
    ----------
    task : one of :data:`TASKS`
    truth, predictions : str or Path
        Files for the CSV tasks; for segmentation a ``.zip`` or a folder of masks (see
        ``evaluator.tasks.*`` and the README for each format).
    options : dict, optional
        Task options (:func:`task_options`); an unknown key is an error.
    case_ids : iterable of str, optional
        Score only these truth cases (a public or private split): predictions for the truth's
        other cases are ignored, and ``n_cases``, ``missing_cases`` and ``per_case`` are about
        these cases only. A case id the truth does not have is a ValueError.
    name : str, optional
        The predictions file's display name (the participant's file name), used in every
        problem instead of the path.
    groups : dict, optional
        ``{case_id: patient_id}``: intervals resample whole patients (a cluster bootstrap).
        Every scored case needs one; other keys are ignored.
    n_resamples, seed : int
        The bootstrap of ``intervals``.

    Returns
    -------
    dict
        ``{"task", "n_cases", "missing_cases", "metrics": {name: value}, "intervals": {name:
        {"low", "high", "level", "method", "degenerate"}}, "per_case": [...], "notes": [...]}``,
        JSON-safe: a value that is undefined (NaN) or too large to represent is ``None`` and
        ``notes`` says which and why. ``intervals`` has an entry for every metric with one
        number (see :func:`evaluator.intervals.metric_intervals` and the README).

    Raises
    ------
    SubmissionInvalid
        The predictions fail validation (the same checks as :func:`validate`).
    ValueError
        The truth, ``case_ids`` or the options are bad.
    """
    from .intervals import metric_intervals

    mod = _module(task)
    truth = _truth_path(truth)
    predictions = _predictions_path(predictions, name)
    result = mod.score(truth, predictions, options, case_ids=case_ids, name=name)
    plan = result.pop("_intervals")
    result["intervals"] = metric_intervals(result, plan, groups=groups, n_resamples=n_resamples, seed=seed)
    return _json_safe(result)


def validate(task, predictions, *, truth=None, case_ids=None, truth_info=None, options=None, name=None) -> None:
    """Check a submission as the site does; raise :class:`SubmissionInvalid` listing every problem.

    Give exactly one of ``truth`` (a path: a CSV, or a ``.zip``/folder of masks),
    ``truth_info`` (what :func:`describe_truth` returned for that truth: every check that needs
    the truth runs from it, without reading the truth) or ``case_ids`` (an iterable of str: the
    participant's own check, which cannot compare mask shapes). Missing cases are not a
    problem: they are scored as failures. ``name`` is the display name used in problems.
    """
    mod = _module(task)
    if sum(x is not None for x in (truth, case_ids, truth_info)) != 1:
        raise ValueError("give exactly one of truth, case_ids and truth_info")
    if truth is not None:
        facts = mod.describe(_truth_path(truth), options, strict=False)
    elif truth_info is not None:
        facts = _checked_facts(task, truth_info)
    else:
        from .tasks._common import case_facts, ids_from

        facts = case_facts(task, ids_from(case_ids))
    mod.validate(_predictions_path(predictions, name), facts, options, name)


def _checked_facts(task, info):
    if not isinstance(info, dict) or not isinstance(info.get("case_ids"), list):
        raise ValueError("truth_info must be the dict describe_truth returned")
    if info.get("task") != task:
        raise ValueError(f"truth_info describes a {info.get('task')!r} truth, not {task!r}")
    return info


def describe_truth(task, truth, options=None) -> dict:
    """Check an organizer's truth and return the facts a test set stores with it (JSON-safe).

    Returns ``{"task", "case_ids": [...] (file order; masks: sorted by name),
    "predictions_header": [...] or None, "labels": [...] or None (classification: the label
    names; segmentation: the integer labels found), "strata": {case_id: str},
    "masks": {case_id: {"shape", "dtype", "spacing"}} or None}``. ``strata`` is what
    :func:`evaluator.split_cases` stratifies on: binary classification the label ("0"/"1"),
    multi-label the positive labels joined by "+" ("none" for none), regression the quartile
    of the value ("q1".."q4"), detection "positive"/"negative", segmentation
    "empty"/"nonempty". Pass the dict as ``validate(..., truth_info=...)``.

    Raises ValueError naming the problem: a malformed file or mask, or (classification) a label
    with only one class, for which the AUC is undefined.
    """
    return _module(task).describe(_truth_path(truth), options, strict=True, name=None)


def truth_case_ids(task, truth) -> list[str]:
    """The truth's case ids (``describe_truth(task, truth)["case_ids"]``)."""
    return describe_truth(task, truth)["case_ids"]


def predictions_header(task, truth) -> list[str] | None:
    """The header a predictions CSV must have for this truth; None for segmentation (masks).

    Binary classification also accepts the truth's own header (``case_id,<label>``).
    """
    return _module(task).describe(_truth_path(truth), None, strict=False)["predictions_header"]


def task_options(task) -> dict:
    """The options a task accepts: ``{name: {"default", "type", "help"}}`` (JSON-safe).

    ``type`` is one of "float", "int", "str", "list", "dict"; a default of None means "not set".
    """
    mod = _module(task)
    out = {}
    for key, default in mod.DEFAULTS.items():
        kind, text = mod.HELP[key]
        out[key] = {"default": list(default) if isinstance(default, tuple) else default, "type": kind, "help": text}
    return out


_UNDEFINED = "undefined for these cases (for example a label with one class only, or no positive case)"
_TOO_LARGE = "too large to represent (the predictions are too far from the truth)"


def _json_safe(result):
    """Replace NaN and infinities by None, noting in ``result["notes"]`` what and why."""
    notes = []

    def fix(value, on_bad):
        if isinstance(value, list):
            return [fix(v, on_bad) for v in value]
        if isinstance(value, float) and not math.isfinite(value):
            on_bad(value)
            return None
        return value

    for key, value in result["metrics"].items():
        bad = []
        result["metrics"][key] = fix(value, bad.append)
        if bad:
            why = _UNDEFINED if all(math.isnan(v) for v in bad) else _TOO_LARGE
            notes.append(f"{key}: {why}; reported as null")
    too_large = Counter()  # per-case NaN is a convention (e.g. detection's empty images), not news
    for row in result["per_case"]:
        for key, value in row.items():
            bad = []
            row[key] = fix(value, bad.append)
            too_large[key] += sum(not math.isnan(v) for v in bad)
    for key, n in too_large.items():
        if n:
            notes.append(f"per-case {key}: {n} value{'s' if n != 1 else ''} {_TOO_LARGE}; reported as null")
    result["notes"] = notes
    return result
