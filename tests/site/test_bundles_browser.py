"""The import page in a real browser: a Codabench bundle imported, its unmapped items listed."""

import pytest
from django.contrib.auth.models import Permission

from .test_browser import browser  # noqa: F401  (the fixture)
from .test_bundles import FIXTURES, folder_zip
from .test_downloads_browser import log_in

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.browser]


def test_an_organizer_imports_a_codabench_bundle(live_server, browser, organizer, challenge, tmp_path):  # noqa: F811
    organizer.user_permissions.add(Permission.objects.get(codename="add_challenge",
                                                          content_type__app_label="challenges"))
    bundle = tmp_path / "competition.zip"
    bundle.write_bytes(folder_zip(FIXTURES / "codabench_chest_xray").getvalue())
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    log_in(page, live_server, organizer)
    page.goto(f"{live_server.url}/bundles/challenges/{challenge.slug}/")
    page.screenshot(path=str(tmp_path / "bundle-export.png"), full_page=True)
    page.goto(f"{live_server.url}/bundles/import/")
    page.set_input_files("input[name=bundle]", str(bundle))
    page.click("button:has-text('Import')")
    page.wait_for_selector("#problems")  # no task type: refused, saying why
    page.screenshot(path=str(tmp_path / "bundle-refused.png"), full_page=True)
    page.set_input_files("input[name=bundle]", str(bundle))
    page.select_option("select[name=task_type]", "classification")
    page.click("button:has-text('Import')")
    page.wait_for_selector("#unmapped li:has-text('docker_image: not mapped')")
    page.screenshot(path=str(tmp_path / "bundle-imported.png"), full_page=True)
