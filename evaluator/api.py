"""The two entry points the site and the CLI call: :func:`score` and :func:`validate`."""

from __future__ import annotations

import importlib
from pathlib import Path

__all__ = ["TASKS", "predictions_header", "score", "truth_case_ids", "validate"]

TASKS = ("classification", "regression", "detection", "segmentation")


def _module(task):
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    return importlib.import_module(f"evaluator.tasks.{task}")


def _path(p, what):
    if p is None:
        raise ValueError(f"{what} is required")
    path = Path(p)
    if not path.exists():
        raise ValueError(f"{what} {str(path)!r} does not exist")
    return path


def score(task, truth, predictions, options=None) -> dict:
    """Score a submission.

    Parameters
    ----------
    task : one of :data:`TASKS`
    truth, predictions : str or Path
        Files for the CSV tasks, folders of masks for segmentation (see ``evaluator.tasks.*``
        for each format).
    options : dict, optional
        Task options (threshold, value_range, nsd_tolerance, ...); an unknown key is an error.

    Returns
    -------
    dict
        ``{"task", "n_cases", "missing_cases", "metrics": {name: value}, "per_case": [...]}``,
        plain JSON-serialisable data (undefined values are ``None``).

    Raises
    ------
    SubmissionInvalid
        The predictions fail validation (the same checks as :func:`validate`).
    ValueError
        The truth or the options are bad.
    """
    mod = _module(task)
    truth = _path(truth, "truth")
    if predictions is None or not Path(predictions).exists():
        from .problems import Problem, SubmissionInvalid

        raise SubmissionInvalid([Problem(Path(str(predictions)).name, message="does not exist")])
    return mod.score(truth, Path(predictions), options)


def validate(task, predictions, *, truth=None, case_ids=None, options=None) -> None:
    """Check a submission as the site does; raise :class:`SubmissionInvalid` listing every problem.

    Give either ``truth`` (a path) or ``case_ids`` (an iterable of str: the participant's copy
    of the check). Missing cases are not a problem: they are scored as failures.
    """
    mod = _module(task)
    if (truth is None) == (case_ids is None):
        raise ValueError("give exactly one of truth and case_ids")
    if truth is not None:
        truth = _path(truth, "truth")
    if predictions is None or not Path(predictions).exists():
        from .problems import Problem, SubmissionInvalid

        raise SubmissionInvalid([Problem(Path(str(predictions)).name, message="does not exist")])
    mod.validate(Path(predictions), truth=truth, case_ids=case_ids, options=options)


def truth_case_ids(task, truth) -> list[str]:
    """Check an organizer's ground truth and return its case ids, in file order.

    Raises ValueError naming the problem: a malformed file, or (classification) a label with
    only one class, for which the AUC is undefined.
    """
    mod = _module(task)
    truth = _path(truth, "truth")
    if task == "classification":
        labels, ids, Y = mod.read_truth(truth)
        for j, label in enumerate(labels):
            classes = set(Y[:, j].tolist())
            if len(classes) < 2:
                raise ValueError(
                    f"truth {truth.name}: label {label!r} has only one class (all {int(classes.pop())}); "
                    "a test set needs positive and negative cases, or its AUC is undefined"
                )
        return list(ids)
    if task == "segmentation":
        options = mod.resolve_options(None, mod.DEFAULTS, task)
        files, _ = mod._truth(truth, options)
        mod._truth_info(files, options)  # every mask must be readable
        return list(files)
    return list(mod.read_truth(truth)[0])


def predictions_header(task, truth) -> list[str] | None:
    """The header a predictions CSV must have for this truth; None for segmentation (masks)."""
    mod = _module(task)
    truth = _path(truth, "truth")
    if task == "classification":
        return mod.expected_header(mod.read_truth(truth)[0])
    if task == "regression":
        return list(mod.HEADER)
    if task == "detection":
        return list(mod.PRED_HEADER)
    return None
