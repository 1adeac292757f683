"""The forum, moderation, data and notification-settings pages at a desktop's and a phone's width
(Debian's chromium through Playwright): nothing is wider than the screen, and each page is
saved as a screenshot (into $MICA_SCREENSHOT_DIR when set, to be looked at)."""

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connections
from django.utils import timezone

from mica.downloads.models import DataRelease
from mica.forum.models import Report, Thread

from .test_browser import browser, log_in, wait_until  # noqa: F401  (the fixture)
from .test_downloads import dataset, imaging_test_set, prepared, training_labels  # noqa: F401  (fixtures)
from .test_forum import png_bytes

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

WIDTHS = {"desktop": 1280, "phone": 375}


@pytest.fixture(autouse=True)
def no_account_age(settings):
    settings.MICA_FORUM_MIN_ACCOUNT_AGE_HOURS = 0


@pytest.fixture
def screens(tmp_path):
    folder = Path(os.environ.get("MICA_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def busy_forum(challenge, team, rival, participant, organizer):
    """Threads of every kind: an announcement, a write-up, a locked one, a long title; posts with
    code, an image, a hidden and a deleted one, and reports waiting for the organizers."""
    Thread.start(challenge, organizer, "The final phase opens on Monday",
                 "Submissions open at **09:00 UTC**. Read the [rules](/challenges/pneumonia/).", announcement=True)
    Thread.start(challenge, participant, "Our solution: a DenseNet-121 with test-time augmentation",
                 "We trained for 40 epochs.", writeup_team=team)
    image = SimpleUploadedFile("roc.png", png_bytes((480, 300), (40, 120, 200)), content_type="image/png")
    thread = Thread.start(challenge, participant, "Does the public split have the same prevalence as the "
                          "private one, and is it stratified by patient?",
                          "Our AUC drops on the public part:\n\n```python\nprint(roc_auc_score(y, p))\n```\n\n"
                          "| split | AUC |\n|---|---|\n| validation | 0.91 |\n| public | 0.84 |",
                          images=[(image, "ROC curve of our model on the public split")])
    answer = thread.reply(organizer, "> **paul** wrote:\n> Our AUC drops\n\nYes: both parts were drawn by "
                                     "patient with the same seed.")
    rude = thread.reply(rival, "This is a silly question.")
    rude.hide(organizer, "Be kind")
    spam = thread.reply(rival, "Buy cheap GPUs here")
    spam.delete_by_moderator(organizer, "Advertising")
    Report.objects.create(post=answer, reporter=rival, reason="The organizer reveals how the split was drawn, "
                                                              "which may help teams probe the private part.")
    Report.objects.create(post=thread.posts.first(), reporter=rival, reason="Off-topic")
    locked = Thread.start(challenge, rival, "Can we use external data?", "Asking for a friend.")
    locked.set_locked(True)
    Thread.objects.filter(pk=locked.pk).update(last_post_at=timezone.now() - timedelta(days=3))
    return thread


def check(page, url, width, path):
    page.goto(url)
    # A wide table or a long word scrolls inside its box; the page itself never scrolls sideways.
    assert page.evaluate("document.documentElement.scrollWidth") <= width, url
    for image in page.locator("img[loading=lazy]").all():  # load them for the screenshot
        image.scroll_into_view_if_needed()
    wait_until(page, "[...document.images].every(image => image.complete)")
    page.screenshot(path=str(path), full_page=True)


@pytest.mark.parametrize("device", WIDTHS)
def test_the_forum_pages(live_server, browser, busy_forum, organizer, participant, screens, device):  # noqa: F811
    width = WIDTHS[device]
    thread, slug = busy_forum, busy_forum.challenge.slug
    page = browser.new_page(viewport={"width": width, "height": 900}, is_mobile=device == "phone")
    log_in(page, live_server, organizer)
    base = live_server.url
    check(page, f"{base}/forum/{slug}/", width, screens / f"forum-list-{device}.png")
    check(page, f"{base}{thread.get_absolute_url()}", width, screens / f"forum-thread-organizer-{device}.png")
    check(page, f"{base}/forum/{slug}/moderation/", width, screens / f"forum-moderation-{device}.png")
    check(page, f"{base}/forum/{slug}/?q=prevalence", width, screens / f"forum-search-{device}.png")
    reader = browser.new_page(viewport={"width": width, "height": 900}, is_mobile=device == "phone")
    log_in(reader, live_server, participant)
    check(reader, f"{base}{thread.get_absolute_url()}", width, screens / f"forum-thread-participant-{device}.png")
    check(reader, f"{base}/notifications/settings/", width, screens / f"notification-settings-{device}.png")
    check(reader, f"{base}/notifications/", width, screens / f"notifications-{device}.png")
    connections.close_all()


@pytest.mark.parametrize("device", WIDTHS)
def test_an_empty_forum_and_moderation_queue(live_server, browser, challenge, organizer, screens, device):  # noqa: F811
    width = WIDTHS[device]
    page = browser.new_page(viewport={"width": width, "height": 900}, is_mobile=device == "phone")
    log_in(page, live_server, organizer)
    check(page, f"{live_server.url}/forum/{challenge.slug}/", width, screens / f"forum-empty-{device}.png")
    check(page, f"{live_server.url}/forum/{challenge.slug}/moderation/", width,
          screens / f"forum-moderation-empty-{device}.png")
    connections.close_all()


@pytest.mark.parametrize("device", WIDTHS)
def test_the_data_page(live_server, browser, challenge, organizer, team, participant, dataset,  # noqa: F811
                       imaging_test_set, screens, device):  # noqa: F811
    width = WIDTHS[device]
    participant_page = browser.new_page(viewport={"width": width, "height": 900}, is_mobile=device == "phone")
    log_in(participant_page, live_server, participant)
    url = f"{live_server.url}/downloads/challenges/{challenge.slug}/"
    check(participant_page, url, width, screens / f"downloads-empty-{device}.png")
    _, labels = training_labels(dataset, imaging_test_set)
    prepared(DataRelease.create(challenge=challenge, dataset=dataset, name="Training images and labels",
                                kind=DataRelease.Kind.TRAINING, user=organizer,
                                labels=SimpleUploadedFile("labels.csv", labels)))
    check(participant_page, url, width, screens / f"downloads-participant-{device}.png")
    page = browser.new_page(viewport={"width": width, "height": 900}, is_mobile=device == "phone")
    log_in(page, live_server, organizer)
    check(page, url, width, screens / f"downloads-organizer-{device}.png")
    connections.close_all()
