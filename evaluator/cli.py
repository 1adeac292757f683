"""``python -m evaluator``: score or validate a submission, or run an algorithm container on
cases as the site does, from the command line.

Exit codes: 0 ok, 1 invalid submission (or the container did not succeed), 2 usage error, bad
truth/options, or a refused image.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from pathlib import Path

from . import site_worker
from .api import TASKS, describe_truth, score, validate
from .problems import SubmissionInvalid


def _parse_option(text):
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"options are KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _parser():
    p = argparse.ArgumentParser(prog="python -m evaluator", description="Score or validate a Mica submission.")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("score", help="print the scores as one JSON object")
    v = sub.add_parser("validate", help="check a submission; exit 1 when it has problems")
    for q in (s, v):
        q.add_argument("--task", required=True, choices=TASKS)
        q.add_argument("--predictions", required=True)
        q.add_argument("--option", action="append", default=[], type=_parse_option, metavar="KEY=VALUE",
                       help="a task option; VALUE is JSON when it parses as JSON (e.g. threshold=0.3, "
                            "log_loss_weights='{\"any\": 2}'), else a string")
    s.add_argument("--truth", required=True)
    g = v.add_mutually_exclusive_group(required=True)
    g.add_argument("--truth")
    g.add_argument("--case-ids", help="the case ids (the participant's check): the CSV the site serves "
                                      "(a 'case_id' header line, then one id per line), or one id per line")
    _container_parser(sub)
    site_worker.add_parser(sub)
    return p


def _container_parser(sub):
    from .containers import Limits
    d = Limits()
    r = sub.add_parser("run-container", help="run an algorithm image on a folder of cases, sandboxed as the "
                                             "site runs it, then check (--task) or score (--truth) its output")
    r.add_argument("image", help="the image archive: docker save / podman save output (docker-archive or "
                                 "OCI, optionally gzipped)")
    r.add_argument("--input", required=True, help="the cases folder, mounted read-only at /input; it must "
                                                  "hold cases.json")
    r.add_argument("--output", required=True, help="an empty (or new) folder, mounted at /output")
    r.add_argument("--task", choices=TASKS, help="check the predictions the container writes")
    r.add_argument("--truth", help="score them against this truth (needs --task)")
    r.add_argument("--option", action="append", default=[], type=_parse_option, metavar="KEY=VALUE",
                   help="a task option, as for score")
    r.add_argument("--backend", default="bwrap", help="bwrap (default), docker or podman")
    r.add_argument("--wall-seconds", type=float, default=d.wall_seconds)
    r.add_argument("--memory-bytes", type=int, default=d.memory_bytes)
    r.add_argument("--cpus", type=float, default=d.cpus)
    r.add_argument("--pids", type=int, default=d.pids)
    r.add_argument("--gpu", action="store_true")
    r.add_argument("--log-bytes", type=int, default=d.log_bytes)
    r.add_argument("--output-bytes", type=int, default=d.output_bytes, help="the most /output may hold")
    r.add_argument("--output-files", type=int, default=d.output_files,
                   help="the most files and folders /output may hold")


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "site-worker":
        return site_worker.main(args)
    options = dict(args.option)
    if args.command == "run-container":
        return run_container(args, options)
    try:
        if args.command == "score":
            print(json.dumps(score(args.task, args.truth, args.predictions, options)))
            return 0
        if args.case_ids:
            case_ids = read_case_ids(args.case_ids)
            validate(args.task, args.predictions, case_ids=case_ids, options=options)
        else:
            facts = describe_truth(args.task, args.truth, options)
            validate(args.task, args.predictions, truth_info=facts, options=options)
            case_ids = facts["case_ids"]
        print(f"OK: {len(case_ids)} cases")
        return 0
    except SubmissionInvalid as exc:
        print(str(exc), file=sys.stdout if args.command == "validate" else sys.stderr)
        return 1
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def read_case_ids(path) -> list[str]:
    """The ids of a case-ids file: the site's CSV (header ``case_id``) or a plain list."""
    ids = []
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        for row in reader:
            if not row or not any(f.strip() for f in row):
                continue
            if len(row) != 1:
                raise ValueError(f"{path}, row {reader.line_num}: expected one case id per line, "
                                 f"found {len(row)} columns")
            ids.append(row[0].strip())
    return ids[1:] if ids[:1] == ["case_id"] else ids


def run_container(args, options) -> int:
    """Unpack the image into a temporary folder, run it on ``--input``, report the run on
    stderr and a JSON summary on stdout, then validate or score what it wrote."""
    from .containers import CASES_FILE, ImageRefused, Limits, load_image, predictions_path, run

    if args.truth and not args.task:
        print("error: --truth needs --task", file=sys.stderr)
        return 2
    input_dir, output_dir = Path(args.input), Path(args.output)
    try:
        limits = Limits(args.wall_seconds, args.memory_bytes, args.cpus, args.pids, args.gpu, args.log_bytes,
                        args.output_bytes, args.output_files)
        if not (input_dir / CASES_FILE).is_file():
            raise ValueError(f"{input_dir}/{CASES_FILE} is missing: list the cases as "
                             '{"cases": [{"case_id": "c1", "files": ["c1.png"]}, ...]} (see the README)')
        case_ids = [c["case_id"] for c in json.loads((input_dir / CASES_FILE).read_text())["cases"]]
        output_dir.mkdir(parents=True, exist_ok=True)
        if any(output_dir.iterdir()):
            raise ValueError(f"the output folder {output_dir} is not empty")
        with tempfile.TemporaryDirectory(prefix="mica-image-") as scratch:
            image = load_image(args.image, scratch)
            print(f"image {image.digest} ({image.archive_format}), running with {args.backend}", file=sys.stderr)
            result = run(image, input_dir, output_dir, limits=limits, backend=args.backend)
    except ImageRefused as exc:
        print(f"refused: {exc.reason}", file=sys.stderr)
        return 2
    except (ValueError, KeyError, TypeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, text in (("stdout", result.stdout), ("stderr", result.stderr)):
        if text:
            print(f"--- container {name} ---\n{text.rstrip()}", file=sys.stderr)
    summary = {"status": result.status, "reason": result.reason, "exit_code": result.exit_code,
               "wall_seconds": round(result.wall_seconds, 3), "peak_memory_bytes": result.peak_memory_bytes,
               "enforcement": result.enforcement}
    if result.status != "succeeded" or not args.task:
        print(json.dumps({"run": summary}))
        return 0 if result.status == "succeeded" else 1
    predictions = predictions_path(output_dir, args.task)
    try:
        if args.truth:
            summary = {"run": summary, "scores": score(args.task, args.truth, predictions, options)}
        else:
            validate(args.task, predictions, case_ids=case_ids, options=options)
            summary = {"run": summary, "valid": True, "cases": len(case_ids)}
    except SubmissionInvalid as exc:
        print(json.dumps({"run": summary, "valid": False}))
        print(str(exc), file=sys.stderr)
        return 1
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0
