"""Organizers' metric containers: for a task no built-in metric covers, a container reads the
truth and a submission's predictions and writes per-case values and aggregates, which Mica
then stores, ranks and shows like a built-in metric's.

The contract (run in the same sandbox as teams' containers, without network):

/input/truth/truth.csv (or truth.zip)             the test set's truth, as the organizer stored it
/input/predictions/predictions.csv (or .zip)      the submission's predictions, as validated
/input/cases.json                                 the cases to score (one part of the test set)
/output/metrics.json                              what the container computed:

    {"metrics": {"<metric>": <number or null>, ...},
     "cases": [{"case_id": "<id>", "<metric>": <number or null>, ...}, ...]}

`metrics` holds every declared metric; `cases` holds each listed case exactly once and no
other, each with values of declared metrics only. A value is a finite number or null
(undefined). Anything else fails the evaluation with the reason.
"""

import json
import math
import re
from pathlib import Path

from evaluator import containers
from mica.uploads.files import fetch

MAX_METRICS_JSON_BYTES = 16 * 1024 * 1024
METRIC_NAME = re.compile(r"[a-z][a-z0-9_]{0,49}")


class MetricsInvalid(ValueError):
    pass


def parse_declaration(text):
    """'name:higher, other:lower' → [{"name": "name", "higher_is_better": True}, ...]; ValueError
    names the bad part."""
    import evaluator

    declared = {}
    for number, part in enumerate(filter(None, (p.strip() for p in str(text).split(","))), start=1):
        name, _, direction = part.partition(":")
        name, direction = name.strip(), direction.strip()
        if not METRIC_NAME.fullmatch(name):
            raise ValueError(f"metrics, item {number}: {name!r} is not a metric name (a-z, 0-9, _; a letter first).")
        if direction not in ("higher", "lower"):
            raise ValueError(f"metrics, item {number} ({name}): say whether higher or lower is better, "
                             f"e.g. {name}:higher.")
        if name in declared:
            raise ValueError(f"metrics, item {number}: {name!r} is declared twice.")
        if name in evaluator.METRICS:
            raise ValueError(f"metrics, item {number}: {name!r} is a built-in metric; name yours differently.")
        declared[name] = direction == "higher"
    if not declared:
        raise ValueError("metrics: declare at least one metric, e.g. lesion_f1:higher.")
    return [{"name": name, "higher_is_better": higher} for name, higher in declared.items()]


def prepare_input(evaluation, work):
    """The truth, the predictions and the cases of the evaluation's part, in `work/input`."""
    input_dir = Path(work) / "input"
    for folder, stored, stem in (("truth", evaluation.truth_version.file, "truth"),
                                 ("predictions", evaluation.submission.file, "predictions")):
        (input_dir / folder).mkdir(parents=True)
        fetch(stored, input_dir / folder / f"{stem}{''.join(Path(stored.name).suffixes)}")
    case_ids = evaluation.truth_version.test_set.case_ids(evaluation.split)
    containers.write_cases(input_dir, {case_id: [] for case_id in case_ids})
    return input_dir, case_ids


def read_metrics(output_dir, case_ids, declared):
    """The evaluator-shaped result from /output/metrics.json, checked strictly."""
    path = Path(output_dir) / "metrics.json"
    if path.is_symlink() or not path.is_file():
        raise MetricsInvalid("it wrote no /output/metrics.json")
    if path.stat().st_size > MAX_METRICS_JSON_BYTES:
        raise MetricsInvalid(f"metrics.json is over {MAX_METRICS_JSON_BYTES} bytes")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MetricsInvalid(f"metrics.json is not JSON ({error})") from None
    if not isinstance(data, dict) or set(data) != {"metrics", "cases"}:
        raise MetricsInvalid('metrics.json must be an object with exactly the keys "metrics" and "cases"')
    aggregate = data["metrics"]
    if not isinstance(aggregate, dict):
        raise MetricsInvalid('metrics.json "metrics" must be an object')
    unknown = sorted(set(aggregate) - set(declared))
    missing = sorted(set(declared) - set(aggregate))
    if unknown or missing:
        raise MetricsInvalid(f'metrics.json "metrics": '
                             + "; ".join(filter(None, [f"undeclared {unknown}" if unknown else "",
                                                       f"missing {missing}" if missing else ""])))
    for name, value in aggregate.items():
        _check_value(value, f'"metrics" {name!r}')
    rows = data["cases"]
    if not isinstance(rows, list):
        raise MetricsInvalid('metrics.json "cases" must be a list')
    expected, seen, per_case = set(case_ids), set(), []
    for index, row in enumerate(rows):
        where = f'"cases"[{index}]'
        if not isinstance(row, dict) or not isinstance(row.get("case_id"), str):
            raise MetricsInvalid(f"metrics.json {where}: an object with a string case_id is expected")
        case_id = row["case_id"]
        if case_id not in expected:
            raise MetricsInvalid(f"metrics.json {where}: case {case_id!r} is not one of the cases to score")
        if case_id in seen:
            raise MetricsInvalid(f"metrics.json {where}: case {case_id!r} appears twice")
        seen.add(case_id)
        for name, value in row.items():
            if name == "case_id":
                continue
            if name not in declared:
                raise MetricsInvalid(f"metrics.json {where} ({case_id}): {name!r} is not a declared metric")
            _check_value(value, f"{where} ({case_id}) {name!r}")
        per_case.append(dict(row))
    if seen != expected:
        absent = sorted(expected - seen)
        raise MetricsInvalid(f'metrics.json "cases": {len(absent)} case(s) missing, e.g. {absent[0]!r}')
    return {"task": "custom", "n_cases": len(case_ids), "missing_cases": 0, "metrics": dict(aggregate),
            "per_case": per_case, "notes": ["Scored by the organizers' metric container."]}


def _check_value(value, where):
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise MetricsInvalid(f"metrics.json {where}: {json.dumps(value)[:40]} is not a finite number or null")
