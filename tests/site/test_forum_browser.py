"""The forum in a real browser (Debian's chromium through Playwright): a participant asks with an
image, an organizer answers, the participant sees the unread count; pages at a phone's width."""

import pytest
from django.db import connections

from mica.forum.models import Attachment, Thread
from mica.submissions.models import Submission

from .conftest import run_evaluations, upload
from .test_browser import browser, log_in  # noqa: F401  (the fixture)
from .test_forum import png_bytes

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


@pytest.fixture(autouse=True)
def no_account_age(settings):
    settings.MICA_FORUM_MIN_ACCOUNT_AGE_HOURS = 0


def test_a_participant_asks_with_an_image_and_an_organizer_answers(live_server, browser, challenge, phase, team,  # noqa: F811
                                                                   participant, organizer, tmp_path):
    image = tmp_path / "roc-curve.png"
    image.write_bytes(png_bytes((320, 200), (40, 120, 200)))
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(page, live_server, participant)
    page.goto(f"{live_server.url}/challenges/{challenge.slug}/")
    page.click("text=Forum")
    page.click("text=New thread")
    page.fill("input[name=title]", "Does the public split have the same prevalence?")
    page.fill("textarea[name=body]", "Our AUC drops on the public part.\n\n```python\nprint(auc)\n```\n\n"
                                     "<script>alert(1)</script>")
    page.set_input_files("input[name=image]", str(image))
    page.fill("input[name=image_alt]", "ROC curve of our model on the public split")
    page.click("button:has-text('Post')")
    page.wait_for_selector("article.post")
    assert page.locator("article.post pre code").inner_text().strip() == "print(auc)"
    shown = page.locator("figure.attachment img")
    assert shown.get_attribute("alt") == "ROC curve of our model on the public split"
    assert shown.evaluate("img => img.naturalWidth") == 320  # served to the participant through the access check
    assert page.locator("article.post script").count() == 0
    thread = Thread.objects.get()
    assert Attachment.objects.get().post.thread == thread

    answer = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(answer, live_server, organizer)
    answer.goto(f"{live_server.url}{thread.get_absolute_url()}")
    answer.click("text=Quote")
    answer.fill("textarea[name=body]", answer.locator("textarea[name=body]").input_value()
                + "Yes: both parts were drawn by patient with the same seed.")
    answer.click("button:has-text('Post reply')")
    answer.wait_for_selector(".by-organizer >> nth=0")

    page.goto(f"{live_server.url}{thread.get_absolute_url()}")
    assert page.locator(".notifications-link .count").inner_text() == "1"
    assert page.locator("article.by-organizer .badge.organizer").inner_text() == "organizer"
    page.screenshot(path=str(tmp_path / "forum-thread.png"), full_page=True)
    page.click(".notifications-link")
    assert "new reply" in page.locator(".notifications").inner_text()
    page.screenshot(path=str(tmp_path / "notifications.png"), full_page=True)
    answer.goto(f"{live_server.url}/forum/{challenge.slug}/")
    answer.screenshot(path=str(tmp_path / "forum-threads.png"), full_page=True)
    connections.close_all()


def test_tables_fit_a_phone_screen(live_server, browser, challenge, phase, team, participant, predictions,  # noqa: F811
                                   tmp_path):
    submission = Submission.create(phase=phase, user=participant, uploaded_file=upload("predictions.csv", predictions))
    run_evaluations(submission)
    page = browser.new_page(viewport={"width": 375, "height": 740}, device_scale_factor=2, is_mobile=True)
    log_in(page, live_server, participant)
    for path, name in ((f"/leaderboards/phases/{phase.pk}/", "phone-leaderboard.png"),
                       ("/accounts/submissions/", "phone-my-submissions.png")):
        page.goto(f"{live_server.url}{path}")
        # Nothing makes the page itself wider than the screen: a wide table scrolls inside it.
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, path
        page.screenshot(path=str(tmp_path / name), full_page=True)
    connections.close_all()
