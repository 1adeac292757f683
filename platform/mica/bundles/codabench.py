"""Codabench's ``competition.yaml`` (version 2) read into a Mica plan, with what does not map.

What maps: title, description, terms, pages (appended to the description as sections: Mica
has no separate pages), registration_auto_approve, phases (name, description, start, end,
max_submissions_per_day, max_submissions), leaderboard columns whose key or title is a metric
of the task (sorting checked against the metric's direction), and each phase's first task's
reference data when it is a truth file the evaluator reads. Everything else (scoring and
ingestion programs, Docker images, input data, starting kits, time limits...) is listed.
"""

from datetime import timedelta

from dateutil import parser as date_parser
from django.utils.text import slugify

import evaluator

from .reading import WRONG, BundleError, Keys, as_datetime

FILENAME = "competition.yaml"
MAPPED_TOP = {"version", "title", "description", "terms", "pages", "phases", "tasks", "leaderboards",
              "registration_auto_approve"}
MAPPED_PHASE = {"index", "name", "description", "start", "end", "max_submissions_per_day", "max_submissions", "tasks"}
MAPPED_TASK = {"index", "name", "reference_data", "scoring_program"}
TRUTH_SUFFIXES = (".csv", ".zip")


def plan_from_codabench(bundle, *, task_type):
    """(plan, unmapped): the plan `create_challenge` takes, and a line per item left out."""
    document = bundle.yaml(FILENAME)
    keys = Keys(FILENAME)
    unmapped = []
    if keys.get(document, "", "version", "int", required=True) not in (None, 2):
        keys.problem("version", "only version 2 (Codabench) bundles are read")
    title = keys.get(document, "", "title", "str", required=True)
    description = keys.get(document, "", "description", "str", default="")
    terms = ""
    terms_file = keys.get(document, "", "terms", "str")
    if terms_file:
        terms = _text(bundle, keys, terms_file, "terms")
    for index, page in enumerate(keys.get(document, "", "pages", "list", default=[])):
        page_title = keys.get(page, f"pages[{index}]", "title", "str", required=True)
        page_file = keys.get(page, f"pages[{index}]", "file", "str", required=True)
        if page_title and page_file:
            description += f"\n\n## {page_title}\n\n{_text(bundle, keys, page_file, f'pages[{index}].file')}"
    if document.get("pages"):
        unmapped.append("pages: appended to the description as sections (Mica has no separate pages)")
    auto_approve = keys.get(document, "", "registration_auto_approve", "bool", default=True)
    for key in sorted(set(document) - MAPPED_TOP, key=str):
        unmapped.append(f"{key}: not mapped (Mica has no equivalent)")

    metrics = _metrics(keys, document, task_type, unmapped)
    tasks = {}
    for index, task in enumerate(keys.get(document, "", "tasks", "list", default=[])):
        task_index = keys.get(task, f"tasks[{index}]", "index", "int", required=True)
        tasks[task_index] = (index, task)
        for key in sorted(set(task or {}) - MAPPED_TASK, key=str):
            unmapped.append(f"tasks[{index}].{key}: not mapped")
        if task and task.get("scoring_program"):
            unmapped.append(f"tasks[{index}].scoring_program: not run; Mica scores with its evaluator's metrics"
                            + (f" ({', '.join(metrics)})" if metrics else ""))

    test_sets, phases = [], []
    for index, phase in enumerate(keys.get(document, "", "phases", "list", required=True, default=[])):
        where = f"phases[{index}]"
        name = keys.get(phase, where, "name", "str", required=True)
        start = _date(keys, phase, where, "start", required=True)
        end = _date(keys, phase, where, "end")
        for key in sorted(set(phase or {}) - MAPPED_PHASE, key=str):
            unmapped.append(f"{where}.{key}: not mapped")
        if start and not end:
            end = start + timedelta(days=365)
            unmapped.append(f"{where} ({name}): no end; Mica phases end, so it ends one year after its start")
        daily = keys.get(phase, where, "max_submissions_per_day", "int")
        if daily is None:
            unmapped.append(f"{where} ({name}): no max_submissions_per_day; Mica's default of 5 applies")
        entry = {"name": name, "description": keys.get(phase, where, "description", "str", default=""),
                 "starts_at": start, "ends_at": end, "daily_limit": 5 if daily is None else daily,
                 "total_limit": keys.get(phase, where, "max_submissions", "int")}
        if metrics:
            entry["primary_metric"], entry["secondary_metrics"] = metrics[0], metrics[1:]
        task_indexes = keys.get(phase, where, "tasks", "list", default=[])
        if len(task_indexes) > 1:
            unmapped.append(f"{where}.tasks: a Mica phase has one test set; only task {task_indexes[0]} is used")
        task = tasks.get(task_indexes[0]) if task_indexes else None
        entry["test_set"] = None
        if task is None:
            unmapped.append(f"{where} ({name}): no task, so no test set")
        else:
            truth = _truth(bundle, task[1])
            test_set_name = task[1].get("name") or f"Task {task_indexes[0]}"
            if truth is None:
                unmapped.append(f"tasks[{task[0]}].reference_data: not a truth file Mica reads (one .csv, or a "
                                ".zip of masks)")
            elif test_set_name not in [t["name"] for t in test_sets]:
                # Codabench shows every case on its leaderboard: no private part.
                test_sets.append({"name": test_set_name, "truth": truth, "private_fraction": 0.0})
            entry["test_set"] = test_set_name
        if not metrics:
            unmapped.append(f"{where} ({name}): not created, no leaderboard column is a metric of {task_type} tasks")
        else:
            phases.append(entry)
    keys.raise_if_any()
    slug = slugify(title)[:50] or "imported"
    plan = {"challenge": {"slug": slug, "title": title, "task_type": task_type, "description": description,
                          "terms": terms, "registration": "open" if auto_approve else "approval"},
            "test_sets": test_sets, "phases": phases}
    return plan, unmapped


def _text(bundle, keys, name, key):
    try:
        return bundle.text(name, named_by=f"{FILENAME}: {key}")
    except BundleError as error:
        keys.problems.extend(error.problems)
        return ""


def _date(keys, mapping, where, key, required=False):
    value = mapping.get(key) if isinstance(mapping, dict) else None
    if value is None:
        if required:
            keys.problem(f"{where}.{key}", "missing (required)")
        return None
    moment = as_datetime(value)
    if moment is WRONG:
        try:  # Codabench writes month-day-year: "1-31-2026"
            moment = as_datetime(date_parser.parse(str(value), dayfirst=False))
        except (ValueError, OverflowError):
            keys.problem(f"{where}.{key}", "expected a date (e.g. 2026-01-31 or 1-31-2026)")
            return None
    return moment


def _metrics(keys, document, task_type, unmapped):
    """The metrics of the first leaderboard's columns, primary first (column index order)."""
    known = {name: metric for name, metric in evaluator.METRICS.items() if metric.task == task_type}
    leaderboards = keys.get(document, "", "leaderboards", "list", default=[])
    if len(leaderboards) > 1:
        unmapped.append(f"leaderboards[1:]: {len(leaderboards) - 1} more leaderboard(s); Mica reads the first")
    if not leaderboards:
        return []
    columns = keys.get(leaderboards[0], "leaderboards[0]", "columns", "list", default=[])
    ordered = sorted(enumerate(columns), key=lambda pair: (pair[1] or {}).get("index", pair[0]))
    metrics = []
    for position, column in ordered:
        where = f"leaderboards[0].columns[{position}]"
        key = keys.get(column, where, "key", "str", required=True) or ""
        title = keys.get(column, where, "title", "str", default="")
        sorting = keys.get(column, where, "sorting", "str", default="desc", choices=["asc", "desc"])
        name = next((c for c in (key.lower(), title.lower().replace(" ", "_")) if c in known), None)
        if name is None:
            unmapped.append(f"{where} ({key}): not a metric of {task_type} tasks ({', '.join(known)})")
            continue
        if (sorting == "desc") != known[name].higher_is_better:
            unmapped.append(f"{where} ({key}): sorted {sorting}, but {name} is "
                            f"{'higher' if known[name].higher_is_better else 'lower'}-is-better; Mica ranks it so")
        if isinstance(column, dict) and column.get("computation"):
            unmapped.append(f"{where}.computation: not mapped")
        if name not in metrics:
            metrics.append(name)
    return metrics


def _truth(bundle, task):
    """The reference data as a bundle member: a truth file itself, or the one truth file in its folder."""
    reference = task.get("reference_data") if isinstance(task, dict) else None
    if not isinstance(reference, str):
        return None
    if reference.lower().endswith(TRUTH_SUFFIXES) and bundle.has(reference):
        return reference
    folder = bundle.path(reference).rstrip("/") + "/"
    inside = [name for name in bundle.files if name.startswith(folder) and name.lower().endswith(TRUTH_SUFFIXES)]
    if len(inside) == 1:
        return inside[0][len(bundle.root) + 1:] if bundle.root else inside[0]
    return None
