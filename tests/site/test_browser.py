"""A participant in a real browser (Debian's chromium through Playwright): log in, upload, see the row."""

import shutil

import pytest
from django.db import connections

from mica.submissions.models import Submission
from mica.submissions.tasks import score_submission

from .conftest import PASSWORD

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture
def browser(monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the ORM calls of the test itself
    # are still plain synchronous ones.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()



def test_a_participant_uploads_and_sees_the_leaderboard_row(live_server, browser, phase, team, participant,
                                                             predictions, tmp_path):
    predictions_file = tmp_path / "my-predictions.csv"
    predictions_file.write_bytes(predictions)
    page = browser.new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", participant.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")

    page.click(f"text={phase.challenge.title}")
    page.click("text=Submit")
    page.set_input_files("input[name=predictions]", str(predictions_file))
    page.click("button:has-text('Submit')")
    page.wait_for_selector("[data-status=queued]")

    # The worker's step, run here: test_worker.py shows a real worker doing it.
    score_submission(Submission.objects.get().pk)
    page.reload()
    assert page.locator("[data-status=scored]").is_visible()
    page.click("text=Leaderboard")
    row = page.locator("#leaderboard tbody tr").first
    assert "Team Paul" in row.inner_text()
    score = Submission.objects.get().primary_score
    assert f"{score:.4f}" in row.inner_text()
    page.screenshot(path=str(tmp_path / "leaderboard.png"))
    # Queries made while Playwright's event loop runs get a connection of their own (asgiref
    # keys connections by context): close it, or the test database cannot be dropped.
    connections.close_all()


def test_a_bad_file_shows_its_error_in_the_page(live_server, browser, phase, team, participant, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"case_id,score\ncase-00000,0.5\ncase-00000,0.7\n")
    page = browser.new_page()
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", participant.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.goto(f"{live_server.url}/submissions/phases/{phase.pk}/submit/")
    page.set_input_files("input[name=predictions]", str(bad))
    page.click("button:has-text('Submit')")
    assert "duplicate" in page.locator(".errorlist").inner_text().lower()
    assert Submission.objects.count() == 0
    connections.close_all()
