"""Model containers on real Celery workers (PostgreSQL, Redis): a container sent with tus is
run by a `gpu` worker in the bwrap sandbox, its predictions validated by a `cpu` worker and
scored; a worker killed with SIGKILL in the middle of a run leaves no stuck submission (the
lease runs out, the sweep hands the run to the next worker, and the run's own limits end it)."""

import os
import time

import pytest
from django.db import connection

from mica.algorithms.models import InferenceRun
from mica.challenges.models import Phase
from mica.core.tasks import sweep
from mica.submissions.models import Submission

from .containers import HANG, PREDICT, image_archive
from .test_algorithms import api_client, send
from .workers import Worker, flush_broker, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.worker]


@pytest.fixture
def worker_log(tmp_path):
    flush_broker()
    return tmp_path / "worker.log"


@pytest.fixture
def container_phase(phase):
    Phase.objects.filter(pk=phase.pk).update(accepts_containers=True, container_case_seconds=1,
                                             container_total_seconds=4, container_memory_mb=256, container_cpus=1)
    phase.refresh_from_db()
    return phase


def test_a_worker_runs_a_container_and_scores_its_predictions(container_phase, team, participant, worker_log,
                                                              tmp_path):
    archive, _ = image_archive(tmp_path / "model.tar", PREDICT)
    worker = Worker(worker_log, queues="cpu,gpu,metrics")
    try:
        assert send(api_client(participant), container_phase, archive).status_code == 204
        submission = Submission.objects.get()

        def scored():
            public = submission.evaluations.filter(split="public").first()
            return public is not None and public.status not in ("queued", "running") and public

        public = wait_for(scored, 120, what="the container's predictions to be scored")
    finally:
        worker.stop()
    run = InferenceRun.objects.get()
    assert run.status == "succeeded" and run.attempts == 1, (run.status_reason, worker.output()[-3000:])
    assert public.status == "succeeded" and public.metrics["auc"] == pytest.approx(0.5)


def test_a_run_survives_its_worker_being_killed(container_phase, team, participant, worker_log, tmp_path, settings):
    settings.MICA_LEASE_SECONDS = 3
    archive, _ = image_archive(tmp_path / "model.tar", HANG)
    first = Worker(worker_log, queues="gpu", MICA_LEASE_SECONDS="3")
    try:
        send(api_client(participant), container_phase, archive)
        run = InferenceRun.objects.get()
        sandboxes = wait_for(lambda: _sandboxes_under(first.process.pid), 60, what="the container to start")
        first.kill()
    finally:
        first.stop()
    connection.close()
    time.sleep(3.5)  # the lease runs out
    assert not [pid for pid in sandboxes if os.path.exists(f"/proc/{pid}")], "the sandbox outlived its worker"
    sweep()
    second = Worker(worker_log, queues="gpu,cpu", MICA_LEASE_SECONDS="3")
    try:
        wait_for(lambda: InferenceRun.objects.get(pk=run.pk).status == "failed", 60, what="the second run to end")
    finally:
        second.stop()
    run.refresh_from_db()
    assert run.attempts == 2 and run.status_reason == "The container did not finish within 4 seconds."
    assert [event.to_status for event in run.events.all()] == ["queued", "running", "running", "failed"]
    submission = Submission.objects.get()
    assert submission.status == "failed" and "did not finish" in submission.status_reason


def _sandboxes_under(ancestor):
    """The bubblewrap processes descending from `ancestor` (a worker's process group leader)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as comm:
                if comm.read().strip() != "bwrap":
                    continue
            parent = int(pid)
            while parent > 1:
                with open(f"/proc/{parent}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
                if parent == ancestor:
                    found.append(int(pid))
                    break
        except (OSError, ValueError, IndexError):
            continue
    return found
