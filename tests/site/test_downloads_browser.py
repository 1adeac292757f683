"""The data page and the download log in a real browser: an organizer prepares a release, a
participant downloads it with the browser, the organizer sees the download in the log."""

import zipfile

import pytest

from mica.downloads.models import DataRelease
from mica.downloads.tasks import prepare_release

from .conftest import PASSWORD
from .test_browser import browser  # noqa: F401  (the fixture)
from .test_downloads import dataset, imaging_test_set, training_labels  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def log_in(page, live_server, user):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


def test_an_organizer_prepares_a_release_and_a_participant_downloads_it(live_server, browser, challenge, organizer,  # noqa: F811
                                                                       team, participant, dataset,  # noqa: F811
                                                                       imaging_test_set, tmp_path):  # noqa: F811
    _, labels = training_labels(dataset, imaging_test_set)
    labels_file = tmp_path / "labels.csv"
    labels_file.write_bytes(labels)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(page, live_server, organizer)
    page.goto(f"{live_server.url}/downloads/challenges/{challenge.slug}/")
    page.fill("input[name=name]", "Training")
    page.select_option("select[name=kind]", "training")
    page.select_option("select[name=dataset]", str(dataset.pk))
    page.set_input_files("input[name=labels]", str(labels_file))
    page.click("button:has-text('Prepare the release')")
    page.wait_for_selector("#releases [data-status=queued]")
    release = DataRelease.objects.get(name="Training")
    prepare_release(release.pk)  # the worker's step
    page.reload()
    page.wait_for_selector("#releases [data-status=ready]")
    page.screenshot(path=str(tmp_path / "data-organizer.png"), full_page=True)

    participant_page = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(participant_page, live_server, participant)
    participant_page.goto(f"{live_server.url}/downloads/challenges/{challenge.slug}/")
    participant_page.screenshot(path=str(tmp_path / "data-participant.png"), full_page=True)
    assert participant_page.locator("form").filter(has_text="New release").count() == 0
    with participant_page.expect_download() as download:
        participant_page.click("#releases a:has-text('Download')")
    saved = tmp_path / "archive.zip"
    download.value.save_as(saved)
    assert "labels.csv" in zipfile.ZipFile(saved).namelist()

    page.goto(f"{live_server.url}/downloads/challenges/{challenge.slug}/log/")
    page.wait_for_selector("#downloads td:has-text('paul')")
    page.screenshot(path=str(tmp_path / "download-log.png"), full_page=True)
