"""Mica's evaluator: submission validation, metrics (torch, GPU when present), statistics.

A framework-free library: it never imports Django, Celery or the site.

>>> import evaluator
>>> result = evaluator.score("classification", "truth.csv", "predictions.csv")  # doctest: +SKIP
>>> result["metrics"]["auc"], result["metrics"]["auc_ci"]                        # doctest: +SKIP

See ``evaluator.tasks.<task>`` for each task's file formats and options, and METRICS.md for
the definitions.
"""

from ._device import pick_device
from .api import TASKS, predictions_header, truth_case_ids
from .interim import describe_truth, score, split_cases, task_options, validate
from .problems import Problem, SubmissionInvalid
from .registry import Metric, METRICS, _load

_load()

__all__ = ["TASKS", "score", "validate", "truth_case_ids", "predictions_header", "SubmissionInvalid", "Problem", "METRICS", "Metric", "pick_device"]
