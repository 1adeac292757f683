"""Mica's evaluator: submission validation, metrics (torch, GPU when present), statistics.

A framework-free library: it never imports Django, Celery or the site.

>>> import evaluator
>>> result = evaluator.score("classification", "truth.csv", "predictions.csv")  # doctest: +SKIP
>>> result["metrics"]["auc"], result["intervals"]["auc"]                         # doctest: +SKIP
>>> evaluator.compare("classification", {"a": result, "b": other}, metric="auc",  # doctest: +SKIP
...                   higher_is_better=True, method="significance")

See ``evaluator.tasks.<task>`` and README.md for each task's file formats and options.
"""

from ._device import pick_device
from .comparison import compare
from .api import TASKS, describe_truth, predictions_header, score, task_options, truth_case_ids, validate
from .problems import Problem, SubmissionInvalid
from .registry import Metric, METRICS, _load
from .splits import split_cases

_load()

__all__ = ["TASKS", "score", "validate", "describe_truth", "truth_case_ids", "predictions_header", "task_options",
           "compare", "split_cases", "SubmissionInvalid", "Problem", "METRICS", "Metric", "pick_device"]
