"""``python -m evaluator``: score or validate a submission from the command line.

Exit codes: 0 ok, 1 invalid submission, 2 usage error or bad truth/options.
"""

from __future__ import annotations

import argparse
import json
import sys

from .api import TASKS, score, validate
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
    g.add_argument("--case-ids", help="a text file with one case id per line (the participant's check)")
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    options = dict(args.option)
    try:
        if args.command == "score":
            print(json.dumps(score(args.task, args.truth, args.predictions, options)))
            return 0
        case_ids = None
        if args.case_ids:
            with open(args.case_ids, encoding="utf-8") as fh:
                case_ids = [line.strip() for line in fh if line.strip()]
        validate(args.task, args.predictions, truth=args.truth, case_ids=case_ids, options=options)
        n = len(case_ids) if case_ids is not None else _count_cases(args.task, args.truth, options)
        print(f"OK: {n} cases")
        return 0
    except SubmissionInvalid as exc:
        print(str(exc), file=sys.stdout if args.command == "validate" else sys.stderr)
        return 1
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _count_cases(task, truth, options):
    import importlib

    mod = importlib.import_module(f"evaluator.tasks.{task}")
    if task == "segmentation":
        return len(mod._truth(truth, mod.resolve_options(options, mod.DEFAULTS, task))[0])
    return len(mod.read_truth(truth)[1 if task == "classification" else 0])
