"""``python -m evaluator``: score or validate a submission from the command line.

Exit codes: 0 ok, 1 invalid submission, 2 usage error or bad truth/options.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys

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
    site_worker.add_parser(sub)
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "site-worker":
        return site_worker.main(args)
    options = dict(args.option)
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
