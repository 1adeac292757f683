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
