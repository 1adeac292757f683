"""Site workers against a real Mica: claim-to-result time of one evaluation with a trivial
container, and evaluations per minute with 1, 2 and 4 workers of one site.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mica python benchmarks/site_worker.py [--jobs 8] [--repeats 5]

Starts gunicorn (2 workers, production settings) on a throw-away database, adds a site with a
token and a busybox container that writes a constant score for each case (the tests' image),
gives each worker process its own data folder of 50 cases, and runs ``python -m evaluator
site-worker --exit-when-idle``. Claim-to-result is the job's lease start to its stored result
(download and check of the image, unpacking, the sandbox, scoring, the post), as Mica records
it; throughput is the wall time from the workers' start until every job is stored. Bounded:
at most 4 workers and --jobs jobs a round. Prints the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "platform"), str(ROOT)]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ.setdefault("MICA_VAR_DIR", tempfile.mkdtemp(prefix="mica-sitebench-"))

import django  # noqa: E402

django.setup()

import requests  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402


def build(work):
    from mica.algorithms.models import Algorithm, ContainerImage
    from mica.challenges.models import Challenge, ChallengeRole, Phase, Role, Team, TestSet
    from mica.sites.models import Site
    from django.core.files.uploadedfile import SimpleUploadedFile
    from tests.site.containers import PREDICT, image_archive

    organizer = User.objects.create_user("bench-organizer", "o@example.org", "x" * 20)
    admin = User.objects.create_user("bench-site-admin", "a@example.org", "x" * 20)
    challenge = Challenge.objects.create(slug="bench", title="Bench", description="", terms="",
                                         task_type="classification",
                                         state=Challenge.State.PUBLISHED, created_by=organizer)
    ChallengeRole.objects.create(challenge=challenge, user=organizer, role=Role.ORGANIZER)
    truth = "case_id,pneumonia\n" + "".join(f"c{i},{i % 2}\n" for i in range(20))
    TestSet.create_from_upload(challenge, "Hidden", SimpleUploadedFile("truth.csv", truth.encode()), user=organizer,
                               seed=1)
    now = timezone.now()
    phase = Phase.objects.create(challenge=challenge, name="Final", test_set=challenge.test_sets.get(),
                                 starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1),
                                 primary_metric="auc", secondary_metrics=["log_loss"], accepts_containers=True,
                                 container_total_seconds=120, container_memory_mb=256)
    participant = User.objects.create_user("bench-participant", "p@example.org", "x" * 20)
    challenge.register(participant)
    team = Team.create_for(challenge, participant, "Bench team")
    path, _ = image_archive(work / "model.tar", PREDICT)
    algorithm = Algorithm.objects.create(challenge=challenge, team=team, image=ContainerImage.store(str(path)),
                                         name="model.tar", uploaded_by=participant)
    site = Site.objects.create(phase=phase, name="Bench hospital", metrics=["auc", "log_loss"], admin=admin,
                               created_by=organizer)
    _, raw = site.issue_token(admin)
    token = work / "token"
    token.write_text(raw)
    return site, algorithm, admin, token


def data_folder(folder, n_cases=50):
    (folder / "images").mkdir(parents=True)
    cases = []
    for i in range(n_cases):
        (folder / "images" / f"s{i}.png").write_bytes(b"x")
        cases.append(f'{{"case_id": "s{i}", "files": ["images/s{i}.png"]}}')
    (folder / "cases.json").write_text('{"cases": [' + ", ".join(cases) + "]}")
    (folder / "truth.csv").write_text("case_id,pneumonia\n" + "".join(f"s{i},{i % 2}\n" for i in range(n_cases)))
    return folder


def run_round(site, algorithm, admin, token, server, work, n_workers, n_jobs):
    from mica.sites.models import SiteJob

    jobs = [SiteJob.queue(site=site, algorithm=algorithm, user=admin) for _ in range(n_jobs)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    folders = [data_folder(work / f"round{n_workers}-{n_jobs}-{index}-{time.time_ns()}") for index in range(n_workers)]
    started = time.perf_counter()
    workers = [subprocess.Popen([sys.executable, "-m", "evaluator", "site-worker", "--server", server,
                                 "--token-file", str(token), "--exit-when-idle", "--data", str(folder)],
                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
               for folder in folders]
    for worker in workers:
        worker.wait(timeout=600)
    wall = time.perf_counter() - started
    stored = list(SiteJob.objects.filter(pk__in=[job.pk for job in jobs]))
    assert all(job.status == "succeeded" for job in stored), [job.status_reason for job in stored]
    return wall, [(job.completed_at - job.started_at).total_seconds() for job in stored]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}, cores: {os.cpu_count()}")
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0)
    database = connection.settings_dict
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(os.environ, DEBUG="0", SECRET_KEY="sitebench", ALLOWED_HOSTS="127.0.0.1", SECURE_SSL_REDIRECT="0",
               DATABASE_URL=f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
               PYTHONPATH=f"{ROOT / 'platform'}{os.pathsep}{ROOT}", WEB_CONCURRENCY="2",
               GUNICORN_BIND=f"127.0.0.1:{port}")
    env.pop("DJANGO_SETTINGS_MODULE")
    server = None
    work = Path(tempfile.mkdtemp(prefix="mica-sitebench-work-"))
    try:
        site, algorithm, admin, token = build(work)
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "docker/gunicorn.conf.py"),
                                   "--access-logfile", "/dev/null", "config.wsgi"], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        for _ in range(150):
            try:
                requests.get(f"{base}/", timeout=30)
                break
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.2)
        single = []
        for _ in range(args.repeats):
            _, durations = run_round(site, algorithm, admin, token, base, work, 1, 1)
            single += durations
        print(f"\nclaim-to-result, one evaluation, trivial container, 50 cases ({args.repeats} runs): "
              f"median {statistics.median(single):.2f} s (min {min(single):.2f}, max {max(single):.2f})")
        print(f"\n{'workers':>7} {'jobs':>5} {'wall s':>7} {'evals/min':>9} {'median claim-to-result s':>25}")
        for n_workers in (1, 2, 4):
            wall, durations = run_round(site, algorithm, admin, token, base, work, n_workers, args.jobs)
            print(f"{n_workers:>7} {args.jobs:>5} {wall:>7.1f} {60 * args.jobs / wall:>9.1f} "
                  f"{statistics.median(durations):>25.2f}")
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
