"""Evaluations: one per part of the test set, leased by workers, swept, cancelled, re-scored.

The task bodies run in this process here; a real worker runs them in test_worker.py.
"""

from contextlib import contextmanager
from datetime import timedelta

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.utils import timezone
from sklearn.metrics import roc_auc_score

from mica.challenges.models import Split, TruthVersion
from mica.core.models import IllegalMove
from mica.core.tasks import sweep
from mica.evaluations.models import Evaluation, Rescore
from mica.evaluations.tasks import run_evaluation, run_rescore
from mica.submissions.models import Submission

from .conftest import csv_bytes, make_scores, run_evaluations, split_labels, upload
from .workers import flush_broker, queue_length

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def empty_broker():
    flush_broker()
    yield
    flush_broker()


@pytest.fixture
def submission(phase, team, participant, predictions):
    return Submission.create(phase=phase, user=participant, uploaded_file=upload("p.csv", predictions))


def test_the_test_set_is_split_stratified_and_recorded(phase, truth):
    case_ids, labels = truth
    test_set = phase.test_set
    public, private = test_set.case_ids(Split.PUBLIC), test_set.case_ids(Split.PRIVATE)
    assert sorted(public + private) == sorted(case_ids)
    assert len(private) == 20
    for split in (Split.PUBLIC, Split.PRIVATE):
        _, part_labels, _ = split_labels(phase, truth, split)
        assert sum(part_labels) in (sum(labels) // 2, (sum(labels) + 1) // 2)  # stratified by label
    assert test_set.split_seed == 7


def test_each_part_is_scored_with_the_auc_scikit_learn_gives(submission, phase, truth):
    scores = make_scores(truth[1])
    evaluations = run_evaluations(submission)
    assert set(evaluations) == {"public", "private"}
    for split, evaluation in evaluations.items():
        part_ids, part_labels, kept = split_labels(phase, truth, split)
        assert evaluation.status == Evaluation.Status.SUCCEEDED
        assert evaluation.primary_score == pytest.approx(roc_auc_score(part_labels, scores[kept]), abs=1e-9)
        assert evaluation.result["n_cases"] == len(part_ids)
        assert evaluation.metrics["auc"] == evaluation.primary_score
        assert [e.to_status for e in evaluation.events.all()] == ["queued", "running", "succeeded"]


def test_missing_cases_score_as_failures_in_their_part(phase, team, participant, truth):
    case_ids, labels = truth
    kept = len(case_ids) // 2
    content = csv_bytes(["case_id", "score"], zip(case_ids[:kept], [float(y) for y in labels[:kept]]))
    submission = Submission.create(phase=phase, user=participant, uploaded_file=upload("p.csv", content))
    public = run_evaluations(submission)["public"]
    part_ids, part_labels, _ = split_labels(phase, truth, Split.PUBLIC)
    given = set(case_ids[:kept])
    scores = [float(y) if c in given else (-1.0 if y else 2.0) for c, y in zip(part_ids, part_labels)]
    assert public.result["missing_cases"] == sum(c not in given for c in part_ids)
    assert public.primary_score == pytest.approx(roc_auc_score(part_labels, scores), abs=1e-9)


def test_a_second_delivery_changes_nothing(submission):
    evaluation = run_evaluations(submission)["public"]
    events = evaluation.events.count()
    run_evaluation(evaluation.pk)
    assert evaluation.events.count() == events


def test_a_live_lease_is_never_taken(submission):
    evaluation = submission.evaluations.get(split=Split.PUBLIC)
    assert evaluation.claim()  # a worker is scoring it right now
    run_evaluation(evaluation.pk)  # a redelivered message
    evaluation.refresh_from_db()
    assert evaluation.status == Evaluation.Status.RUNNING
    assert evaluation.attempts == 1


def test_an_expired_lease_is_taken_over(submission):
    evaluation = submission.evaluations.get(split=Split.PUBLIC)
    assert evaluation.claim()  # the worker that died
    Evaluation.objects.filter(pk=evaluation.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    run_evaluation(evaluation.pk)
    evaluation.refresh_from_db()
    assert evaluation.status == Evaluation.Status.SUCCEEDED
    assert evaluation.attempts == 2
    assert [e.to_status for e in evaluation.events.all()] == ["queued", "running", "running", "succeeded"]


@override_settings(MICA_MAX_ATTEMPTS=2)
def test_work_that_keeps_killing_workers_is_failed(submission):
    evaluation = submission.evaluations.get(split=Split.PUBLIC)
    for _ in range(2):
        assert evaluation.claim()
        Evaluation.objects.filter(pk=evaluation.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    run_evaluation(evaluation.pk)
    evaluation.refresh_from_db()
    assert evaluation.status == Evaluation.Status.FAILED
    assert "2 times" in evaluation.status_reason


def test_only_the_legal_moves(submission):
    evaluation = submission.evaluations.get(split=Split.PUBLIC)
    with pytest.raises(IllegalMove):
        evaluation.move(Evaluation.Status.SUCCEEDED, "skipping scoring")
    evaluation.cancel()
    with pytest.raises(IllegalMove):
        evaluation.move(Evaluation.Status.RUNNING)


def test_two_claims_one_winner(submission):
    evaluation = submission.evaluations.get(split=Split.PUBLIC)
    stale = Evaluation.objects.get(pk=evaluation.pk)
    assert evaluation.claim()
    assert stale.claim() is False
    assert evaluation.events.filter(to_status="running").count() == 1


def test_a_cancelled_evaluation_keeps_no_result_from_its_worker(submission):
    evaluation = submission.evaluations.get(split=Split.PUBLIC)
    assert evaluation.claim()
    Evaluation.objects.get(pk=evaluation.pk).cancel("by the organizers")
    assert evaluation.record_result({"metrics": {"auc": 0.9}}) is False  # the worker finishes too late
    evaluation.refresh_from_db()
    assert evaluation.status == Evaluation.Status.CANCELLED and evaluation.result is None


@override_settings(MICA_WORK_TIME_LIMIT=600)
def test_the_sweep_fails_only_what_ran_too_long_and_never_what_waits(submission, phase, team, participant, predictions):
    running = submission.evaluations.get(split=Split.PUBLIC)
    assert running.claim()
    Evaluation.objects.filter(pk=running.pk).update(started_at=timezone.now() - timedelta(minutes=11))
    waiting = submission.evaluations.get(split=Split.PRIVATE)
    Evaluation.objects.filter(pk=waiting.pk).update(created_at=timezone.now() - timedelta(days=2),
                                                   status_changed_at=timezone.now() - timedelta(days=2))
    sweep()
    running.refresh_from_db()
    waiting.refresh_from_db()
    assert running.status == Evaluation.Status.FAILED
    assert running.status_reason == "It did not finish within 10 minutes."
    assert waiting.status == Evaluation.Status.QUEUED


def test_the_sweep_sends_again_work_whose_message_is_gone(submission):
    evaluation = submission.evaluations.get(split=Split.PUBLIC)
    Evaluation.objects.filter(pk=evaluation.pk).update(dispatched_at=None, dispatch_count=0, redispatch_at=None,
                                                       created_at=timezone.now() - timedelta(minutes=1))
    flush_broker()  # the broker lost its messages
    sweep()
    evaluation.refresh_from_db()
    assert evaluation.dispatched_at is not None and evaluation.dispatch_count == 1
    assert queue_length("gpu") >= 1


def test_a_corrected_truth_rescores_every_submission(submission, phase, organizer, truth):
    run_evaluations(submission)
    case_ids, labels = truth
    corrected = np.array(labels).copy()
    corrected[2:6] = 1 - corrected[2:6]
    version = TruthVersion.store(phase.test_set, SimpleUploadedFile(
        "truth-v2.csv", csv_bytes(["case_id", "pneumonia"], zip(case_ids, corrected))), user=organizer, note="fixed 4 labels")
    rescore = Rescore.start(version, organizer)
    run_rescore(rescore.pk)
    rescore.refresh_from_db()
    assert rescore.status == Rescore.Status.DONE and rescore.progress() == (0, 2)
    for evaluation in version.evaluations.all():
        run_evaluation(evaluation.pk)
    assert rescore.progress() == (2, 2)
    scores = make_scores(labels)
    part_ids, _, kept = split_labels(phase, truth, Split.PUBLIC)
    new_public = version.evaluations.get(split=Split.PUBLIC)
    assert new_public.primary_score == pytest.approx(roc_auc_score(corrected[kept], scores[kept]), abs=1e-9)
    assert submission.evaluations.count() == 4  # the version-1 evaluations are kept


def test_a_corrected_truth_must_keep_the_cases(phase, organizer, truth):
    case_ids, labels = truth
    bad = SimpleUploadedFile("truth-v2.csv", csv_bytes(["case_id", "pneumonia"], zip(case_ids[:-1], labels[:-1])))
    from django.core.exceptions import ValidationError
    with pytest.raises(ValidationError, match="1 missing"):
        TruthVersion.store(phase.test_set, bad, user=organizer)
    assert phase.test_set.versions.count() == 1


@contextmanager
def broker_down():
    """The site's Celery app publishing to an address where no broker listens."""
    from config.celery import app

    def reconnect(url):
        # Publishing reads broker_write_url first; the next publish opens a connection to `url`.
        app.conf.broker_url = app.conf.broker_write_url = url
        app._pool = app.amqp._producer_pool = None

    working = app.conf.broker_url
    reconnect("redis://127.0.0.1:9/0")  # the discard port: connection refused
    try:
        yield
    finally:
        reconnect(working)


def test_an_upload_while_the_broker_is_down_is_kept_and_queued_once_it_is_back(
        django_capture_on_commit_callbacks, phase, team, participant, predictions):
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(participant)
    with broker_down(), django_capture_on_commit_callbacks(execute=True):
        response = api.post("/api/v1/submissions/", {"phase": phase.pk, "predictions": upload("p.csv", predictions)},
                            format="multipart")
    assert response.status_code == 201, response.content  # the team gets a clear answer, not a 500
    submission = Submission.objects.get(uuid=response.json()["uuid"])
    evaluations = list(submission.evaluations.all())
    assert len(evaluations) == 2 and all(e.dispatched_at is None for e in evaluations)  # still in the outbox
    Evaluation.objects.update(created_at=timezone.now() - timedelta(minutes=1))
    sweep()  # Celery beat runs it every 30 s once the broker is back
    assert all(e.dispatched_at is not None for e in submission.evaluations.all())
    assert queue_length("gpu") == 2
    for evaluation in evaluations:
        run_evaluation(evaluation.pk)
    assert set(submission.evaluations.values_list("status", flat=True)) == {"succeeded"}


@override_settings(MICA_MAX_ATTEMPTS=2)
def test_an_upload_that_keeps_crashing_its_worker_stops_after_its_attempts(challenge, organizer, tmp_path):
    """Before leases, an upload whose anonymization killed its worker was redelivered forever."""
    from mica.datasets.models import Dataset, Upload
    from mica.datasets.tasks import ingest_upload

    from .test_datasets import studies_zip

    dataset = Dataset.objects.create(challenge=challenge, name="Radiographs", created_by=organizer)
    upload_row = Upload.receive(dataset=dataset, user=organizer, uploaded_file=studies_zip(tmp_path, 1))
    for _ in range(2):  # two workers died holding it: their leases ran out
        assert upload_row.claim()
        Upload.objects.filter(pk=upload_row.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    ingest_upload(upload_row.pk)  # the message delivered a third time
    upload_row.refresh_from_db()
    assert upload_row.status == Upload.Status.FAILED
    assert "2 times" in upload_row.status_reason
    assert not dataset.instances.exists()


def test_the_sweep_removes_submission_files_no_row_owns(submission, phase):
    """A request killed after storing the upload but before committing its row left the file."""
    import os

    from django.core.files.base import ContentFile

    from mica.core.storage import private_storage

    storage = private_storage()
    orphan = storage.save(f"submissions/{phase.pk}/left-behind.csv", ContentFile(b"case_id,score\n"))
    recent = storage.save(f"submissions/{phase.pk}/being-uploaded.csv", ContentFile(b"case_id,score\n"))
    an_hour_ago = (timezone.now() - timedelta(hours=2)).timestamp()
    for name in (orphan, submission.file.name):
        os.utime(storage.path(name), (an_hour_ago, an_hour_ago))
    sweep()
    assert not storage.exists(orphan)
    assert storage.exists(recent)  # may belong to a request still running
    assert storage.exists(submission.file.name)  # owned by its row
    storage.delete(recent)
