"""What the site tests share: a hospital's data folder (case ids and file names that must never
reach Mica), a phase taking containers, two teams' algorithms, a site and its token, and a
site worker started as its own process."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mica.algorithms.models import Algorithm, ContainerImage
from mica.challenges.models import Phase, Team
from mica.sites.models import Site

from .conftest import make_user
from .containers import PREDICT, image_archive

ROOT = Path(__file__).resolve().parents[2]

# Scores by the line's parity: not the truth, but not constant either (an AUC with an interval).
ALTERNATE = r"""
grep -o '"case_id": *"[^"]*"' /input/cases.json | sed 's/.*: *"\(.*\)"/\1/' > /tmp/ids
mkdir -p /output
echo "case_id,score" > /output/predictions.csv
awk '{ print $0 "," (NR % 3 ? 0.8 : 0.2) }' /tmp/ids >> /output/predictions.csv
"""


def slow(script, seconds):
    return f"sleep {seconds}\n{script}"


def site_data(folder, n_cases=30, seed=3, prefix="ZEBRA"):
    """A hospital's folder: cases.json, images/, truth.csv. Returns (case ids, file names)."""
    folder = Path(folder)
    (folder / "images").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n_cases)
    labels[0], labels[1] = 0, 1
    ids = [f"{prefix}-PATIENT-{i:04d}" for i in range(n_cases)]
    names = [f"images/scan_{prefix.lower()}_{i:04d}_private.png" for i in range(n_cases)]
    for name in names:
        (folder / name).write_bytes(b"\x89PNG not really an image")
    listed = [{"case_id": case_id, "files": [name]} for case_id, name in zip(ids, names)]
    (folder / "cases.json").write_text(json.dumps({"cases": listed}))
    (folder / "truth.csv").write_text("case_id,pneumonia\n" + "".join(f"{i},{l}\n" for i, l in zip(ids, labels)))
    return ids, names


@pytest.fixture
def site_phase(phase):
    Phase.objects.filter(pk=phase.pk).update(accepts_containers=True, container_case_seconds=5,
                                             container_total_seconds=60, container_memory_mb=256)
    phase.refresh_from_db()
    return phase


def make_algorithm(phase, team, user, tmp_path, script, label):
    path, _ = image_archive(tmp_path / f"{label}.tar", script, label=label)
    image = ContainerImage.store(str(path))
    return Algorithm.objects.create(challenge=phase.challenge, team=team, image=image, name=f"{label}.tar",
                                    uploaded_by=user)


@pytest.fixture
def site_admin(db):
    return make_user("hana")


@pytest.fixture
def hospital(site_phase, site_admin, organizer):
    return Site.objects.create(phase=site_phase, name="St Elsewhere", metrics=["auc", "log_loss"],
                               admin=site_admin, created_by=organizer)


@pytest.fixture
def other_hospital(site_phase, site_admin, organizer):
    return Site.objects.create(phase=site_phase, name="County General", metrics=["auc", "log_loss"],
                               admin=site_admin, created_by=organizer)


@pytest.fixture
def two_algorithms(site_phase, team, participant, rival, tmp_path):
    rivals = Team.objects.get(challenge=site_phase.challenge, name="Rivals")
    return (make_algorithm(site_phase, team, participant, tmp_path, PREDICT, "coin"),
            make_algorithm(site_phase, rivals, rival, tmp_path, ALTERNATE, "alternate"))


def token_file(site, user, folder):
    _, raw = site.issue_token(user)
    path = Path(folder) / "token"
    path.write_text(raw + "\n")
    path.chmod(0o600)
    return path, raw


def start_worker(server, token_path, data, *, idle_exit=True, log=None, max_backoff=1.0):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "evaluator", "site-worker", "--server", server, "--token-file", str(token_path),
            "--data", str(data), "--poll-seconds", "0.2", "--max-backoff", str(max_backoff)]
    if idle_exit:
        argv.append("--exit-when-idle")
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log or subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_for(condition, timeout=60, what="the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def audit_bodies(data):
    return [json.loads(line) for line in (Path(data) / "audit.jsonl").read_text().splitlines()]


# Trivial containers of the other tasks, busybox like the rest. Detection: one box, the same
# for every case (a hit where the truth's box is there, a miss elsewhere).
ONE_BOX = r"""
grep -o '"case_id": *"[^"]*"' /input/cases.json | sed 's/.*: *"\(.*\)"/\1/' > /tmp/ids
mkdir -p /output
echo "patientId,PredictionString" > /output/predictions.csv
sed 's/$/,0.9 10 10 50 50/' /tmp/ids >> /output/predictions.csv
"""
# Segmentation: each case's image, which at this test site is already a mask, as its prediction.
COPY_MASK = r"""
mkdir -p /output/masks
awk -F'"' '/"case_id"/ { id = $4 } /"images\// { print id " " $2 }' /input/cases.json > /tmp/pairs
while read id file; do cp "/input/$file" "/output/masks/$id.png"; done < /tmp/pairs
"""


def square(size, top, left, side):
    mask = np.zeros((size, size), np.uint8)
    mask[top:top + side, left:left + side] = 1
    return mask


def png(mask):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(mask.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def task_phase(organizer, task_type, primary_metric, truth_name, truth_bytes):
    """A published challenge of the task, its test set and a phase taking containers."""
    from datetime import timedelta

    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.utils import timezone

    from mica.challenges.models import Challenge, TestSet

    challenge = Challenge.objects.create(slug=task_type, title=task_type, task_type=task_type, created_by=organizer,
                                         state=Challenge.State.PUBLISHED)
    challenge.add_organizer(organizer)
    test_set = TestSet.create_from_upload(challenge, "Hidden", SimpleUploadedFile(truth_name, truth_bytes),
                                          user=organizer, private_fraction=0)
    now = timezone.now()
    return Phase.objects.create(challenge=challenge, name="Final", test_set=test_set, primary_metric=primary_metric,
                                starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1),
                                accepts_containers=True, container_case_seconds=5, container_total_seconds=60,
                                container_memory_mb=256)


def team_algorithm(phase, user, tmp_path, script, label):
    phase.challenge.register(user)
    team = Team.create_for(phase.challenge, user, f"Team {label}")
    return make_algorithm(phase, team, user, tmp_path, script, label)
