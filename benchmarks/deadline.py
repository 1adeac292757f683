"""The deadline day, measured: 1,400 teams, most submitting in the final hour, against the site
(gunicorn, real HTTP uploads with API tokens) with 1, 2 and 4 scoring workers (plus one worker
for the cpu queue, as the compose file deploys them).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mica python benchmarks/deadline.py
    python benchmarks/deadline.py --teams 200 --hour 60 --workers 1,2     # quick

Prints, per worker count: upload latency (p50, p95, p99), time from upload to scored, throughput,
leaderboard latency under the load, how far the board lags (its age while newer results wait,
from the API's Last-Modified and Mica-Refresh-Pending; how many refreshes ran, how long the last
took; when it showed the last score), and submissions lost or stuck (goal: 0); writes a plot of
queue depth and leaderboard latency against time (--plot).

The final hour is replayed compressed (--hour seconds of wall clock; 120 s = 30x): arrivals
rise toward the deadline (the density grows linearly, so half of them come in the last 29%).
From the run this measures the workers' scoring capacity (evaluations a second while the queue
is never empty) and then answers the question for the real, uncompressed hour with a fluid
queue: the same arrivals spread over 3,600 s, served at the measured capacity; how long after
the deadline the queue is empty. That extrapolation assumes capacity does not depend on the
arrival rate, which holds while web and workers do not starve each other of CPU; the script
prints the load average so the reader can judge.

Real components only: PostgreSQL (a throw-away ``test_<name>`` database), a Redis server of the
script's own on --redis-port, gunicorn serving the site, Celery worker processes. Only
127.0.0.1 is contacted; every count and time is bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "platform"), str(ROOT)]

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--teams", type=int, default=1400)
parser.add_argument("--per-team", type=float, default=1.5, help="submissions per team in the final hour, on average")
parser.add_argument("--hour", type=float, default=120.0, help="wall-clock seconds that stand for the final hour")
parser.add_argument("--cases", type=int, default=3000, help="test-set size (RSNA 2018's stage 2: 3,000 images)")
parser.add_argument("--workers", default="1,2,4", help="worker counts to run, comma-separated")
parser.add_argument("--clients", type=int, default=24, help="concurrent uploading clients")
parser.add_argument("--web-workers", type=int, default=3)
parser.add_argument("--redis-port", type=int, default=6392)
parser.add_argument("--drain-limit", type=float, default=900.0, help="seconds to wait after the deadline")
parser.add_argument("--plot", default=str(ROOT / "benchmarks" / "out" / "deadline.png"))
args = parser.parse_args()

BROKER = f"redis://127.0.0.1:{args.redis_port}/0"
os.environ.update(
    DJANGO_SETTINGS_MODULE="tests.settings", CELERY_BROKER_URL=BROKER,
    MICA_VAR_DIR=os.environ.get("MICA_VAR_DIR") or tempfile.mkdtemp(prefix="mica-deadline-"),
)

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
import requests  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count, F  # noqa: E402
from django.utils import timezone  # noqa: E402

from tests.site.workers import Worker, worker_environment  # noqa: E402

REAL_HOUR = 3600.0
DRAIN_GOAL = 15 * 60.0


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Redis:
    def __init__(self, port):
        self.folder = tempfile.mkdtemp(prefix="mica-deadline-redis-")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.folder], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() == b"PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("the script's Redis did not start")

    def stop(self):
        self.process.kill()
        self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


class Web:
    """gunicorn serving the site on a free port of 127.0.0.1, as the production image runs it."""

    def __init__(self, log_path):
        self.url = f"http://127.0.0.1:{free_port()}"
        env = worker_environment(GUNICORN_BIND=self.url.removeprefix("http://"), WEB_CONCURRENCY=str(args.web_workers),
                                 GUNICORN_MAX_REQUESTS="0")
        self.log = open(log_path, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "docker" / "gunicorn.conf.py"), "config.wsgi"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/", timeout=10).status_code < 500:
                    return
            except requests.RequestException:  # not listening yet, or still importing the site
                time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not start; see {log_path}")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()


def build():
    """One published challenge, its hidden test set, and --teams teams with an API token each."""
    from rest_framework.authtoken.models import Token

    from mica.challenges.models import Challenge, ChallengeRole, Role, Team, TeamMembership, TestSet

    organizer = User.objects.create_user("organizer")
    challenge = Challenge.objects.create(slug="deadline", title="Deadline", task_type="classification",
                                         state=Challenge.State.PUBLISHED, created_by=organizer)
    challenge.add_organizer(organizer)
    rng = random.Random(0)
    case_ids = [f"case-{i:06d}" for i in range(args.cases)]
    labels = [rng.randint(0, 1) for _ in case_ids]
    labels[:2] = [0, 1]
    truth = "case_id,label\n" + "".join(f"{c},{y}\n" for c, y in zip(case_ids, labels))
    test_set = TestSet.create_from_upload(challenge, "Hidden", SimpleUploadedFile("t.csv", truth.encode()),
                                          user=organizer, seed=1)
    # Bulk rows: registering 1,400 teams one by one through the models would take minutes.
    users = User.objects.bulk_create([User(username=f"team{i}") for i in range(args.teams)])
    now = timezone.now()
    ChallengeRole.objects.bulk_create([ChallengeRole(challenge=challenge, user=u, role=Role.PARTICIPANT, approved_at=now,
                                                     accepted_terms_at=now)
                                       for u in users])
    teams = Team.objects.bulk_create([Team(challenge=challenge, name=f"Team {i}", created_by=u) for i, u in enumerate(users)])
    TeamMembership.objects.bulk_create([TeamMembership(challenge=challenge, team=t, user=u) for t, u in zip(teams, users)])
    tokens = Token.objects.bulk_create([Token(user=u, key=Token.generate_key()) for u in users])
    return challenge, test_set, [t.key for t in tokens], case_ids, labels


def new_phase(challenge, test_set, name):
    from mica.challenges.models import Phase

    now = timezone.now()
    return Phase.objects.create(challenge=challenge, name=name, test_set=test_set, primary_metric="auc",
                                starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1),
                                daily_limit=1000, total_limit=None, concurrent_limit=1000)


def arrival_times(n, seed):
    """Seconds into the (compressed) final hour; the density rises linearly to the deadline."""
    return np.sort(args.hour * np.sqrt(np.random.default_rng(seed).random(n)))


def predictions_csv(case_ids, labels, seed):
    rng = random.Random(seed)
    return "case_id,score\n" + "".join(
        f"{c},{min(1.0, max(0.0, 0.35 * y + rng.random() * 0.65)):.5f}\n" for c, y in zip(case_ids, labels))


def percentiles(values):
    if not len(values):
        return "n/a"
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return f"p50 {p50:.3f} s, p95 {p95:.3f} s, p99 {p99:.3f} s"


def fluid_drain(capacity, n_evaluations):
    """Seconds after the deadline until the queue is empty, for the real hour's arrivals
    (linearly rising density over 3,600 s) served at `capacity` evaluations a second."""
    dt = 1.0
    t = np.arange(0, REAL_HOUR, dt)
    arriving = n_evaluations * ((t + dt) ** 2 - t ** 2) / REAL_HOUR ** 2  # the density 2t/H², integrated
    queue = 0.0
    for a in arriving:
        queue = max(0.0, queue + a - capacity * dt)
    return queue / capacity if capacity > 0 else float("inf")


def run(n_workers, web, challenge, test_set, tokens, case_ids, labels, logs):
    from mica.evaluations.models import Evaluation
    from mica.leaderboards.models import BoardRefresh
    from mica.submissions.models import Submission

    phase = new_phase(challenge, test_set, f"Final with {n_workers} workers")
    n_submissions = int(round(args.teams * args.per_team))
    rng = random.Random(n_workers)
    schedule = [(t, tokens[rng.randrange(len(tokens))]) for t in arrival_times(n_submissions, seed=n_workers)]
    bodies = [predictions_csv(case_ids, labels, seed) for seed in range(20)]  # distinct files, built once
    # As docker/compose.yaml deploys them: scoring workers on the gpu queue, and one worker for
    # the cpu queue (leaderboard refreshes, plots, the outbox), so refreshing a 1,400-team board
    # never holds up scoring.
    workers = [Worker(logs / f"w{n_workers}-{i}.log", queues="gpu") for i in range(n_workers)]
    workers.append(Worker(logs / f"w{n_workers}-cpu.log", queues="cpu"))
    uploads, samples, stop = [], [], threading.Event()
    session_local = threading.local()

    def upload(token, body):
        session = getattr(session_local, "session", None) or requests.Session()
        session_local.session = session
        began = time.monotonic()
        try:
            response = session.post(f"{web.url}/api/v1/submissions/", headers={"Authorization": f"Token {token}"},
                                    data={"phase": phase.pk}, files={"predictions": ("p.csv", body)}, timeout=120)
            status = response.status_code
        except requests.RequestException as error:
            status = type(error).__name__
        uploads.append((began - start, time.monotonic() - began, status))

    def monitor():
        viewer = requests.Session()
        while not stop.is_set():
            began = time.monotonic()
            lag = float("nan")  # the board's age while newer results wait for its refresh; 0 when current
            try:
                response = viewer.get(f"{web.url}/api/v1/leaderboards/{phase.pk}/",
                                      headers={"Authorization": f"Token {tokens[0]}"}, timeout=60)
                board = time.monotonic() - began
                if response.headers.get("Mica-Refresh-Pending") == "true":
                    lag = time.time() - parsedate_to_datetime(response.headers["Last-Modified"]).timestamp()
                elif response.status_code == 200:
                    lag = 0.0
            except requests.RequestException:
                board = float("nan")
            depth = Evaluation.objects.filter(submission__phase=phase, status__in=Evaluation.UNFINISHED).count()
            done = Evaluation.objects.filter(submission__phase=phase, status="succeeded").count()
            connection.close()
            samples.append((time.monotonic() - start, depth, board, done, lag))
            stop.wait(1.0)

    try:
        time.sleep(3)  # the workers connect
        start = time.monotonic()
        watcher = threading.Thread(target=monitor, daemon=True)
        watcher.start()
        with ThreadPoolExecutor(args.clients) as pool:
            for i, (at, token) in enumerate(schedule):
                pause = at - (time.monotonic() - start)
                if pause > 0:
                    time.sleep(pause)
                pool.submit(upload, token, bodies[i % len(bodies)])
        deadline = max(args.hour, time.monotonic() - start)
        # Until the queue is empty and the board shows the last score (or the drain limit).
        while time.monotonic() - start < deadline + args.drain_limit:
            if samples and samples[-1][1] == 0 and samples[-1][0] > deadline and samples[-1][4] == 0:
                break
            time.sleep(1)
        stop.set()
        watcher.join()
    finally:
        for worker in workers:
            worker.stop()

    accepted = [u for u in uploads if u[2] == 201]
    refused = [u for u in uploads if u[2] != 201]
    evaluations = Evaluation.objects.filter(submission__phase=phase)
    unfinished = evaluations.filter(status__in=Evaluation.UNFINISHED).count()
    failed = evaluations.filter(status="failed").count()
    without = Submission.objects.filter(phase=phase, status="accepted").annotate(n=Count("evaluations")).filter(n=0).count()
    scored = evaluations.filter(split="public", status="succeeded").annotate(
        wait=F("completed_at") - F("submission__created_at")).values_list("wait", flat=True)
    waits = np.array([w.total_seconds() for w in scored])
    times = np.array([s[0] for s in samples])
    depths = np.array([s[1] for s in samples])
    done = np.array([s[3] for s in samples])
    busy = depths > n_workers  # the queue never ran dry: the workers worked at capacity
    capacity = float("nan")
    if busy.sum() >= 5:
        first, last = np.flatnonzero(busy)[[0, -1]]
        capacity = (done[last] - done[first]) / max(times[last] - times[first], 1e-9)
    drained_at = next((t for t, d in zip(times, depths) if t > deadline and d == 0), float("nan"))
    board_current_at = next((s[0] for s in samples if s[0] >= drained_at and s[4] == 0), float("nan"))
    refresh = BoardRefresh.objects.filter(phase=phase).first()
    n_evaluations = 2 * n_submissions
    if capacity == capacity:
        real_drain = fluid_drain(capacity, n_evaluations)
    else:  # the workers kept up with the compressed hour: the real one, slower, drains at least as fast
        real_drain = drained_at - deadline if drained_at == drained_at else float("nan")
    result = {
        "workers": n_workers, "submissions": len(uploads), "accepted": len(accepted), "refused": len(refused),
        "refused_statuses": sorted({str(u[2]) for u in refused}),
        "upload_latency": percentiles([u[1] for u in accepted]),
        "upload_to_scored": percentiles(waits),
        "throughput_evaluations_per_s": capacity,
        "leaderboard_latency": percentiles([s[2] for s in samples if s[2] == s[2]]),
        "board_lag_while_pending": percentiles([s[4] for s in samples if s[4] == s[4] and s[4] > 0]),
        "board_pending_share": float(np.mean([s[4] > 0 for s in samples if s[4] == s[4]])) if samples else float("nan"),
        "board_refreshes": refresh.refreshes if refresh else 0,
        "last_refresh_s": refresh.duration if refresh else float("nan"),
        "board_current_after_drain_s": board_current_at - drained_at,
        "drained_after_compressed_deadline_s": drained_at - deadline if drained_at == drained_at else None,
        "lost_or_stuck": unfinished + without, "failed": failed,
        "real_hour_drain_after_deadline_s": real_drain,
        "samples": samples,
    }
    # What the drain limit left is cancelled and its messages dropped, so the next worker count
    # starts from an empty queue.
    Evaluation.objects.filter(submission__phase=phase, status__in=Evaluation.UNFINISHED).update(
        status=Evaluation.Status.CANCELLED, status_reason="The benchmark stopped waiting.")
    subprocess.run(["redis-cli", "-p", str(args.redis_port), "flushall"], capture_output=True)
    connection.close()
    return result


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (queue_axis, board_axis) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    for result in results:
        samples = np.array(result["samples"], dtype=float)
        label = f"{result['workers']} worker{'s' if result['workers'] > 1 else ''}"
        queue_axis.plot(samples[:, 0], samples[:, 1], label=label)
        board_axis.plot(samples[:, 0], samples[:, 2] * 1000, label=label)
    for axis in (queue_axis, board_axis):
        axis.axvline(args.hour, color="grey", linestyle="--", linewidth=1)
        axis.grid(alpha=0.3)
    queue_axis.set_ylabel("evaluations waiting or running")
    board_axis.set_ylabel("leaderboard latency (ms)")
    board_axis.set_xlabel(f"seconds (the final hour compressed into {args.hour:g} s; dashed: the deadline)")
    queue_axis.legend()
    queue_axis.set_title(f"{args.teams} teams, {int(round(args.teams * args.per_team))} submissions in the final hour")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main():
    print(f"load average before: {os.getloadavg()}, cores: {os.cpu_count()}")
    redis_server = Redis(args.redis_port)
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)  # a killed run's database goes
    logs = Path(tempfile.mkdtemp(prefix="mica-deadline-logs-"))
    web, results = None, []
    try:
        challenge, test_set, tokens, case_ids, labels = build()
        connection.close()
        web = Web(logs / "web.log")
        for n_workers in [int(n) for n in args.workers.split(",")]:
            result = run(n_workers, web, challenge, test_set, tokens, case_ids, labels, logs)
            results.append(result)
            print(f"\n{n_workers} worker(s): {result['submissions']} uploads, {result['accepted']} accepted, "
                  f"{result['refused']} refused {result['refused_statuses'] or ''}")
            for key in ("upload_latency", "upload_to_scored", "leaderboard_latency"):
                print(f"  {key.replace('_', ' ')}: {result[key]}")
            print(f"  throughput at capacity: {result['throughput_evaluations_per_s']:.2f} evaluations/s")
            print(f"  board: {result['board_refreshes']} refreshes (the last took {result['last_refresh_s']:.1f} s); "
                  f"newer results waiting in {result['board_pending_share']:.0%} of the samples, the board then "
                  f"{result['board_lag_while_pending']} old; it showed the last score "
                  f"{result['board_current_after_drain_s']:.0f} s after the queue was empty")
            print(f"  queue empty {result['drained_after_compressed_deadline_s']} s after the compressed deadline")
            print(f"  unfinished when the script stopped waiting ({args.drain_limit:.0f} s after the deadline) "
                  f"or never queued: {result['lost_or_stuck']}, failed: {result['failed']}")
            drain = result["real_hour_drain_after_deadline_s"]
            print(f"  the real hour: queue empty {drain:.0f} s after the deadline "
                  f"({'within' if drain <= DRAIN_GOAL else 'NOT within'} 15 minutes)")
            print(f"  load average: {os.getloadavg()}")
    finally:
        if web:
            web.stop()
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)
        redis_server.stop()
    if results:
        plot(results, args.plot)
        summary = Path(args.plot).with_suffix(".json")
        summary.write_text(json.dumps([{k: v for k, v in r.items() if k != "samples"} for r in results], indent=2))
        print(f"\nplot: {args.plot}; figures: {summary}")
        enough = [r["workers"] for r in results if r["real_hour_drain_after_deadline_s"] <= DRAIN_GOAL]
        print(f"fewest workers that drain a {args.teams}-team final hour within 15 minutes of the deadline "
              f"on this machine: {min(enough) if enough else 'none of those run'}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
