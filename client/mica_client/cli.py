"""``mica``: the command-line client of a Mica challenge site. Exit codes: see `ExitCode`."""

import argparse
import getpass
import json
import os
import sys
import time

from tqdm import tqdm

from . import __version__, config
from .api import Client, ExitCode, MicaError
from .download import download

FINAL = {"succeeded", "failed", "invalid", "cancelled"}


def _client():
    settings = config.load()
    if not settings.get("token"):
        raise MicaError("Not logged in: run `mica login` (or set MICA_TOKEN).", ExitCode.AUTH)
    return Client(settings.get("url"), settings["token"])


def _progress(args):
    def bar(**kwargs):
        return tqdm(unit="B", unit_scale=True, unit_divisor=1024, disable=args.quiet, file=sys.stderr, **kwargs)
    return bar


def _phase(challenge, wanted):
    """A phase of the challenge by id or by name (case-insensitive)."""
    phases = challenge["phases"]
    if wanted is None:
        open_phases = [p for p in phases if p["is_open"]]
        if len(open_phases) == 1:
            return open_phases[0]
        raise MicaError(f"Name the phase with --phase ({', '.join(p['name'] for p in phases) or 'none'}).",
                        ExitCode.USAGE)
    for phase in phases:
        if str(phase["id"]) == wanted or phase["name"].lower() == wanted.lower():
            return phase
    raise MicaError(f"{challenge['slug']} has no phase {wanted!r} "
                    f"(its phases: {', '.join(p['name'] for p in phases) or 'none'}).", ExitCode.DENIED)


def _table(rows, columns):
    widths = [max(len(str(title)), *(len(str(row.get(key, ""))) for row in rows)) for key, title in columns]
    print("  ".join(str(title).ljust(width) for (_, title), width in zip(columns, widths)))
    for row in rows:
        print("  ".join(str("" if row.get(key) is None else row.get(key)).ljust(width)
                        for (key, _), width in zip(columns, widths)))


# -- commands -------------------------------------------------------------------------------
def cmd_login(args):
    url = args.url or config.load().get("url")
    client = Client(url)
    if args.token:
        token = args.token
    else:
        username = args.username or input("Username: ")
        password = getpass.getpass("Password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
        token = client.issue_token(username, password)["token"]
    checked = Client(url, token)
    checked.request("GET", "submissions/", params={"page": 1})  # proves the token works
    path = config.save({"url": client.url, "token": token})
    print(f"Logged in to {client.url}; token stored in {path} (readable by you only).")


def cmd_logout(args):
    settings = config.load()
    if settings.get("token") and not args.keep_token:
        Client(settings.get("url"), settings["token"]).revoke_token()
    config.forget()
    print("Logged out.")


def cmd_challenges(args):
    rows = _client().challenges()
    if args.json:
        return print(json.dumps(rows, indent=2))
    _table([{**c, "phases": len(c["phases"])} for c in rows],
           [("slug", "SLUG"), ("title", "TITLE"), ("task_type", "TASK"), ("state", "STATE"), ("phases", "PHASES")])


def cmd_phases(args):
    challenge = _client().challenge(args.challenge)
    if args.json:
        return print(json.dumps(challenge["phases"], indent=2))
    _table([{**p, "open": "yes" if p["is_open"] else "no", "metric": p["primary_metric"]} for p in challenge["phases"]],
           [("id", "ID"), ("name", "NAME"), ("starts_at", "STARTS"), ("ends_at", "ENDS"), ("open", "OPEN"),
            ("metric", "METRIC"), ("daily_limit", "PER DAY"), ("n_cases", "CASES")])


def cmd_data(args):
    releases = _client().releases(args.challenge)
    _table(releases, [("id", "ID"), ("name", "NAME"), ("kind", "HOLDS"), ("image_format", "FORMAT"),
                      ("n_cases", "CASES"), ("size", "BYTES"), ("status", "STATUS")])


def cmd_download(args):
    client = _client()
    releases = [r for r in client.releases(args.challenge) if r["status"] == "ready"]
    if args.release:
        releases = [r for r in releases if str(r["id"]) == args.release or r["name"].lower() == args.release.lower()]
        if not releases:
            raise MicaError(f"{args.challenge} has no ready release {args.release!r} (see `mica data`).",
                            ExitCode.DENIED)
    if not releases:
        raise MicaError(f"{args.challenge} has no data ready to download yet.", ExitCode.DENIED)
    for release in releases:
        print(download(client, release, args.output, _progress(args)))


def cmd_validate(args):
    try:
        import evaluator
    except ImportError:
        raise MicaError("`mica validate` runs Mica's evaluator, which is not installed here: install the "
                        "evaluator package of the Mica repository (or put the repository on PYTHONPATH).",
                        ExitCode.MISSING) from None
    client = _client()
    challenge = client.challenge(args.challenge)
    phase = _phase(challenge, args.phase)
    case_ids = client.case_ids(phase["id"])
    try:
        evaluator.validate(challenge["task_type"], args.predictions, case_ids=case_ids,
                           options=phase["metric_options"] or None)
    except evaluator.SubmissionInvalid as error:
        raise MicaError(str(error), ExitCode.INVALID) from None
    print(f"OK: {args.predictions} passes the checks of {challenge['slug']} / {phase['name']} "
          f"({len(case_ids)} cases).")


def cmd_submit(args):
    client = _client()
    challenge = client.challenge(args.challenge)
    phase = _phase(challenge, args.phase)
    with _progress(args)(total=os.path.getsize(args.predictions), desc="upload") as bar:
        try:
            submission = client.submit(phase["id"], args.predictions, args.comment or "", bar)
        except MicaError as error:
            if error.code == ExitCode.ERROR and str(error).startswith("predictions:"):
                error.code = ExitCode.INVALID
            raise
    print(f"Submitted {submission['uuid']} to {challenge['slug']} / {phase['name']}: {submission['status']}.")
    if args.wait:
        return _wait(client, submission["uuid"], args)
    return ExitCode.OK


def cmd_status(args):
    submission = _client().submission(args.submission)
    _show(submission)
    return _outcome(submission)


def cmd_wait(args):
    return _wait(_client(), args.submission, args)


def _wait(client, submission_id, args):
    deadline = time.monotonic() + args.timeout
    while True:
        submission = client.submission(submission_id)
        if submission["status"] in FINAL:
            _show(submission)
            return _outcome(submission)
        if time.monotonic() >= deadline:
            raise MicaError(f"No score after {args.timeout:g} s (status: {submission['status']}); "
                            f"`mica wait {submission_id}` waits again.", ExitCode.TIMEOUT)
        time.sleep(args.interval)


def _show(submission):
    print(f"{submission['uuid']}: {submission['status']}"
          + (f" ({submission['status_reason']})" if submission.get("status_reason") else ""))
    for problem in submission.get("problems") or []:
        print(f"  {problem}")
    for name, value in (submission.get("metrics") or {}).items():
        print(f"  {name}: {value}")


def _outcome(submission):
    return {"invalid": ExitCode.INVALID, "failed": ExitCode.FAILED,
            "cancelled": ExitCode.FAILED}.get(submission["status"], ExitCode.OK)


def cmd_leaderboard(args):
    client = _client()
    phase = _phase(client.challenge(args.challenge), args.phase)
    rows = client.leaderboard(phase["id"], private=args.private)
    if args.json:
        return print(json.dumps(rows, indent=2))
    _table([{**r, "rank": r["rank"] if r["rank"] is not None else "-"} for r in rows],
           [("rank", "RANK"), ("team", "TEAM"), ("score", phase["primary_metric"].upper()),
            ("submitted_at", "SUBMITTED")])


def cmd_submissions(args):
    client = _client()
    phase = _phase(client.challenge(args.challenge), args.phase)
    rows = [s for s in client.submissions() if s["phase"] == phase["id"]]
    if args.json:
        return print(json.dumps(rows, indent=2))
    _table([{**s, "score": (s.get("metrics") or {}).get(phase["primary_metric"])} for s in rows],
           [("uuid", "ID"), ("created_at", "SUBMITTED"), ("team", "TEAM"), ("status", "STATUS"),
            ("score", phase["primary_metric"].upper()), ("original_filename", "FILE")])


def _parser():
    parser = argparse.ArgumentParser(prog="mica", description="The command-line client of a Mica challenge site.")
    parser.add_argument("--version", action="version", version=f"mica-client {__version__}")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name, function, help_text):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(function=function)
        return sub

    login = command("login", cmd_login, "store an API token for a site (asks for your password)")
    login.add_argument("--url", help="the site, e.g. https://mica.example.org")
    login.add_argument("--username")
    login.add_argument("--token", help="a token you already have (instead of username and password)")
    logout = command("logout", cmd_logout, "revoke the token and forget it")
    logout.add_argument("--keep-token", action="store_true", help="forget it here but do not revoke it")
    for name, function, help_text in [("challenges", cmd_challenges, "list the challenges you see")]:
        command(name, function, help_text).add_argument("--json", action="store_true")
    phases = command("phases", cmd_phases, "list a challenge's phases")
    phases.add_argument("challenge")
    phases.add_argument("--json", action="store_true")
    data = command("data", cmd_data, "list a challenge's data releases")
    data.add_argument("challenge")
    get = command("download", cmd_download, "download data releases (resumes an interrupted download)")
    get.add_argument("challenge")
    get.add_argument("--release", help="a release's id or name (default: every ready release)")
    get.add_argument("--output", default=".", help="the folder to write into (default: here)")
    validate = command("validate", cmd_validate, "check a predictions file with the evaluator's own checks")
    validate.add_argument("challenge")
    validate.add_argument("predictions")
    validate.add_argument("--phase", help="id or name (default: the one open phase)")
    submit = command("submit", cmd_submit, "submit a predictions file")
    submit.add_argument("challenge")
    submit.add_argument("predictions")
    submit.add_argument("--phase", help="id or name (default: the one open phase)")
    submit.add_argument("--comment")
    submit.add_argument("--wait", action="store_true", help="wait for the score")
    status = command("status", cmd_status, "show a submission's status and scores")
    status.add_argument("submission")
    wait = command("wait", cmd_wait, "wait until a submission is scored")
    wait.add_argument("submission")
    for sub in (submit, wait):
        sub.add_argument("--timeout", type=float, default=3600, help="seconds (default 3600)")
        sub.add_argument("--interval", type=float, default=5, help="seconds between polls (default 5)")
    board = command("leaderboard", cmd_leaderboard, "show a phase's leaderboard")
    board.add_argument("challenge")
    board.add_argument("--phase")
    board.add_argument("--private", action="store_true", help="the private leaderboard (once revealed)")
    board.add_argument("--json", action="store_true")
    mine = command("submissions", cmd_submissions, "your team's submissions to a phase")
    mine.add_argument("challenge")
    mine.add_argument("--phase")
    mine.add_argument("--json", action="store_true")
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    try:
        return args.function(args) or ExitCode.OK
    except MicaError as error:
        print(f"mica: {error}", file=sys.stderr)
        return error.code
    except KeyboardInterrupt:
        print("mica: interrupted", file=sys.stderr)
        return 130
