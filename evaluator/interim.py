"""INTERIM, replaced when the evaluator's own truth descriptions, splits and subset scoring
land (the site was built against this interface first). CSV tasks only."""

from __future__ import annotations

import csv
import dataclasses
import importlib
import random
import tempfile
from pathlib import Path

from . import api
from .problems import SubmissionInvalid


def describe_truth(task, truth, options=None):
    ids = api.truth_case_ids(task, truth)
    strata = {}
    if task == "classification":
        mod = importlib.import_module("evaluator.tasks.classification")
        labels, ids2, Y = mod.read_truth(Path(truth))
        strata = {c: "".join(str(int(v)) for v in Y[i]) for i, c in enumerate(ids2)}
    return {"task": task, "case_ids": ids, "predictions_header": api.predictions_header(task, truth),
            "strata": strata, "masks": None}


def split_cases(case_ids, *, strata=None, groups=None, private_fraction=0.5, seed=0):
    rng = random.Random(seed)
    by_stratum = {}
    for case_id in case_ids:
        by_stratum.setdefault((strata or {}).get(case_id, ""), []).append(case_id)
    parts = {}
    for key in sorted(by_stratum):
        members = by_stratum[key]
        rng.shuffle(members)
        n_private = round(private_fraction * len(members))
        for i, case_id in enumerate(members):
            parts[case_id] = "private" if i < n_private else "public"
    return parts


def task_options(task):
    mod = importlib.import_module(f"evaluator.tasks.{task}")
    return {name: {"default": value, "type": type(value).__name__, "help": name.replace("_", " ")}
            for name, value in mod.DEFAULTS.items() if name != "labels"}


def validate(task, predictions, *, truth=None, case_ids=None, truth_info=None, options=None, name=None):
    if truth_info is not None:
        truth = None
        case_ids = truth_info["case_ids"]
        if task == "classification" and len(truth_info["predictions_header"]) > 2:
            options = {**(options or {}), "labels": truth_info["predictions_header"][1:]}
    try:
        api.validate(task, predictions, truth=truth, case_ids=case_ids, options=options)
    except SubmissionInvalid as invalid:
        if name:
            stored = Path(predictions).name
            invalid.problems = [dataclasses.replace(p, file=p.file.replace(stored, name, 1)) for p in invalid.problems]
        raise


def score(task, truth, predictions, options=None, *, case_ids=None, name=None):
    if case_ids is None:
        return api.score(task, truth, predictions, options)
    wanted = set(case_ids)
    with tempfile.TemporaryDirectory() as folder:
        subset = Path(folder) / "truth.csv"
        with open(truth, newline="", encoding="utf-8-sig") as source, open(subset, "w", newline="") as target:
            rows = csv.reader(source)
            writer = csv.writer(target)
            writer.writerow(next(rows))
            writer.writerows(row for row in rows if row and row[0] in wanted)
        preds = Path(folder) / "predictions.csv"
        with open(predictions, newline="", encoding="utf-8-sig") as source, open(preds, "w", newline="") as target:
            rows = csv.reader(source)
            writer = csv.writer(target)
            writer.writerow(next(rows))
            writer.writerows(row for row in rows if row and row[0] in wanted)
        return api.score(task, subset, preds, options)
