"""End to end on real PostgreSQL, Redis and Celery worker processes.

An organizer creates a challenge through the site, a participant submits through the API, a
worker scores both parts of the test set, and the leaderboard shows the AUC scikit-learn gives
for the public part of the same file. A worker killed with SIGKILL while it scores leaves its
evaluation under a lease that runs out; the sweep hands it to the next worker.
"""

import time
from datetime import timedelta

import numpy as np
import pytest
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from rest_framework.test import APIClient
from sklearn.metrics import roc_auc_score

from django.contrib.auth.models import Permission

from mica.challenges.models import Challenge, Phase, Split
from mica.core.tasks import sweep
from mica.evaluations.models import Evaluation
from mica.leaderboards.models import BoardRefresh, LeaderboardSnapshot
from mica.submissions.models import Submission

from .conftest import PASSWORD, csv_bytes, make_scores, make_truth, make_user, upload
from .workers import Worker, flush_broker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.fixture
def worker_log(tmp_path):
    flush_broker()
    return tmp_path / "worker.log"


def organize_challenge(client, n_cases, seed=0, private_fraction=0.5):
    """An organizer sets up a challenge through the site's own pages, and publishes it."""
    organizer = make_user("olivia")
    organizer.user_permissions.add(Permission.objects.get(codename="add_challenge"))
    client.login(username=organizer.username, password=PASSWORD)
    response = client.post("/challenges/new/", {
        "title": "Pneumonia", "slug": "pneumonia", "task_type": "classification", "registration": "open",
        "description": "Find pneumonia.", "terms": "Be nice.",
    })
    assert response.status_code == 302, response.content
    case_ids, labels = make_truth(n_cases, seed)
    response = client.post("/challenges/pneumonia/test-sets/new/", {
        "name": "Hidden", "truth_file": upload("truth.csv", csv_bytes(["case_id", "label"], zip(case_ids, labels))),
        "private_fraction": private_fraction, "seed": 11,
    })
    assert response.status_code == 302, response.content
    challenge = Challenge.objects.get(slug="pneumonia")
    now = timezone.now()
    response = client.post("/challenges/pneumonia/phases/new/", {
        "name": "Final", "test_set": challenge.test_sets.get().pk, "primary_metric": "auc",
        "secondary_metrics": ["log_loss"], "metric_options": "{}", "score_precision": 4,
        "starts_at": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
        "daily_limit": 5, "concurrent_limit": 2, "selection": "best", "max_selected": 2, "visibility": "public",
    })
    assert response.status_code == 302, response.content
    assert client.post("/challenges/pneumonia/publish/", {"state": "published"}).status_code == 302
    client.logout()
    return Phase.objects.get(challenge=challenge), case_ids, labels


def participant_api(client, phase):
    participant = make_user("paul")
    phase.challenge.register(participant)
    from mica.challenges.models import Team

    Team.create_for(phase.challenge, participant, "Team Paul")
    api = APIClient()
    token = api.post("/api/v1/auth/token/", {"username": "paul", "password": PASSWORD}).json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return api


def submit(api, phase, content):
    response = api.post("/api/v1/submissions/", {"phase": phase.pk, "predictions": upload("p.csv", content)},
                        format="multipart")
    assert response.status_code == 201, response.content
    return Submission.objects.get(uuid=response.json()["uuid"])


def statuses(submission):
    return dict(Evaluation.objects.filter(submission=submission).values_list("split", "status"))


def ended(submission):
    found = statuses(submission)
    return found and all(status not in Evaluation.UNFINISHED for status in found.values())


def test_a_worker_scores_both_parts_and_the_leaderboard_shows_the_public_one(client, worker_log):
    phase, case_ids, labels = organize_challenge(client, 500)
    api = participant_api(client, phase)
    scores = make_scores(labels, signal=0.8)
    worker = Worker(worker_log)
    try:
        submission = submit(api, phase, csv_bytes(["case_id", "score"], zip(case_ids, scores)))
        wait_for(lambda: ended(submission), 90, what="scoring")
        # The leaderboards are refreshed by the worker after each evaluation: a moment later.
        wait_for(lambda: not LeaderboardSnapshot.objects.filter(phase=phase, stale=True).exists()
                 and not BoardRefresh.objects.filter(Q(due_at__isnull=False) | Q(claimed_by__gt=""), phase=phase).exists(),
                 60, what="the refresh")
    finally:
        worker.stop()
    assert statuses(submission) == {"public": "succeeded", "private": "succeeded"}, worker.output()[-3000:]
    public_ids = set(phase.test_set.case_ids(Split.PUBLIC))
    kept = [i for i, case_id in enumerate(case_ids) if case_id in public_ids]
    expected = roc_auc_score(labels[kept], scores[kept])
    public = submission.evaluations.get(split=Split.PUBLIC)
    assert public.primary_score == pytest.approx(expected, abs=1e-9)
    rows = APIClient().get(f"/api/v1/leaderboards/{phase.pk}/").json()
    assert rows[0]["team"] == "Team Paul"
    assert rows[0]["score"] == float(f"{expected:.4g}")  # rounded for everyone but the organizers
    page = client.get(f"/leaderboards/phases/{phase.pk}/").content.decode()
    assert f"{float(f'{expected:.4g}'):.4f}" in page


def test_an_evaluation_survives_its_worker_being_killed_while_scoring(client, worker_log):
    # Large enough that scoring takes a moment, so the kill lands while the worker is busy.
    phase, case_ids, labels = organize_challenge(client, 150_000, seed=3, private_fraction=0)
    api = participant_api(client, phase)
    scores = np.round(make_scores(labels, signal=0.5), 6)
    first = Worker(worker_log, MICA_LEASE_SECONDS="3")
    try:
        submission = submit(api, phase, csv_bytes(["case_id", "score"], zip(case_ids, scores)))
        evaluation = wait_for(lambda: Evaluation.objects.filter(submission=submission).first(), 60, what="evaluation")
        wait_for(lambda: Evaluation.objects.get(pk=evaluation.pk).status != "queued", 120, interval=0.005,
                 what="scoring to start")
        with transaction.atomic():
            # Holding the row lock keeps the worker from saving a result (or renewing its lease),
            # so it dies mid-scoring for sure.
            row = Evaluation.objects.select_for_update().get(pk=evaluation.pk)
            assert row.status == "running", "scoring finished before the worker could be killed"
            first.kill()
    finally:
        first.stop()
    connection.close()
    # The redelivered message would wait for Redis's visibility timeout (an hour); the lease runs
    # out in 3 s and the sweep (Celery beat runs it every 30 s) sends the work again.
    sweep()
    assert Evaluation.objects.get(pk=evaluation.pk).status == "running"  # the lease is still live
    time.sleep(3.5)
    sweep()
    second = Worker(worker_log, MICA_LEASE_SECONDS="3")
    try:
        wait_for(lambda: ended(submission), 180, what="the rescore")
    finally:
        second.stop()
    evaluation.refresh_from_db()
    assert evaluation.status == "succeeded", (evaluation.status_reason, second.output()[-3000:])
    assert evaluation.attempts == 2
    assert evaluation.primary_score == pytest.approx(roc_auc_score(labels, scores), abs=1e-9)
    moves = [event.to_status for event in evaluation.events.all()]
    assert moves == ["queued", "running", "running", "succeeded"]


def test_a_worker_anonymizes_an_upload_from_the_ingest_queue(worker_log, tmp_path):
    from mica.datasets.models import Dataset, Instance, Upload

    from .test_datasets import PATIENT_ID, studies_zip

    organizer = make_user("olivia")
    challenge = Challenge.objects.create(slug="c", title="C", task_type="classification", created_by=organizer)
    challenge.add_organizer(organizer)
    dataset = Dataset.objects.create(challenge=challenge, name="Radiographs", created_by=organizer)
    api = APIClient()
    api.force_authenticate(organizer)
    worker = Worker(worker_log, queues="ingest")
    try:
        response = api.post(f"/api/v1/datasets/{dataset.pk}/uploads/", {"archive": studies_zip(tmp_path, 3)},
                            format="multipart")
        assert response.status_code == 202, response.content
        upload = Upload.objects.get(uuid=response.json()["uuid"])
        wait_for(lambda: Upload.objects.get(pk=upload.pk).status in ("processed", "failed"), 90, what="ingest")
    finally:
        worker.stop()
    upload.refresh_from_db()
    assert upload.status == "processed", (upload.status_reason, worker.output()[-3000:])
    assert Instance.objects.filter(dataset=dataset).count() == 3
    for instance in Instance.objects.filter(dataset=dataset):
        assert PATIENT_ID.encode() not in instance.file.open("rb").read()
