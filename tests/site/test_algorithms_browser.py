"""A team sends a container from the submit page in Chromium: the progress bar moves, the
connection drops mid-way and the upload resumes by itself; a reload resumes from the stored
offset. The organizer's transferability page is then looked at. A container that writes too
much to /output: the form shows the caps, the run page says which was passed. Screenshots go to
MICA_SCREENSHOTS (default: the test's tmp_path)."""

import os
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections

from mica.algorithms.models import Algorithm, InferenceRun
from mica.algorithms.tasks import run_inference
from mica.challenges.models import Phase, TestSet
from mica.submissions.models import Submission
from mica.uploads.models import ResumableUpload

from .conftest import csv_bytes
from .containers import HUGE_OUTPUT, PREDICT, image_archive
from .test_algorithms import run_container
from .test_browser import browser, log_in  # noqa: F401  (the browser fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

CHUNK = 128 * 1024


@pytest.fixture
def container_phase(phase, settings):
    settings.MICA_UPLOAD_CHUNK_BYTES = CHUNK
    Phase.objects.filter(pk=phase.pk).update(accepts_containers=True, container_case_seconds=2,
                                             container_total_seconds=30, container_memory_mb=256)
    phase.refresh_from_db()
    return phase


def shots(tmp_path):
    folder = Path(os.environ.get("MICA_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_a_container_upload_survives_a_dropped_connection(live_server, browser, container_phase, team, participant,  # noqa: F811
                                                          organizer, tmp_path):
    archive, _ = image_archive(tmp_path / "my-model.tar", PREDICT)
    size = archive.stat().st_size
    offline = {"on": False, "patches": [], "aborted": 0}

    def network(route):
        request = route.request
        if request.method == "PATCH":
            if offline["on"]:
                offline["aborted"] += 1
                return route.abort("internetdisconnected")
            offline["patches"].append(int(request.headers["upload-offset"]))
            if len(offline["patches"]) == 4:
                offline["on"] = True  # the connection drops after the fourth chunk
        return route.continue_()

    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    log_in(page, live_server, participant)
    page.route("**/uploads/**", network)
    page.goto(f"{live_server.url}/submissions/phases/{container_phase.pk}/submit/")
    page.set_input_files("#container-file", str(archive))
    page.fill("#container-comment", "ResNet in a box")
    page.click("button:has-text('Upload and run')")
    page.wait_for_selector("[data-upload-status][data-state=retrying]")
    progress = page.locator("#container-submission progress")
    assert 0 < float(progress.get_attribute("value") or progress.evaluate("p => p.value")) < size
    page.locator("#container-submission").scroll_into_view_if_needed()
    page.screenshot(path=str(shots(tmp_path) / "container-upload-progress.png"), full_page=True)
    offline["on"] = False  # back online: the next retry goes on from the server's offset

    page.wait_for_url(f"{live_server.url}/submissions/*/")
    assert offline["aborted"] >= 1
    patches = offline["patches"]
    assert patches == sorted(patches) and len(patches) == len(set(patches))  # no byte sent twice once received
    submission = Submission.objects.get()
    assert submission.comment == "ResNet in a box" and page.locator("#container-run").is_visible()
    assert page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('mica-tus:')).length") == 0

    evaluations = run_container(submission)
    assert evaluations["public"].status == "succeeded"
    page.goto(f"{live_server.url}{submission.inference_run.get_absolute_url()}")
    assert page.locator("[data-status=succeeded]").is_visible()
    page.screenshot(path=str(shots(tmp_path) / "container-run.png"), full_page=True)

    # The organizer runs the image on an external test set and compares.
    other = TestSet.create_from_upload(container_phase.challenge, "External hospital", SimpleUploadedFile(
        "t.csv", csv_bytes(["case_id", "pneumonia"], [(f"ext-{i:03d}", i % 2) for i in range(30)])),
        user=organizer, seed=3)
    external = Phase.objects.create(challenge=container_phase.challenge, name="External validation", test_set=other,
                                    primary_metric="auc", secondary_metrics=["log_loss"],
                                    starts_at=container_phase.starts_at, ends_at=container_phase.ends_at)
    rerun = InferenceRun.rerun(algorithm=Algorithm.objects.get(), phase=external, truth_version=other.latest_version,
                               user=organizer)
    run_inference(rerun.pk)
    page.click("text=Log out")
    log_in(page, live_server, organizer)
    page.goto(f"{live_server.url}/algorithms/{Algorithm.objects.get().pk}/transferability/")
    assert page.locator("#transferability tbody tr").count() == 3
    page.screenshot(path=str(shots(tmp_path) / "transferability.png"), full_page=True)
    page.click("text=Container runs")
    page.wait_for_url(f"{live_server.url}/algorithms/challenges/{container_phase.challenge.slug}/runs/")
    assert page.locator("#runs tbody tr").count() == 2
    page.screenshot(path=str(shots(tmp_path) / "container-runs.png"), full_page=True)
    page.goto(f"{live_server.url}/algorithms/phases/{external.pk}/metric-container/")
    assert page.locator("form[data-tus-purpose=metric-container]").is_visible()
    page.screenshot(path=str(shots(tmp_path) / "metric-container.png"), full_page=True)
    connections.close_all()


def test_a_reload_resumes_from_the_stored_offset(live_server, browser, container_phase, team, participant,  # noqa: F811
                                                 tmp_path):
    archive, _ = image_archive(tmp_path / "model.tar", PREDICT)
    seen = {"offsets": [], "stop": False, "reloaded": False}

    def network(route):
        if route.request.method == "PATCH":
            if seen["stop"]:
                return route.abort("internetdisconnected")
            seen["offsets"].append(int(route.request.headers["upload-offset"]))
            if len(seen["offsets"]) == 3 and not seen["reloaded"]:
                seen["stop"] = True
        return route.continue_()

    page = browser.new_page()
    log_in(page, live_server, participant)
    page.route("**/uploads/**", network)
    url = f"{live_server.url}/submissions/phases/{container_phase.pk}/submit/"
    page.goto(url)
    page.set_input_files("#container-file", str(archive))
    page.click("button:has-text('Upload and run')")
    page.wait_for_selector("[data-upload-status][data-state=retrying]")
    received = ResumableUpload.objects.get().offset
    assert received == 3 * CHUNK

    page.goto(url)  # the tab is reloaded; the upload's URL is in localStorage
    seen.update(stop=False, offsets=[], reloaded=True)
    page.set_input_files("#container-file", str(archive))
    page.click("button:has-text('Upload and run')")
    page.wait_for_url(f"{live_server.url}/submissions/*/")
    assert seen["offsets"][0] == received  # it went on from where the server was
    assert ResumableUpload.objects.get().state == "received"
    connections.close_all()


def test_a_run_over_the_output_cap_says_which_cap_and_the_form_shows_them(live_server, browser, container_phase,  # noqa: F811
                                                                          team, participant, organizer, tmp_path,
                                                                          settings):
    settings.MICA_CONTAINER_OUTPUT_BYTES, settings.MICA_CONTAINER_OUTPUT_FILES = 1024**2, 10
    caps = f"1 MiB in {container_phase.test_set.cases.count() + 100} files and folders"  # one per case, and more
    archive, _ = image_archive(tmp_path / "writes-too-much.tar", HUGE_OUTPUT)
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    log_in(page, live_server, participant)
    page.goto(f"{live_server.url}/submissions/phases/{container_phase.pk}/submit/")
    form = page.locator("#container-submission")
    assert f"It may leave at most {caps} in /output" in " ".join(form.inner_text().split())
    form.scroll_into_view_if_needed()
    page.screenshot(path=str(shots(tmp_path) / "container-form-caps.png"), full_page=True)
    page.set_input_files("#container-file", str(archive))
    page.click("button:has-text('Upload and run')")
    page.wait_for_url(f"{live_server.url}/submissions/*/")

    run = Submission.objects.get().inference_run
    run_inference(run.pk)
    page.goto(f"{live_server.url}{run.get_absolute_url()}")
    assert page.locator("[data-status=failed]").is_visible()
    assert page.locator("#run-reason").inner_text().startswith(
        "The container's outputs were deleted: it wrote more than 1 MiB to /output")
    page.screenshot(path=str(shots(tmp_path) / "container-run-over-cap.png"), full_page=True)

    page.click("text=Log out")
    log_in(page, live_server, organizer)
    page.goto(f"{live_server.url}/algorithms/challenges/{container_phase.challenge.slug}/runs/")
    assert f"/output: {caps}" in page.locator("#phases").inner_text()
    page.screenshot(path=str(shots(tmp_path) / "container-runs-caps.png"), full_page=True)
    connections.close_all()
