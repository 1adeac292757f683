"""A participant in a real browser (Debian's chromium through Playwright): log in, upload, see the row."""

import shutil

import pytest
from django.db import connections

from mica.submissions.models import Submission

from .conftest import PASSWORD, run_evaluations

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
    public = run_evaluations(Submission.objects.get())["public"]
    page.reload()
    assert page.locator("[data-status=succeeded]").is_visible()
    page.click("text=Leaderboard")
    row = page.locator("#leaderboard tbody tr").first
    assert "Team Paul" in row.inner_text()
    assert f"{float(f'{public.primary_score:.4g}'):.4f}" in row.inner_text()
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


def wait_until(page, expression, timeout_seconds=10):
    """Poll a JavaScript expression until it is true. Not Playwright's wait_for_function: once its
    first check is false it polls through eval, which the pages' CSP (script-src 'self') forbids."""
    for _ in range(int(timeout_seconds * 10)):
        if page.evaluate(expression):
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"still false after {timeout_seconds} s: {expression}")


def log_in(page, live_server, user):
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


def test_a_challenge_from_draft_to_the_revealed_private_leaderboard(live_server, browser, tmp_path):
    """The organizer drafts a challenge, uploads a truth split in two, configures a phase and
    publishes; a participant submits twice and selects one; the organizer closes the phase and
    reveals the private leaderboard, which ranks the selected submission's private score."""
    from datetime import timedelta

    from django.contrib.auth.models import Permission
    from django.utils import timezone

    from mica.challenges.models import Challenge, Split
    from mica.leaderboards.tasks import refresh_leaderboards

    from .conftest import csv_bytes, make_scores, make_truth, make_user

    organizer, participant = make_user("olivia"), make_user("paul")
    organizer.user_permissions.add(Permission.objects.get(codename="add_challenge"))
    case_ids, labels = make_truth(200, seed=5)
    truth_file = tmp_path / "truth.csv"
    truth_file.write_bytes(csv_bytes(["case_id", "pneumonia"], zip(case_ids, labels)))
    page = browser.new_page(viewport={"width": 1280, "height": 900})

    log_in(page, live_server, organizer)
    page.goto(f"{live_server.url}/challenges/new/")
    page.fill("input[name=title]", "Pneumonia")
    page.fill("input[name=slug]", "pneumonia")
    page.select_option("select[name=task_type]", "classification")
    page.fill("textarea[name=terms]", "Do not try to identify patients.")
    page.click("button:has-text('Create draft')")
    page.wait_for_url(f"{live_server.url}/challenges/pneumonia/")
    assert page.locator(".badge:has-text('draft')").is_visible()
    page.click("text=Upload a hidden test set")
    page.set_input_files("input[name=truth_file]", str(truth_file))
    page.fill("input[name=private_fraction]", "0.5")
    page.fill("input[name=seed]", "3")
    page.click("button:has-text('Store test set')")
    page.wait_for_url(f"{live_server.url}/challenges/pneumonia/")
    page.click("text=Add a phase")
    page.fill("input[name=name]", "Final")
    now = timezone.now()
    page.fill("input[name=starts_at]", (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    page.fill("input[name=ends_at]", (now + timedelta(days=3)).strftime("%Y-%m-%dT%H:%M"))
    page.select_option("select[name=primary_metric]", "auc")
    page.check("input[name=secondary_metrics][value=log_loss]")
    page.select_option("select[name=selection]", "selected")
    page.fill("input[name=max_selected]", "1")
    page.screenshot(path=str(tmp_path / "phase-form.png"), full_page=True)
    page.click("button:has-text('Add phase')")
    page.wait_for_url(f"{live_server.url}/challenges/pneumonia/")
    page.click("#publish")
    page.wait_for_selector("text=Published")
    page.click("text=Log out")

    log_in(page, live_server, participant)
    page.goto(f"{live_server.url}/challenges/pneumonia/")
    page.check("input[name=accept_terms]")
    page.click("button:has-text('Register')")
    page.fill("input[name=name]", "Team Paul")
    page.click("button:has-text('Create team')")
    challenge = Challenge.objects.get(slug="pneumonia")
    phase = challenge.phases.get()
    for seed in (1, 2):
        predictions = tmp_path / f"run-{seed}.csv"
        predictions.write_bytes(csv_bytes(["case_id", "score"], zip(case_ids, make_scores(labels, seed=seed))))
        page.goto(f"{live_server.url}/submissions/phases/{phase.pk}/submit/")
        page.set_input_files("input[name=predictions]", str(predictions))
        page.click("button:has-text('Submit')")
        page.wait_for_selector("[data-status=queued]")
        run_evaluations(Submission.objects.get(original_filename=predictions.name))
    page.goto(f"{live_server.url}/submissions/phases/{phase.pk}/submit/")
    page.locator("#team-submissions tbody tr", has_text="run-2.csv").locator("button:has-text('Select')").click()
    page.wait_for_selector("text=Selected ✓")
    page.screenshot(path=str(tmp_path / "submissions.png"), full_page=True)
    chosen = Submission.objects.get(original_filename="run-2.csv")
    assert chosen.selected
    refresh_leaderboards(phase.pk)  # the worker's step after the selection changed the ranking
    # The participant cannot see the private leaderboard yet.
    assert page.goto(f"{live_server.url}/leaderboards/phases/{phase.pk}/private/").status == 404
    page.goto(f"{live_server.url}/")
    page.click("text=Log out")

    phase.ends_at = timezone.now() - timedelta(minutes=1)  # the phase closes
    phase.save()
    log_in(page, live_server, organizer)
    page.goto(f"{live_server.url}/leaderboards/phases/{phase.pk}/private/")
    page.click("button:has-text('Reveal it to everyone')")
    page.wait_for_selector("text=The private leaderboard is public now.")
    page.click("text=Log out")
    page.goto(f"{live_server.url}/leaderboards/phases/{phase.pk}/private/")
    row = page.locator("#leaderboard tbody tr").first
    private = chosen.evaluations.get(split=Split.PRIVATE).primary_score
    assert "Team Paul" in row.inner_text() and f"{float(f'{private:.4g}'):.4f}" in row.inner_text()
    page.screenshot(path=str(tmp_path / "private-leaderboard.png"), full_page=True)
    connections.close_all()
