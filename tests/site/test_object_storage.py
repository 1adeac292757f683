"""Mica on S3-compatible object storage (a real moto server process), with workers that share
no disk: each has its own working folder, and they meet only in the broker, the database and
the object store.

Tried: a submission and a truth stored in the bucket and nowhere on the web host's disk; the
download answered by a presigned URL that serves the very bytes uploaded; two workers, one
killed mid-evaluation, the other fetching the files it needs from the store into its own cache.
"""

import os
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from django.conf import settings
from django.db import connection, transaction
from django.test import override_settings
from sklearn.metrics import roc_auc_score

from mica.core.tasks import sweep
from mica.evaluations.models import Evaluation

from .conftest import PASSWORD, csv_bytes, make_scores
from .object_storage import CREDENTIALS, ObjectStore
from .test_worker import ended, organize_challenge, participant_api, submit
from .workers import Worker, flush_broker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.fixture
def object_store(tmp_path, monkeypatch):
    store = ObjectStore(tmp_path / "moto.log")
    for name, value in CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    try:
        with override_settings(STORAGES=store.storages(settings.STORAGES)):
            yield store
    finally:
        store.stop()


def private_files_on_disk():
    """Files under the test site's own private folder (where files go without object storage)."""
    return sorted(p for p in Path(os.environ["MICA_VAR_DIR"], "private").rglob("*") if p.is_file())


def worker_on(store, var_dir, log):
    return Worker(log, MICA_VAR_DIR=str(var_dir), MICA_LEASE_SECONDS="3", **store.environment())


def parent_pid(pid):
    """The parent of a process (a Celery pool child's parent is its worker)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])


def test_files_live_in_the_bucket_and_downloads_are_presigned(client, object_store, tmp_path):
    flush_broker()
    phase, case_ids, labels = organize_challenge(client, 200)
    before_on_disk = private_files_on_disk()
    api = participant_api(client, phase)
    content = csv_bytes(["case_id", "score"], zip(case_ids, np.round(make_scores(labels), 6)))
    worker = worker_on(object_store, tmp_path / "worker", tmp_path / "worker.log")
    try:
        submission = submit(api, phase, content)
        wait_for(lambda: ended(submission), 120, what="scoring")
    finally:
        worker.stop()

    keys = object_store.keys()
    assert f"private/{submission.file.name}" in keys
    assert f"private/{phase.test_set.latest_version.file.name}" in keys
    assert private_files_on_disk() == before_on_disk  # nothing new on the web host's disk
    assert Evaluation.objects.get(submission=submission, split="public").status == "succeeded"

    client.login(username="paul", password=PASSWORD)
    response = client.get(f"/submissions/{submission.uuid}/file/")
    assert response.status_code == 302
    assert response["Location"].startswith(object_store.endpoint)
    assert "Signature=" in response["Location"] or "X-Amz-Signature=" in response["Location"]
    fetched = requests.get(response["Location"], timeout=10)
    assert fetched.status_code == 200 and fetched.content == content
    # The file is named as the team named it (moto does not echo the header back; S3 and MinIO do).
    assert "response-content-disposition=attachment%3B%20filename%3D%22p.csv%22" in response["Location"]
    # Without the signature the object store refuses: private files have no public URL.
    assert requests.get(response["Location"].split("?")[0], timeout=10).status_code == 403


def test_a_second_worker_on_another_disk_takes_over_an_evaluation_whose_worker_died(client, object_store, tmp_path):
    flush_broker()
    # Large enough that scoring takes a moment, so the kill lands while a worker is busy.
    phase, case_ids, labels = organize_challenge(client, 150_000, seed=5, private_fraction=0)
    api = participant_api(client, phase)
    scores = np.round(make_scores(labels, signal=0.5), 6)
    homes = {name: tmp_path / name for name in ("a", "b")}
    workers = {name: worker_on(object_store, home, tmp_path / f"{name}.log") for name, home in homes.items()}
    try:
        submission = submit(api, phase, csv_bytes(["case_id", "score"], zip(case_ids, scores)))
        evaluation = wait_for(lambda: Evaluation.objects.filter(submission=submission).first(), 60, what="evaluation")
        wait_for(lambda: Evaluation.objects.get(pk=evaluation.pk).status != "queued", 120, interval=0.005,
                 what="scoring to start")
        with transaction.atomic():
            # Holding the row lock keeps the worker from saving its result, so it dies mid-scoring.
            row = Evaluation.objects.select_for_update().get(pk=evaluation.pk)
            assert row.status == "running", "scoring finished before the worker could be killed"
            claimed_pid = int(row.claimed_by.split(":")[1])
            dead = next(name for name, worker in workers.items() if worker.process.pid == parent_pid(claimed_pid))
            workers[dead].kill()
        connection.close()
        time.sleep(3.5)  # the dead worker's lease runs out
        sweep()
        wait_for(lambda: ended(submission), 180, what="the other worker to score it")
    finally:
        for worker in workers.values():
            worker.stop()

    evaluation.refresh_from_db()
    alive = next(name for name in homes if name != dead)
    assert evaluation.status == "succeeded", (evaluation.status_reason, workers[alive].output()[-3000:])
    assert evaluation.attempts == 2
    assert evaluation.primary_score == pytest.approx(roc_auc_score(labels, scores), abs=1e-9)
    # The survivor read the truth and the predictions from the store into its own cache.
    cached = {p.name for p in (homes[alive] / "cache").rglob("*") if p.is_file()}
    assert {Path(submission.file.name).name, Path(phase.test_set.latest_version.file.name).name} <= cached
    assert not (homes[alive] / "private").exists() and not (homes[dead] / "private").exists()
