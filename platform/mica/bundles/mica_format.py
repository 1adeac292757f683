"""Mica's own bundle: a zip with one ``challenge.yaml`` and the files it names.

Written by `export_bundle`, read by `plan_from_bundle` into a plan (plain data) that
`mica.bundles.creation.create_challenge` turns into a challenge. The format is documented in
this app's README.md.
"""

import csv
import io
import zipfile

import yaml
from django.utils.text import slugify

import evaluator
from mica.challenges.models import Challenge, Phase

from .reading import BundleError, Keys

FORMAT_VERSION = 1
CHALLENGE_KEYS = {"slug": "str", "title": "str", "task_type": "str", "description": "str", "terms": "str",
                  "registration": "str", "allowed_email_domains": "str", "team_size_limit": "int",
                  "team_merge_deadline": "datetime"}
TEST_SET_KEYS = {"name": "str", "private_fraction": "float", "split_seed": "int", "split_stratified": "bool",
                 "truth": "str", "cases": "str"}
PHASE_KEYS = {"name": "str", "description": "str", "test_set": "str", "starts_at": "datetime", "ends_at": "datetime",
              "primary_metric": "str", "secondary_metrics": "list", "metric_options": "dict",
              "score_precision": "int", "daily_limit": "int", "total_limit": "int", "concurrent_limit": "int",
              "selection": "str", "max_selected": "int", "visibility": "str", "blind": "bool", "parent": "str"}
REQUIRED = {"challenge": {"slug", "title", "task_type"}, "test_sets": {"name"},
            "phases": {"name", "test_set", "starts_at", "ends_at", "primary_metric"}}
CHOICES = {"task_type": Challenge.TaskType.values, "registration": Challenge.Registration.values,
           "selection": Phase.Selection.values, "visibility": Phase.Visibility.values}
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def _iso(moment):
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def _entry_name(index, name):
    return f"{index + 1}-{slugify(name) or 'test-set'}"


def export_bundle(challenge, *, with_truth=False):
    """The challenge's settings as a bundle (bytes of a zip); with its test sets' latest truth
    and recorded split when `with_truth` (organizers moving a challenge: keep it private)."""
    files = {"description.md": challenge.description.encode(), "terms.md": challenge.terms.encode()}
    document = {
        "mica_bundle": FORMAT_VERSION,
        "challenge": {
            "slug": challenge.slug, "title": challenge.title, "task_type": str(challenge.task_type),
            "description": "description.md", "terms": "terms.md", "registration": str(challenge.registration),
            "allowed_email_domains": challenge.allowed_email_domains, "team_size_limit": challenge.team_size_limit,
            "team_merge_deadline": _iso(challenge.team_merge_deadline),
        },
        "test_sets": [],
        "phases": [],
    }
    for index, test_set in enumerate(challenge.test_sets.order_by("pk")):
        entry = {"name": test_set.name, "private_fraction": test_set.private_fraction,
                 "split_seed": test_set.split_seed, "split_stratified": test_set.split_stratified}
        version = test_set.latest_version
        if with_truth and version is not None:
            stem = f"truth/{_entry_name(index, test_set.name)}"
            entry["truth"] = f"{stem}{challenge.submission_suffix}"
            entry["cases"] = f"{stem}-cases.csv"
            with version.file.open("rb") as handle:
                files[entry["truth"]] = handle.read()
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(["case_id", "split", "patient"])
            writer.writerows(test_set.cases.order_by("case_id").values_list("case_id", "split", "patient"))
            files[entry["cases"]] = buffer.getvalue().encode()
        document["test_sets"].append(entry)
    for phase in challenge.phases.select_related("test_set", "parent").order_by("starts_at", "pk"):
        document["phases"].append({
            "name": phase.name, "description": phase.description, "test_set": phase.test_set.name,
            "starts_at": _iso(phase.starts_at), "ends_at": _iso(phase.ends_at),
            "primary_metric": phase.primary_metric, "secondary_metrics": list(phase.secondary_metrics),
            "metric_options": dict(phase.metric_options), "score_precision": phase.score_precision,
            "daily_limit": phase.daily_limit, "total_limit": phase.total_limit,
            "concurrent_limit": phase.concurrent_limit, "selection": str(phase.selection),
            "max_selected": phase.max_selected, "visibility": str(phase.visibility), "blind": phase.blind,
            "parent": phase.parent.name if phase.parent else None,
        })
    files = {"challenge.yaml": yaml.safe_dump(document, sort_keys=False, allow_unicode=True).encode(), **files}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(zipfile.ZipInfo(name, FIXED_TIME), content, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def plan_from_bundle(bundle, filename="challenge.yaml"):
    """The challenge a Mica bundle describes, as plain data; BundleError lists every problem."""
    document = bundle.yaml(filename)
    keys = Keys(filename)
    version = keys.get(document, "", "mica_bundle", "int", required=True)
    if version is not None and version != FORMAT_VERSION:
        keys.problem("mica_bundle", f"this site reads version {FORMAT_VERSION} bundles")
    _unknown(keys, document, "", {"mica_bundle", "challenge", "test_sets", "phases"})
    challenge = _section(keys, document.get("challenge"), "challenge", CHALLENGE_KEYS, "challenge")
    task = challenge.get("task_type")
    texts = {}
    for key in ("description", "terms"):
        if challenge.get(key):
            try:
                texts[key] = bundle.text(challenge[key], named_by=f"{filename}: challenge.{key}")
            except BundleError as error:
                keys.problems.extend(error.problems)
    challenge.update(texts)
    test_sets = [_section(keys, entry, f"test_sets[{i}]", TEST_SET_KEYS, "test_sets")
                 for i, entry in enumerate(_list(keys, document, "test_sets"))]
    phases = [_section(keys, entry, f"phases[{i}]", PHASE_KEYS, "phases")
              for i, entry in enumerate(_list(keys, document, "phases"))]
    names = [t.get("name") for t in test_sets]
    for index, phase in enumerate(phases):
        if phase.get("test_set") and phase["test_set"] not in names:
            keys.problem(f"phases[{index}].test_set", "names no test set of the bundle")
        if phase.get("parent") and phase["parent"] not in [p.get("name") for p in phases]:
            keys.problem(f"phases[{index}].parent", "names no phase of the bundle")
        if task:
            check_metrics(keys, f"phases[{index}]", task, phase)
    for index, test_set in enumerate(test_sets):
        for key in ("truth", "cases"):
            if test_set.get(key) and not bundle.has(test_set[key]):
                keys.problem(f"test_sets[{index}].{key}", f"the bundle has no file {test_set[key]!r}")
        if bool(test_set.get("truth")) != bool(test_set.get("cases")):
            keys.problem(f"test_sets[{index}]", "truth and cases come together (the cases file keeps the split)")
    keys.raise_if_any()
    return {"challenge": challenge, "test_sets": test_sets, "phases": phases}


def check_metrics(keys, path, task, phase):
    known = sorted(name for name, metric in evaluator.METRICS.items() if metric.task == task)
    for key, names in (("primary_metric", [phase.get("primary_metric")]),
                       ("secondary_metrics", phase.get("secondary_metrics") or [])):
        for name in names:
            if name is not None and name not in known:
                keys.problem(f"{path}.{key}", f"{name!r} is not a metric of {task} tasks ({', '.join(known)})")
    options = phase.get("metric_options") or {}
    unknown = sorted(set(options) - set(evaluator.task_options(task)))
    if unknown:
        keys.problem(f"{path}.metric_options", f"{task} tasks have no option {unknown[0]!r}")


def _list(keys, document, key):
    return keys.get(document, "", key, "list", default=[])


def _section(keys, mapping, path, spec, kind):
    if not isinstance(mapping, dict):
        keys.problem(path, "expected a mapping")
        return {}
    _unknown(keys, mapping, path, set(spec))
    out = {}
    for key, type_name in spec.items():
        value = keys.get(mapping, path, key, type_name, required=key in REQUIRED[kind], choices=CHOICES.get(key))
        if value is not None:
            out[key] = value
    return out


def _unknown(keys, mapping, path, known):
    for key in mapping:
        if key not in known:
            keys.problem(f"{path}.{key}" if path else str(key), "unknown key")
