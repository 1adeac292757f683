"""The organizer's transferability view in Chromium, after real site workers (their own
processes, over HTTP) scored two algorithms at two hospitals: one sharing per-case values, one
keeping them. Screenshots go to MICA_SCREENSHOTS (default: the test's tmp_path)."""

import pytest

from mica.sites.models import SiteJob

from .sites import (hospital, other_hospital, site_admin, site_data, site_phase, start_worker,  # noqa: F401
                    token_file, two_algorithms)
from .test_algorithms_browser import shots
from .test_browser import browser, log_in  # noqa: F401  (the browser fixture)

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser, pytest.mark.worker]


def test_the_transferability_view(live_server, browser, hospital, other_hospital,  # noqa: F811
                                  two_algorithms, site_admin, organizer, tmp_path):
    hospital.share_per_case = True
    hospital.save()
    for index, site in enumerate((hospital, other_hospital)):
        data = tmp_path / f"site{index}"
        site_data(data, n_cases=40 + 20 * index, seed=index)
        token, _ = token_file(site, site_admin, tmp_path)
        site.queue_evaluations(organizer)
        worker = start_worker(live_server.url, token, data)
        out, _ = worker.communicate(timeout=120)
        assert worker.returncode == 0, out.decode()
    assert SiteJob.objects.filter(status="succeeded").count() == 4

    page = browser.new_page(viewport={"width": 1280, "height": 800})
    log_in(page, live_server, organizer)
    page.goto(f"{live_server.url}/sites/phases/{hospital.phase_id}/transferability/")
    table = page.locator("#transferability")
    assert table.locator("tbody tr").count() == 2
    headers = table.locator("thead th").all_inner_texts()
    assert headers[1:4] == ["County General", "St Elsewhere", "Pooled"]
    text = table.inner_text()
    assert "County General − St Elsewhere" in text and "rank 1" in text
    assert "normal approximation" in text  # AUC: the sites' intervals
    page.screenshot(path=str(shots(tmp_path) / "sites-transferability.png"), full_page=True)
    page.goto(f"{live_server.url}/sites/{hospital.pk}/audit/")
    assert page.locator("#audit tbody tr").count() == 2
    assert "per-case values of log_loss (40 each)" in page.locator("#audit").inner_text()
    page.locator("#audit summary").first.click()
    page.screenshot(path=str(shots(tmp_path) / "sites-audit.png"), full_page=True)
    page.goto(f"{live_server.url}/sites/{hospital.pk}/")
    page.screenshot(path=str(shots(tmp_path) / "sites-site.png"), full_page=True)


def test_the_site_pages_and_the_boards_site_column(live_server, browser, hospital, other_hospital,  # noqa: F811
                                                   two_algorithms, site_admin, organizer, participant, truth,
                                                   tmp_path):
    """The organizer's list of a phase's sites and a site's jobs after a real worker ran, then the
    leaderboard with its site columns as a participant sees it (rounded)."""
    from mica.challenges.models import Phase
    from mica.submissions.models import Submission

    from .conftest import csv_bytes, make_scores, run_evaluations, upload

    Phase.objects.filter(pk=hospital.phase_id).update(score_precision=2)
    case_ids, labels = truth
    content = csv_bytes(["case_id", "score"], zip(case_ids, make_scores(labels)))
    run_evaluations(Submission.create(phase=hospital.phase, user=participant, uploaded_file=upload("p.csv", content)))
    data = tmp_path / "site"
    site_data(data)
    token, _ = token_file(hospital, site_admin, tmp_path)
    hospital.queue_evaluations(organizer)
    worker = start_worker(live_server.url, token, data)
    out, _ = worker.communicate(timeout=120)
    assert worker.returncode == 0, out.decode()
    SiteJob.queue_comparison(site=hospital, algorithm=two_algorithms[0], other_algorithm=two_algorithms[1],
                             metric="auc", user=organizer)

    page = browser.new_page(viewport={"width": 1280, "height": 800})
    log_in(page, live_server, organizer)
    page.goto(f"{live_server.url}/sites/phases/{hospital.phase_id}/")
    rows = page.locator("#sites tbody tr").all_inner_texts()
    assert rows[0].startswith("County General") and "none yet" in rows[0] and "never" in rows[0]
    assert rows[1].startswith("St Elsewhere") and "2 finished" in rows[1] and "1 waiting" in rows[1]
    page.screenshot(path=str(shots(tmp_path) / "sites-phase-list.png"), full_page=True)
    page.goto(f"{live_server.url}/sites/{hospital.pk}/")
    assert page.locator("#jobs tbody tr").count() == 3
    page.screenshot(path=str(shots(tmp_path) / "sites-jobs.png"), full_page=True)

    page.context.clear_cookies()
    log_in(page, live_server, participant)
    page.goto(f"{live_server.url}/leaderboards/phases/{hospital.phase_id}/")
    headers = page.locator("#leaderboard thead th.site-column").all_inner_texts()
    assert headers == ["County General\nauc at the site", "St Elsewhere\nauc at the site"]
    cells = page.locator("#leaderboard tbody tr").first.locator("td.site-column").all_inner_texts()
    assert cells == ["–", "0.5000\n[0.5000, 0.5000]"]  # the coin's AUC at St Elsewhere, with its interval
    page.screenshot(path=str(shots(tmp_path) / "sites-leaderboard-participant.png"), full_page=True)
