"""An organizer reads the significance page and the challenge report of a seeded phase in a real
browser (Debian's chromium through Playwright): the matrix, the plots (stored SVGs shown as
images under the site's Content-Security-Policy) and their summaries. Screenshots are written to
MICA_SCREENSHOTS (a folder) when it is set, else to the test's temporary folder."""

import os
from pathlib import Path

import pytest
from django.db import connections

from mica.challenges.models import Team
from mica.evaluations.models import Backfill
from mica.leaderboards.models import PhaseReport, leaderboards_changed
from mica.leaderboards.tasks import build_report, draw_leaderboard_plots
from mica.submissions.models import Submission

from .conftest import csv_bytes, make_scores, make_truth, make_user, run_evaluations, upload
from .test_browser import browser, log_in, wait_until  # noqa: F401  (the fixture and the browser steps)

IMAGES_DRAWN = "Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


@pytest.fixture
def truth():
    return make_truth(120)


@pytest.fixture
def seeded(phase, challenge, organizer, truth):
    phase.concurrent_limit = phase.daily_limit = 50
    phase.save()
    case_ids, labels = truth
    for i, (name, signal) in enumerate((("Aurora", 3.0), ("Borealis", 2.7), ("Cirrus", 1.5), ("Dune", 0.4))):
        user = make_user(name.lower())
        challenge.register(user)
        Team.create_for(challenge, user, name)
        content = csv_bytes(["case_id", "score"], zip(case_ids, make_scores(labels, seed=i + 1, signal=signal)))
        run_evaluations(Submission.create(phase=phase, user=user, uploaded_file=upload("p.csv", content)))
    draw_leaderboard_plots(phase.pk)
    report = PhaseReport.request(phase, organizer)
    build_report(report.pk)
    return phase


def screenshots(tmp_path):
    folder = Path(os.environ.get("MICA_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_an_organizer_reads_the_significance_page_and_the_report(live_server, browser, seeded, organizer,  # noqa: F811
                                                                 tmp_path):
    folder = screenshots(tmp_path)
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    log_in(page, live_server, organizer)

    page.goto(f"{live_server.url}/leaderboards/phases/{seeded.pk}/")
    assert page.locator("#leaderboard tbody tr").count() == 4
    page.screenshot(path=str(folder / "leaderboard.png"), full_page=True)

    page.click("text=Statistics (public)")
    page.wait_for_selector("#pairwise")
    assert page.locator("#pairwise td.significant").count() >= 1
    assert page.locator("#kendall-tau").inner_text().strip()
    page.wait_for_load_state("networkidle")
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    wait_until(page, IMAGES_DRAWN)
    summaries = page.locator("figcaption[data-summary]").all_inner_texts()
    assert any("Rank stability" in text for text in summaries)
    page.screenshot(path=str(folder / "significance.png"), full_page=True)
    page.click("#backfill button")  # every evaluation has its intervals already: nothing is queued
    page.wait_for_selector("text=Every evaluation of this phase has its intervals")
    assert not Backfill.objects.exists()
    page.locator("#backfill").scroll_into_view_if_needed()
    page.screenshot(path=str(folder / "significance-backfill.png"))

    page.click("text=Report")
    page.wait_for_selector("#report-ranking")
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    wait_until(page, IMAGES_DRAWN)
    assert "Aurora" in page.locator("#report-ranking").inner_text()
    page.screenshot(path=str(folder / "report.png"), full_page=True)
    pdf = page.request.get(f"{live_server.url}/leaderboards/phases/{seeded.pk}/report/report.pdf").body()
    assert pdf.startswith(b"%PDF")
    (folder / "report.pdf").write_bytes(pdf)

    leaderboards_changed(seeded)  # a result arrived: the board says so until its refresh has run
    page.goto(f"{live_server.url}/leaderboards/phases/{seeded.pk}/")
    assert "newer results are being ranked" in page.locator("#updated").inner_text()
    page.screenshot(path=str(folder / "leaderboard-pending.png"))
    connections.close_all()
