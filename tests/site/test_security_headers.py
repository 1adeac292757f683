"""Content-Security-Policy, JSON-only API in production, and Markdown without remote images.

Bad inputs tried: Markdown images from http(s), protocol-relative (//), backslash (/\\), data:
and javascript: URLs, entity-encoded slashes and an inline <img onerror>; an Accept: text/html
request to the API.
"""

import pytest
from django.db import connections

from mica.core.markdown import render_markdown

from .test_browser import CHROMIUM, CHROMIUM_FLAGS

REMOTE_IMAGES = [
    "![pixel](https://tracker.example/p.gif)",
    "![pixel](http://tracker.example/p.gif)",
    "![pixel](//tracker.example/p.gif)",
    '<img src="/\\tracker.example/p.gif">',
    '<img src="&#47;&#47;tracker.example/p.gif">',
    '<img src=" //tracker.example/p.gif">',
    "![pixel](data:image/gif;base64,R0lGODlhAQABAAAAACw=)",
    "![pixel](javascript:alert(1))",
    '<img src="https://tracker.example/p.gif" onerror="alert(1)">',
]


@pytest.mark.parametrize("text", REMOTE_IMAGES)
def test_markdown_drops_remote_images(text):
    html = render_markdown(text)
    assert "tracker.example" not in html and "src=" not in html and "onerror" not in html, html


@pytest.mark.parametrize("path", ["/media/previews/a.png", "logo.png", "../figures/roc.png"])
def test_markdown_keeps_same_site_images(path):
    assert f'src="{path}"' in render_markdown(f"![figure]({path})")


@pytest.mark.django_db
def test_a_challenge_page_shows_no_remote_image(client, challenge):
    challenge.description = "Results ![pixel](https://tracker.example/p.gif) and [a link](https://example.org)"
    challenge.save()
    page = client.get(challenge.get_absolute_url())
    assert page.status_code == 200
    assert b"tracker.example" not in page.content
    assert b'href="https://example.org"' in page.content


@pytest.mark.django_db
def test_every_answer_carries_the_content_security_policy(client):
    for url in ["/", "/accounts/login/", "/api/v1/challenges/"]:
        policy = client.get(url)["Content-Security-Policy"]
        directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
        assert directives["script-src"] == "'self'"
        assert directives["img-src"] == "'self'"
        assert directives["frame-ancestors"] == "'none'"
        assert "unsafe-inline" not in policy


@pytest.mark.django_db
def test_the_api_answers_json_only_in_production(client, settings):
    assert settings.DEBUG is False
    browser_accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    response = client.get("/api/v1/challenges/", HTTP_ACCEPT=browser_accept)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert b"<html" not in response.content


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_swagger_docs_work_under_the_policy(live_server, monkeypatch, phase, tmp_path):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    violations, remote = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page()
        page.on("console", lambda message: violations.append(message.text)
                if "Content Security Policy" in message.text else None)
        page.on("request", lambda request: remote.append(request.url)
                if not request.url.startswith((live_server.url, "data:")) else None)
        page.goto(f"{live_server.url}/api/docs/")
        page.wait_for_selector(".opblock-summary-path", timeout=20000)
        paths = page.locator(".opblock-summary-path").all_inner_texts()
        page.screenshot(path=str(tmp_path / "api-docs.png"))
        browser.close()
    assert "/api/v1/auth/token/" in " ".join(paths)
    assert violations == []
    assert remote == []
    connections.close_all()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_lockout_page_explains_itself_under_the_policy(live_server, monkeypatch, participant, settings,
                                                         tmp_path):
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    violations = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = browser.new_page()
        page.on("console", lambda message: violations.append(message.text)
                if "Content Security Policy" in message.text else None)
        for _ in range(settings.MICA_LOGIN_FAILURE_LIMIT):
            page.goto(f"{live_server.url}/accounts/login/")
            page.fill("input[name=username]", participant.username)
            page.fill("input[name=password]", "not-the-password")
            page.click("button[type=submit]")
        heading = page.locator("h1").inner_text()
        # mica.css applies (a stylesheet from the site itself, allowed by the policy).
        card_radius = page.evaluate("getComputedStyle(document.querySelector('.card')).borderRadius")
        page.screenshot(path=str(tmp_path / "locked-out.png"))
        browser.close()
    assert heading == "Too many failed log-ins"
    assert card_radius not in ("", "0px")
    assert violations == []
    connections.close_all()


@pytest.mark.django_db
def test_a_url_no_api_route_matches_is_a_json_404_and_a_page_elsewhere(client):
    api = client.get("/api/v1/challenges/not.a.slug/")
    assert api.status_code == 404 and api.json() == {"detail": "Not found."}
    page = client.get("/no-such-page/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")
