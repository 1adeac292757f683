"""Faults during a burst of submissions: workers killed while they score, the broker stopped and
restarted while teams upload. Prints what was submitted, scored, failed and lost, and how long
the queue took to drain after the last fault.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mica python benchmarks/faults.py
    python benchmarks/faults.py --submissions 30 --kills 2      # quick

Real components only: PostgreSQL (a throw-away ``test_<name>`` database), a Redis server of its
own that this script starts on --redis-port (so stopping it disturbs nothing else) and restarts
*without persistence*, so every queued message is lost, the worst case; real Celery worker
processes killed with SIGKILL. The sweep that Celery beat runs every 30 s in production runs
here every --sweep seconds. Goal (issue 20): 0 failed for a crash alone, 0 lost, drained within
5 minutes of the last fault.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "platform"), str(ROOT)]

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--submissions", type=int, default=100)
parser.add_argument("--cases", type=int, default=20_000, help="test-set size: scoring takes a moment")
parser.add_argument("--workers", type=int, default=2)
parser.add_argument("--kills", type=int, default=4, help="workers killed with SIGKILL while scoring")
parser.add_argument("--redis-port", type=int, default=6391)
parser.add_argument("--broker-outage", type=float, default=10.0, help="seconds the broker is down")
parser.add_argument("--sweep", type=float, default=5.0, help="seconds between sweeps")
parser.add_argument("--drain-limit", type=float, default=300.0)
args = parser.parse_args()

BROKER = f"redis://127.0.0.1:{args.redis_port}/0"
os.environ.update(
    DJANGO_SETTINGS_MODULE="tests.settings", CELERY_BROKER_URL=BROKER, MICA_LEASE_SECONDS="5",
    MICA_REDISPATCH_SECONDS="15", MICA_VAR_DIR=os.environ.get("MICA_VAR_DIR") or tempfile.mkdtemp(prefix="mica-faults-"),
)

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402

from tests.site.workers import Worker  # noqa: E402


class Broker:
    """A Redis server of this script's own, stopped and started at will, keeping nothing on disk."""

    def __init__(self, port):
        self.port, self.process = port, None
        self.folder = tempfile.mkdtemp(prefix="mica-faults-redis-")

    def start(self):
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.folder], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for _ in range(100):
            if subprocess.run(["redis-cli", "-p", str(self.port), "ping"], capture_output=True).stdout.strip() == b"PONG":
                return
            time.sleep(0.05)
        raise RuntimeError("the script's Redis did not start")

    def stop(self):
        self.process.kill()
        self.process.wait()


def build(n_cases):
    from mica.challenges.models import Challenge, Phase, Team, TestSet

    organizer = User.objects.create_user("organizer")
    challenge = Challenge.objects.create(slug="faults", title="Faults", task_type="classification",
                                         state=Challenge.State.PUBLISHED, created_by=organizer)
    challenge.add_organizer(organizer)
    rng = random.Random(0)
    case_ids = [f"case-{i:06d}" for i in range(n_cases)]
    labels = [rng.randint(0, 1) for _ in case_ids]
    labels[:2] = [0, 1]
    truth = "case_id,label\n" + "".join(f"{c},{y}\n" for c, y in zip(case_ids, labels))
    test_set = TestSet.create_from_upload(challenge, "Hidden", SimpleUploadedFile("t.csv", truth.encode()),
                                          user=organizer, seed=1)
    now = timezone.now()
    phase = Phase.objects.create(challenge=challenge, name="Final", test_set=test_set, primary_metric="auc",
                                 starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1),
                                 daily_limit=10**6, concurrent_limit=10**6)
    users = []
    for i in range(10):
        user = User.objects.create_user(f"team{i}")
        challenge.register(user)
        Team.create_for(challenge, user, f"Team {i}")
        users.append(user)
    return phase, users, case_ids, labels


def predictions(case_ids, labels, seed):
    rng = random.Random(seed)
    rows = "".join(f"{c},{min(1.0, max(0.0, 0.35 * y + rng.random() * 0.65)):.5f}\n" for c, y in zip(case_ids, labels))
    return SimpleUploadedFile("p.csv", ("case_id,score\n" + rows).encode())


def counts():
    from mica.evaluations.models import Evaluation

    by_status = dict(Evaluation.objects.values_list("status").annotate(n=django.db.models.Count("pk")).order_by())
    connection.close()
    return by_status


def main():
    from mica.core.tasks import sweep
    from mica.evaluations.models import Evaluation
    from mica.submissions.models import Submission

    print(f"load average before: {os.getloadavg()}, cores: {os.cpu_count()}")
    broker = Broker(args.redis_port)
    broker.start()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0)
    logs = Path(tempfile.mkdtemp(prefix="mica-faults-logs-"))
    workers, stop_sweeping = [], threading.Event()
    try:
        phase, users, case_ids, labels = build(args.cases)

        def sweeper():
            while not stop_sweeping.wait(args.sweep):
                try:
                    sweep()
                except Exception as error:  # the broker is down: the next sweep tries again
                    print(f"  sweep: {type(error).__name__}")
                finally:
                    connection.close()

        threading.Thread(target=sweeper, daemon=True).start()
        workers = [Worker(logs / f"worker-{i}.log", queues="cpu,gpu", MICA_LEASE_SECONDS="5")
                   for i in range(args.workers)]
        start = time.monotonic()
        kill_at = sorted(random.Random(1).sample(range(5, args.submissions - 5), args.kills))
        outage_at = args.submissions // 2
        submitted, refused, kills, last_fault = 0, 0, 0, start
        for i in range(args.submissions):
            if i == outage_at:
                print(f"  t={time.monotonic() - start:5.1f}s broker stopped (queued messages are lost with it)")
                broker.stop()
                outage_ends = time.monotonic() + args.broker_outage
            if i in kill_at:
                victim = random.Random(i).randrange(len(workers))
                workers[victim].kill()
                kills += 1
                print(f"  t={time.monotonic() - start:5.1f}s worker {victim} killed with SIGKILL")
                workers[victim] = Worker(logs / f"worker-{victim}-{i}.log", queues="cpu,gpu", MICA_LEASE_SECONDS="5")
                last_fault = time.monotonic()
            try:
                Submission.create(phase=phase, user=users[i % len(users)],
                                  uploaded_file=predictions(case_ids, labels, i))
                submitted += 1
            except Exception as error:
                refused += 1
                print(f"  submission {i} refused: {error}")
            if i >= outage_at and broker.process.poll() is not None and time.monotonic() >= outage_ends:
                broker.start()
                last_fault = time.monotonic()
                print(f"  t={time.monotonic() - start:5.1f}s broker back")
            time.sleep(0.3)
        if broker.process.poll() is not None:
            broker.start()
            last_fault = time.monotonic()
        deadline = last_fault + args.drain_limit
        while time.monotonic() < deadline:
            found = counts()
            if not found.get("queued") and not found.get("running"):
                break
            time.sleep(1)
        drained = time.monotonic() - last_fault
        found = counts()
        expected = 2 * submitted
        evaluations = Evaluation.objects.count()
        attempts = list(Evaluation.objects.filter(attempts__gt=1).values_list("attempts", flat=True))
        print(f"\n{submitted} submitted ({refused} refused), {expected} evaluations expected, {evaluations} exist")
        print(f"  scored:  {found.get('succeeded', 0)}")
        print(f"  failed:  {found.get('failed', 0)}")
        print(f"  lost (still queued or running after {args.drain_limit:.0f} s): "
              f"{found.get('queued', 0) + found.get('running', 0)}")
        print(f"  taken over after a crash (attempts > 1): {len(attempts)}")
        print(f"  faults: {kills} worker kills, one broker outage of {args.broker_outage:.0f} s")
        print(f"  drained {drained:.1f} s after the last fault (goal: within 300 s)")
    finally:
        stop_sweeping.set()
        for worker in workers:
            worker.stop()
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)
        if broker.process.poll() is None:
            broker.stop()
        shutil.rmtree(broker.folder, ignore_errors=True)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
