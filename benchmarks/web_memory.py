"""Web-worker memory across hostile uploads, measured on a real gunicorn worker.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mica python benchmarks/web_memory.py

Starts gunicorn (one worker, the production settings with DEBUG off, max_requests off so the
worker is never recycled during the run) on a throw-away database, then sends, over HTTP with
a participant's token, the uploads the probe of issue 20 used: a 164 KB zip holding a 13000²
PNG, a zip holding a 500³ NIfTI against a 16³ truth, a 30 MB one-line CSV, a zip of 100,000
tiny files, and a zip that inflates to 200 MiB. Prints the worker's resident memory (VmRSS)
after each, its peak (VmHWM), and the figure the issue sets: under 300 MiB above idle.
"""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zipfile
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "platform"), str(ROOT)]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ.setdefault("MICA_VAR_DIR", tempfile.mkdtemp(prefix="mica-webmem-"))

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
import requests  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402
from PIL import Image  # noqa: E402


def mask_zip(masks):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in masks.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def png(array):
    out = io.BytesIO()
    Image.fromarray(array).save(out, format="PNG", optimize=True)
    return out.getvalue()


def nifti(shape):
    import nibabel

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "m.nii.gz"
        nibabel.save(nibabel.Nifti1Image(np.zeros(shape, np.uint8), np.eye(4)), path)
        return path.read_bytes()


def hostile_uploads():
    tiny = io.BytesIO()
    with zipfile.ZipFile(tiny, "w", zipfile.ZIP_DEFLATED) as archive:
        for i in range(100_000):
            archive.writestr(f"f{i}.png", b"x")
    return {
        "164 KB zip, one 13000² PNG": ("segmentation", "masks.zip", mask_zip({"case-0.png": png(np.zeros((13000, 13000), np.uint8))})),
        "zip, one 500³ NIfTI (truth 16³)": ("segmentation", "masks.zip", mask_zip({"case-0.nii.gz": nifti((500, 500, 500))})),
        "zip of 100,000 tiny files": ("segmentation", "masks.zip", tiny.getvalue()),
        "zip inflating 200 MiB (about 1000:1)": ("segmentation", "masks.zip", mask_zip({"case-0.png": b"\0" * (200 * 1024 ** 2)})),
        "30 MB one-line CSV": ("classification", "p.csv", b"case_id,score\n" + b"x" * (30 * 1024 * 1024)),
    }


def build():
    from mica.challenges.models import Challenge, Phase, Team, TestSet
    from mica.accounts.tokens import issue_token

    organizer = User.objects.create_user("organizer")
    participant = User.objects.create_user("paul")
    now = timezone.now()
    phases = {}
    for task, truth_name, truth in (
        ("classification", "t.csv", b"case_id,label\n" + b"".join(f"case-{i},{i % 2}\n".encode() for i in range(100))),
        ("segmentation", "t.zip", mask_zip({f"case-{i}.png": png(np.eye(16, dtype=np.uint8)) for i in range(4)})),
    ):
        challenge = Challenge.objects.create(slug=task, title=task, task_type=task, state="published", created_by=organizer)
        challenge.add_organizer(organizer)
        test_set = TestSet.create_from_upload(challenge, "Hidden", SimpleUploadedFile(truth_name, truth), user=organizer,
                                              private_fraction=0)
        phases[task] = Phase.objects.create(
            challenge=challenge, name="Final", test_set=test_set, primary_metric="auc" if task == "classification" else "dice",
            starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1), daily_limit=1000, concurrent_limit=1000)
        challenge.register(participant)
        Team.create_for(challenge, participant, "Team Paul")
    return phases, issue_token(participant).key


def rss(pid, field="VmRSS"):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} for {pid}")


def worker_pid(master):
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return int(children[0])


def main():
    print(f"load average before: {os.getloadavg()}, cores: {os.cpu_count()}")
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0)
    database = connection.settings_dict
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = dict(os.environ, DEBUG="0", SECRET_KEY="webmem", ALLOWED_HOSTS="127.0.0.1", SECURE_SSL_REDIRECT="0",
               DATABASE_URL=f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
               PYTHONPATH=f"{ROOT / 'platform'}{os.pathsep}{ROOT}", WEB_CONCURRENCY="1", GUNICORN_MAX_REQUESTS="0",
               GUNICORN_BIND=f"127.0.0.1:{port}", MALLOC_MMAP_THRESHOLD_="1048576", MALLOC_ARENA_MAX="2")
    env.pop("DJANGO_SETTINGS_MODULE")
    server = None
    try:
        phases, token = build()
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", str(ROOT / "docker/gunicorn.conf.py"),
                                   "--access-logfile", "/dev/null", "config.wsgi"], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                session.get(f"{base}/api/v1/challenges/", timeout=60)
                break
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.2)
        pid = worker_pid(server.pid)
        for _ in range(3):
            session.get(f"{base}/api/v1/challenges/")
        idle = rss(pid)
        print(f"\nworker idle: {idle:.0f} MiB")
        print(f"{'upload':36} {'bytes':>10} {'answer':>7} {'seconds':>8} {'RSS after':>10}")
        for what, (task, name, content) in hostile_uploads().items():
            start = time.perf_counter()
            response = session.post(f"{base}/api/v1/submissions/", data={"phase": phases[task].pk},
                                    files={"predictions": (name, content)}, timeout=300)
            took = time.perf_counter() - start
            print(f"{what:36} {len(content):>10} {response.status_code:>7} {took:>8.2f} {rss(pid):>7.0f} MiB")
        peak = rss(pid, "VmHWM")
        print(f"\npeak {peak:.0f} MiB, {peak - idle:.0f} MiB above idle (goal: under 300 MiB above idle)")
        print("(the uploads that need checking are validated by a cpu worker, which this run does not start)")
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        connection.close()
        connection.creation.destroy_test_db(old_name, verbosity=0)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
