"""End to end on real PostgreSQL, Redis and Celery worker processes.

An organizer creates a challenge through the site, a participant submits through the API, a
worker scores it, and the leaderboard shows the AUC scikit-learn gives for the same file. A
worker killed with SIGKILL while it scores leaves the submission to be scored by the next one.
"""

import time
from datetime import timedelta

import numpy as np
import pytest
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient
from sklearn.metrics import roc_auc_score

from mica.challenges.models import Challenge, Phase
from mica.submissions.models import Status, Submission

from .conftest import PASSWORD, csv_bytes, make_scores, make_truth, make_user, upload
from .workers import Worker, flush_broker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.fixture
def worker_log(tmp_path):
    flush_broker()
    return tmp_path / "worker.log"


def organize_challenge(client, n_cases, seed=0):
    """An organizer sets up a challenge through the site's own pages."""
    organizer = make_user("olivia")
    client.login(username=organizer.username, password=PASSWORD)
    response = client.post("/challenges/new/", {
        "title": "Pneumonia", "slug": "pneumonia", "task_type": "classification", "primary_metric": "auc",
        "description": "Find pneumonia.", "terms": "Be nice.", "leaderboard_selection": "best",
        "daily_submission_limit": 5,
    })
    assert response.status_code == 302, response.content
    case_ids, labels = make_truth(n_cases, seed)
    response = client.post("/challenges/pneumonia/test-sets/new/", {
        "name": "Hidden", "truth_file": upload("truth.csv", csv_bytes(["case_id", "label"], zip(case_ids, labels))),
    })
    assert response.status_code == 302, response.content
    challenge = Challenge.objects.get(slug="pneumonia")
    now = timezone.now()
    response = client.post("/challenges/pneumonia/phases/new/", {
        "name": "Final", "test_set": challenge.test_sets.get().pk,
        "starts_at": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (now + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
    })
    assert response.status_code == 302, response.content
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


def status_of(submission):
    return Submission.objects.values_list("status", flat=True).get(pk=submission.pk)


def test_a_worker_scores_a_submission_and_the_leaderboard_shows_it(client, worker_log):
    phase, case_ids, labels = organize_challenge(client, 500)
    api = participant_api(client, phase)
    scores = make_scores(labels, signal=0.8)
    worker = Worker(worker_log)
    try:
        submission = submit(api, phase, csv_bytes(["case_id", "score"], zip(case_ids, scores)))
        wait_for(lambda: status_of(submission) in (Status.SCORED, Status.FAILED), 90, what="scoring")
    finally:
        worker.stop()
    submission.refresh_from_db()
    assert submission.status == Status.SCORED, (submission.status_reason, worker.output()[-3000:])
    expected = roc_auc_score(labels, scores)
    assert submission.primary_score == pytest.approx(expected, abs=1e-9)
    rows = APIClient().get(f"/api/v1/leaderboards/{phase.pk}/").json()
    assert rows[0]["team"] == "Team Paul"
    assert rows[0]["score"] == pytest.approx(expected, abs=1e-9)
    page = client.get(f"/leaderboards/phases/{phase.pk}/").content.decode()
    assert f"{expected:.4f}" in page


def test_a_submission_survives_its_worker_being_killed_while_scoring(client, worker_log):
    # Large enough that scoring takes a moment, so the kill lands while the worker is busy.
    phase, case_ids, labels = organize_challenge(client, 150_000, seed=3)
    api = participant_api(client, phase)
    scores = np.round(make_scores(labels, signal=0.5), 6)
    # A message left unacknowledged for 2 s is visible again: the next worker restores it when it
    # starts (kombu then checks again only every 100 s, as a long-running worker would).
    first = Worker(worker_log, CELERY_VISIBILITY_TIMEOUT="2")
    try:
        submission = submit(api, phase, csv_bytes(["case_id", "score"], zip(case_ids, scores)))
        wait_for(lambda: status_of(submission) != Status.QUEUED, 120, interval=0.005, what="scoring to start")
        with transaction.atomic():
            # Holding the row lock keeps the worker from saving a result, so it dies mid-scoring for sure.
            row = Submission.objects.select_for_update().get(pk=submission.pk)
            assert row.status == Status.SCORING, "scoring finished before the worker could be killed"
            first.kill()
    finally:
        first.stop()
    connection.close()
    assert status_of(submission) == Status.SCORING

    time.sleep(3)
    second = Worker(worker_log, CELERY_VISIBILITY_TIMEOUT="2")
    try:
        wait_for(lambda: status_of(submission) in (Status.SCORED, Status.FAILED), 180, what="the rescore")
    finally:
        second.stop()
    submission.refresh_from_db()
    assert submission.status == Status.SCORED, (submission.status_reason, second.output()[-3000:])
    assert submission.scoring_attempts == 2
    assert submission.primary_score == pytest.approx(roc_auc_score(labels, scores), abs=1e-9)
    moves = [event.to_status for event in submission.events.all()]
    assert moves == [Status.QUEUED, Status.SCORING, Status.SCORING, Status.SCORED]


def test_a_worker_anonymizes_an_upload_from_the_ingest_queue(worker_log, tmp_path):
    from mica.challenges.models import ChallengeRole, Role
    from mica.datasets.models import Dataset, Instance, Upload

    from .test_datasets import PATIENT_ID, studies_zip

    organizer = make_user("olivia")
    challenge = Challenge.objects.create(slug="c", title="C", task_type="classification", created_by=organizer)
    ChallengeRole.objects.create(challenge=challenge, user=organizer, role=Role.ORGANIZER)
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
