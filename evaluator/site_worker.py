"""A hospital's site worker: scores Mica's algorithm containers inside the firewall.

``python -m evaluator site-worker --server URL --token-file FILE --data DIR``

It only ever makes outbound HTTP(S) requests to Mica (``requests``): it claims a job for its site
with a lease, renews the lease while it works, downloads the container image (checking its
sha256 and image digest), runs it on the local images in the sandbox (:mod:`evaluator.containers`),
scores its predictions against the local truth (:func:`evaluator.score`), and posts back the
metrics with their intervals: never a case id, file name, image or truth value, and per-case values
only when the site's policy lets them leave (then as bare numbers, in the site's own case order).

The data folder ``DIR``::

    cases.json        {"cases": [{"case_id": "c1", "files": ["images/c1.png"]}, ...]}
    images/           the files cases.json lists (paths relative to DIR)
    truth.csv         the truth, in the evaluator's format (or truth/ or truth.zip of masks)
    results/          written: per algorithm digest, the full local result (per-case values
                      with case ids) and the container's predictions; comparisons read these
    pending/          written: results not yet accepted by Mica (posted again after a restart)
    cache/            written: downloaded image archives, by sha256
    audit.jsonl       written: every request body the worker sent, one JSON object a line

A result is kept in ``pending/`` until Mica answers; while Mica is down or unreachable, the
worker retries with exponential backoff (0.5 s doubling up to ``--max-backoff``), and when Mica
answers 429 (the token's rate limit) it waits as long as Retry-After says.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import requests

logger = logging.getLogger("evaluator.site_worker")

TRUTH_NAMES = ("truth.csv", "truth.zip", "truth")
REFUSED = {400, 403, 404, 409, 413}
CHUNK = 1024 * 1024


class WorkerStopped(Exception):
    """The server refused the token: the worker cannot go on."""


class DataFolder:
    """The site's data: read-only inputs, and the worker's own outputs beside them."""

    def __init__(self, root):
        self.root = Path(root).resolve()
        cases_file = self.root / "cases.json"
        if not cases_file.is_file():
            raise ValueError(f"{cases_file}: missing (the site's case list, as the container contract's cases.json)")
        try:
            listed = json.loads(cases_file.read_text())["cases"]
            self.cases = {str(case["case_id"]): [str(f) for f in case["files"]] for case in listed}
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"{cases_file}: expected {{\"cases\": [{{\"case_id\", \"files\"}}, ...]}} ({error})")
        if not self.cases:
            raise ValueError(f"{cases_file}: lists no case")
        self.truth = next((self.root / name for name in TRUTH_NAMES if (self.root / name).exists()), None)
        if self.truth is None:
            raise ValueError(f"{self.root}: no truth ({', '.join(TRUTH_NAMES)})")
        for name in ("results", "pending", "cache"):
            (self.root / name).mkdir(exist_ok=True)
        self.audit = self.root / "audit.jsonl"

    def result_path(self, digest):
        return self.root / "results" / f"{digest.replace(':', '-')}.json"

    def prepare_input(self, input_dir):
        """The container's /input: the listed files (hard links where possible) and cases.json."""
        from .containers import write_cases

        for files in self.cases.values():
            for name in files:
                source, target = self.root / name, Path(input_dir) / name
                if not source.resolve().is_relative_to(self.root) or not source.is_file():
                    raise ValueError(f"{self.root / 'cases.json'}: the file {name!r} is not a file inside {self.root}")
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(source, target)
                except OSError:
                    shutil.copyfile(source, target)
        write_cases(input_dir, self.cases)


class SiteWorker:
    def __init__(self, server, token, data, *, backend="bwrap", poll_seconds=5.0, max_backoff=60.0,
                 exit_when_idle=False, request_timeout=60.0, output_bytes=None, output_files=None):
        from .containers import Limits

        self.server = server.rstrip("/")
        self.data = DataFolder(data)
        self.backend = backend
        # The caps on /output guard this machine's disk: the site's own choice, not Mica's.
        # Checked now (Limits refuses a cap that is not a positive number), not at the first job.
        caps = Limits(**{name: value for name, value in (("output_bytes", output_bytes),
                                                          ("output_files", output_files)) if value is not None})
        self.output_bytes, self.output_files = caps.output_bytes, caps.output_files
        self.poll_seconds = poll_seconds
        self.max_backoff = max_backoff
        self.exit_when_idle = exit_when_idle
        self.timeout = request_timeout
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"
        self._audit_lock = threading.Lock()

    # -- HTTP --------------------------------------------------------------------------------
    def _audit(self, method, path, body):
        line = json.dumps({"at": datetime.now(timezone.utc).isoformat(), "method": method, "path": path,
                           "body": body}, sort_keys=True)
        with self._audit_lock, open(self.data.audit, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")

    def _send(self, method, path, body=None, *, session=None, **kwargs):
        """One request, its body written to the audit log first. Network errors propagate."""
        self._audit(method, path, body)
        return (session or self.session).request(method, self.server + path, json=body, timeout=self.timeout,
                                                  **kwargs)

    def _send_until_answered(self, method, path, body=None, **kwargs):
        """Sends until Mica answers with anything but a server error, backing off exponentially."""
        pause = 0.5
        while True:
            try:
                response = self._send(method, path, body, **kwargs)
            except requests.RequestException as error:
                logger.warning("Mica unreachable (%s); trying again in %.1f s", type(error).__name__, pause)
            else:
                if response.status_code == 401:
                    raise WorkerStopped(f"Mica refused the token: {_detail(response)}")
                if response.status_code == 429:  # the token's rate limit: wait as long as Mica says
                    wait = _retry_after(response, pause)
                    logger.warning("Mica asked the worker to slow down (429); trying again in %.1f s", wait)
                    time.sleep(wait)
                    continue
                if response.status_code < 500:
                    return response
                logger.warning("Mica answered %s; trying again in %.1f s", response.status_code, pause)
            time.sleep(pause)
            pause = min(pause * 2, self.max_backoff)

    # -- the loop ----------------------------------------------------------------------------
    def run(self):
        while True:
            self.post_pending()
            response = self._send_until_answered("POST", "/sites/api/claim", {})
            if response.status_code == 204:
                if self.exit_when_idle:
                    return
                time.sleep(self.poll_seconds)
                continue
            if response.status_code != 200:
                raise WorkerStopped(f"The claim was refused ({response.status_code}): {_detail(response)}")
            self.work(response.json())

    def work(self, job):
        logger.info("claimed %s job %s", job["kind"], job["job"])
        lost = threading.Event()
        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(job, stop, lost), daemon=True)
        beat.start()
        try:
            body = self.evaluate(job) if job["kind"] == "evaluate" else self.compare(job)
        except Exception as error:  # the job fails; the reason that leaves names no local data
            logger.exception("job %s failed", job["job"])
            body = {"status": "failed", "reason": f"The site worker failed ({type(error).__name__}); "
                                                  "the site's admin has the details in the worker's log."}
        finally:
            stop.set()
            beat.join()
        if lost.is_set():
            logger.warning("job %s: the lease was lost while working; its result stays local", job["job"])
            return
        body["lease"] = job["lease"]
        pending = self.data.root / "pending" / f"{job['job']}.json"
        _write_atomically(pending, {"job": job["job"], "body": body})
        self.post_pending()

    def _heartbeat(self, job, stop, lost):
        session = requests.Session()
        session.headers.update(self.session.headers)
        path = f"/sites/api/jobs/{job['job']}/heartbeat"
        interval = max(job["lease_seconds"] / 3, 0.2)
        pause = interval
        while not stop.wait(pause):
            pause = interval
            try:
                response = self._send("POST", path, {"lease": job["lease"]}, session=session)
            except requests.RequestException:
                continue  # Mica unreachable: the next beat tries again
            if response.status_code == 429:  # rate limited: beat again as soon as Mica allows
                pause = _retry_after(response, interval)
            elif response.status_code == 409:
                lost.set()
                return

    def post_pending(self):
        """Posts every result kept on disk, oldest first; each leaves pending/ once Mica answered."""
        for path in sorted((self.data.root / "pending").glob("*.json"), key=lambda p: p.stat().st_mtime):
            kept = json.loads(path.read_text())
            response = self._send_until_answered("POST", f"/sites/api/jobs/{kept['job']}/result", kept["body"])
            if response.status_code in REFUSED:
                logger.error("Mica refused the result of job %s (%s): %s", kept["job"], response.status_code,
                             _detail(response))
                refused = self.data.root / "results" / "refused"
                refused.mkdir(exist_ok=True)
                os.replace(path, refused / path.name)
            else:
                logger.info("job %s: result stored (%s)", kept["job"], response.status_code)
                path.unlink()

    # -- an evaluation -----------------------------------------------------------------------
    def download_image(self, job):
        """The archive in cache/, by sha256; refused unless its sha256 and image digest match."""
        from . import containers

        wanted = job["image"]
        cached = self.data.root / "cache" / f"{wanted['sha256']}.tar"
        if not cached.exists():
            response = self._send_until_answered("GET", wanted["url"], None, stream=True,
                                                 headers={"X-Mica-Lease": job["lease"]})
            if response.status_code != 200:
                raise ValueError(f"the image download was refused ({response.status_code}): {_detail(response)}")
            digest = hashlib.sha256()
            partial = cached.with_suffix(f".part{os.getpid()}")
            with open(partial, "wb") as fh:
                for chunk in response.iter_content(CHUNK):
                    digest.update(chunk)
                    fh.write(chunk)
            if digest.hexdigest() != wanted["sha256"]:
                partial.unlink()
                raise ValueError("the downloaded image's sha256 does not match the one Mica announced")
            os.replace(partial, cached)
        if containers.image_digest(cached) != wanted["digest"]:
            raise ValueError("the image archive's digest does not match the algorithm's")
        return cached

    def container_limits(self, claimed):
        """The run's limits: the phase's time, memory and CPUs from the claim, and this site's
        caps on /output (the file cap never below the site's own cases)."""
        from .containers import Limits
        from .containers.outputs import files_cap_for

        return Limits(wall_seconds=claimed["wall_seconds"], memory_bytes=claimed["memory_bytes"], cpus=claimed["cpus"],
                      output_bytes=self.output_bytes,
                      output_files=files_cap_for(self.output_files, len(self.data.cases)))

    def evaluate(self, job):
        import evaluator
        from . import containers

        archive = self.download_image(job)
        limits = job["limits"]
        with tempfile.TemporaryDirectory(prefix="mica-site-") as work:
            work = Path(work)
            image = containers.load_image(archive, work / "image", max_unpacked_bytes=limits["max_unpacked_bytes"])
            input_dir, output_dir = work / "input", work / "output"
            input_dir.mkdir()
            output_dir.mkdir()
            self.data.prepare_input(input_dir)
            outcome = containers.run(image, input_dir, output_dir, backend=self.backend,
                                     limits=self.container_limits(limits))
            if outcome.status != "succeeded":
                # The container's logs may quote the site's data: they stay here.
                logger.warning("job %s: the container ended %s: %s", job["job"], outcome.status, outcome.reason)
                return {"status": "failed", "reason": f"The container ended: {outcome.status}."}
            predictions = containers.predictions_path(output_dir, job["task"])
            try:
                result = evaluator.score(job["task"], str(self.data.truth), str(predictions), job["options"],
                                         name="the container's predictions")
            except evaluator.SubmissionInvalid as invalid:
                logger.warning("job %s: invalid predictions:\n%s", job["job"], invalid)
                return {"status": "failed", "reason": f"The container's predictions are not valid "
                                                      f"({len(invalid.problems) + invalid.n_more} problems)."}
            kept = self.data.result_path(job["algorithm"]["digest"])
            if predictions.is_dir():
                shutil.copytree(predictions, kept.with_suffix(""), dirs_exist_ok=True)
            else:
                kept.with_suffix("").mkdir(exist_ok=True)
                shutil.copyfile(predictions, kept.with_suffix("") / predictions.name)
        _write_atomically(kept, {"job": job["job"], "algorithm": job["algorithm"], "result": result})
        return site_result(result, job["metrics"], list(self.data.cases), job["share_per_case"])

    # -- a comparison ------------------------------------------------------------------------
    def compare(self, job):
        """A paired test of two algorithms this folder has scored; only the p-value leaves."""
        metric = job["metric"]
        results = []
        for algorithm in (job["algorithm"], job["other_algorithm"]):
            path = self.data.result_path(algorithm["digest"])
            if not path.is_file():
                return {"status": "failed", "reason": "This worker's data folder has no result of one of the "
                                                      "algorithms; run the comparison where both were scored."}
            results.append(json.loads(path.read_text())["result"])
        values = [_per_case(result, metric, list(self.data.cases)) for result in results]
        if all(v is not None for v in values):
            p, method = paired_wilcoxon(*values)
        elif job["task"] == "classification" and metric == "auc":
            p, method = self.delong(job)
        else:
            return {"status": "failed", "reason": f"No paired test for {metric!r} at the site."}
        return {"status": "succeeded", "p_values": {metric: p}, "method": method}

    def delong(self, job):
        from .statistics import pairwise_delong_test

        ids = list(self.data.cases)
        with open(self.data.truth, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.reader(fh))
        if len(rows[0]) != 2:
            raise ValueError("the DeLong comparison takes a binary truth (case_id,label)")
        labels = {row[0]: float(row[1]) for row in rows[1:] if row}
        scores = []
        for algorithm in (job["algorithm"], job["other_algorithm"]):
            folder = self.data.result_path(algorithm["digest"]).with_suffix("")
            with open(folder / "predictions.csv", newline="", encoding="utf-8-sig") as fh:
                predicted = {row[0]: float(row[1]) for row in list(csv.reader(fh))[1:] if row}
            scores.append([predicted.get(case, 0.0) for case in ids])
        _, _, p = pairwise_delong_test([labels[case] for case in ids], scores)
        return float(p[0, 1]), "DeLong test of paired AUCs (two-sided)"


def site_result(result, metrics, case_order, share_per_case):
    """What leaves the site from an evaluator result: the site's metrics, their 95% intervals
    as ``[low, high]`` (the evaluator's own: DeLong for AUC, a bootstrap otherwise), the case
    counts, and per-case values only when allowed, as bare numbers in the site's case order."""
    values, intervals = result["metrics"], result.get("intervals") or {}
    body = {"status": "succeeded", "n_cases": result["n_cases"], "missing_cases": result.get("missing_cases", 0),
            "metrics": {name: values.get(name) for name in metrics},
            "intervals": {name: [intervals[name]["low"], intervals[name]["high"]] for name in metrics
                          if name in intervals and None not in (intervals[name]["low"], intervals[name]["high"])}}
    if share_per_case:
        per_case = {name: _per_case(result, name, case_order) for name in metrics}
        body["per_case"] = {name: v for name, v in per_case.items() if v is not None}
    return body


def _per_case(result, metric, case_order):
    """The metric's per-case values in the site's case order, or None when it has none."""
    rows = {row.get("case_id"): row for row in result.get("per_case", [])}
    if not rows or not all(metric in row for row in rows.values()):
        return None
    return [rows[case].get(metric) if case in rows else None for case in case_order]


def paired_wilcoxon(first, second):
    from scipy.stats import wilcoxon

    pairs = [(a, b) for a, b in zip(first, second) if a is not None and b is not None]
    if len(pairs) < 2 or all(a == b for a, b in pairs):
        return 1.0, "Wilcoxon signed-rank test of paired per-case values (two-sided)"
    a, b = zip(*pairs)
    return float(wilcoxon(a, b).pvalue), "Wilcoxon signed-rank test of paired per-case values (two-sided)"


def _detail(response):
    try:
        return response.json().get("detail", response.text[:200])
    except ValueError:
        return response.text[:200]


def _retry_after(response, default):
    """The seconds a 429's Retry-After asks for (a number of seconds), else `default`."""
    try:
        return max(float(response.headers.get("Retry-After", "")), 0.0)
    except ValueError:
        return default


def _write_atomically(path, data):
    partial = path.with_suffix(f".tmp{os.getpid()}")
    partial.write_text(json.dumps(data))
    os.replace(partial, path)


def add_parser(subparsers):
    p = subparsers.add_parser("site-worker",
                              help="score Mica's containers on a hospital's own data (outbound HTTP only)")
    p.add_argument("--server", required=True, help="Mica's address, e.g. https://mica.example.org")
    p.add_argument("--token-file", required=True, help="a file holding the site's token (mica-site-…)")
    p.add_argument("--data", required=True, help="the site's data folder (cases.json, images/, truth.csv)")
    p.add_argument("--backend", default="bwrap", help="the sandbox: bwrap (default), docker or podman")
    p.add_argument("--poll-seconds", type=float, default=5.0, help="pause between claims when no job waits")
    p.add_argument("--max-backoff", type=float, default=60.0, help="the longest pause between retries")
    p.add_argument("--exit-when-idle", action="store_true", help="stop once no job waits (for cron and tests)")
    p.add_argument("--output-bytes", type=int, help="the most a run may leave in /output (default 2 GiB)")
    p.add_argument("--output-files", type=int,
                   help="the most files and folders a run may leave in /output (default 50,000; never fewer than "
                        "the site's cases and 100 more)")
    return p


def main(args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s site-worker %(levelname)s %(message)s",
                        stream=sys.stderr)
    try:
        token = Path(args.token_file).read_text().strip()
        worker = SiteWorker(args.server, token, args.data, backend=args.backend, poll_seconds=args.poll_seconds,
                            max_backoff=args.max_backoff, exit_when_idle=args.exit_when_idle,
                            output_bytes=args.output_bytes, output_files=args.output_files)
        worker.run()
    except WorkerStopped as stopped:
        print(f"error: {stopped}", file=sys.stderr)
        return 3
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
