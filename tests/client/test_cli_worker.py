"""`mica submit --wait` and `mica download` end to end: a live server, a real Celery worker on
Redis scoring the submission and preparing the release, and the client polling the API."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from mica.downloads.models import DataRelease
from mica.evaluations.models import Evaluation
from mica_client.cli import main
from tests.site.conftest import csv_bytes
from tests.site.imaging import ingested_dataset
from tests.site.workers import Worker, flush_broker, wait_for

from .test_cli import login

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


def test_submit_waits_for_the_score_a_real_worker_gives(capsys, monkeypatch, live_server, team, phase, predictions,
                                                        organizer, challenge, tmp_path):
    dataset = ingested_dataset(challenge, organizer, tmp_path)  # before the worker would take the upload
    flush_broker()
    login(capsys, monkeypatch, live_server)
    path = tmp_path / "predictions.csv"
    path.write_bytes(predictions)
    worker = Worker(tmp_path / "worker.log")
    try:
        code = main(["--quiet", "submit", "pneumonia", str(path), "--wait", "--timeout", "120", "--interval", "0.5"])
        out, err = capsys.readouterr()
        assert code == 0, err + worker.output()[-3000:]

        labels = csv_bytes(["case_id", "y"], [(c, 1) for c in dataset.cases.values_list("case_id", flat=True)])
        release = DataRelease.create(challenge=challenge, dataset=dataset, name="Training", kind="training",
                                     user=organizer, labels=SimpleUploadedFile("labels.csv", labels))
        wait_for(lambda: DataRelease.objects.get(pk=release.pk).status == "ready", 60, what="the release")
        assert main(["--quiet", "download", "pneumonia", "--output", str(tmp_path / "data")]) == 0
        archive = capsys.readouterr().out.strip()
    finally:
        worker.stop()
    public = Evaluation.objects.get(submission__team=team, split="public")
    assert public.status == "succeeded"
    assert f"auc: {phase.shown_score(public.metrics['auc'])}" in out
    release.refresh_from_db()
    assert len(open(archive, "rb").read()) == release.size
