"""Brute-force protection across gunicorn's worker processes, and workers recycled by max_requests.

gunicorn runs with docker/gunicorn.conf.py (3 workers) on the test database and Redis, behind
one trusted proxy (MICA_PROXY_COUNT=1: the client address comes from X-Forwarded-For). Failures
land on different worker processes; the counts must still add up.

Bad inputs tried: 60 wrong passwords on the token endpoint for one account, then the right
password on the token endpoint, the log-in form and the admin log-in, from the same and from
another address; twice the limit of wrong passwords on the log-in form.
"""

import re
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests
from django.core.cache import cache

from .conftest import PASSWORD, make_user
from .workers import ROOT, worker_environment

pytestmark = pytest.mark.django_db(transaction=True)

MAX_REQUESTS = 15


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def gunicorn(tmp_path):
    cache.clear()
    port = free_port()
    log_path = tmp_path / "gunicorn.log"
    env = worker_environment(GUNICORN_BIND=f"127.0.0.1:{port}", WEB_CONCURRENCY="3", MICA_PROXY_COUNT="1",
                             GUNICORN_MAX_REQUESTS=str(MAX_REQUESTS), GUNICORN_MAX_REQUESTS_JITTER="2")
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--config", str(ROOT / "docker" / "gunicorn.conf.py"), "config.wsgi"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(f"{url}/api/v1/challenges/", timeout=10)
            break
        except (requests.ConnectionError, requests.Timeout):
            assert process.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.3)
    yield url, log_path
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=120)
    cache.clear()


def from_address(address):
    return {"X-Forwarded-For": address}


def token(url, username, password, address):
    return requests.post(f"{url}/api/v1/auth/token/", data={"username": username, "password": password},
                         headers=from_address(address), timeout=120)


def form_post(url, path, username, password, address):
    session = requests.Session()
    page = session.get(f"{url}{path}", headers=from_address(address), timeout=120)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    # The CSRF cookie is Secure (production settings): sent by hand over this plain-HTTP test link.
    cookie = f"csrftoken={page.cookies['csrftoken']}"
    return session.post(f"{url}{path}", data={"username": username, "password": password,
                                              "csrfmiddlewaretoken": csrf},
                        headers={**from_address(address), "Cookie": cookie}, timeout=120, allow_redirects=False)


def test_sixty_wrong_passwords_across_workers_lock_every_door(gunicorn, settings):
    url, log_path = gunicorn
    victim = make_user("victim", is_staff=True)
    make_user("bystander")
    attacker = "203.0.113.5"
    statuses = [token(url, victim.username, "wrong", attacker).status_code for _ in range(60)]
    limit = settings.MICA_LOGIN_FAILURE_LIMIT
    assert set(statuses[:limit - 1]) == {400} and set(statuses[limit:]) == {429}, statuses
    for address in [attacker, "198.51.100.7"]:
        assert token(url, victim.username, PASSWORD, address).status_code == 429
        assert form_post(url, "/accounts/login/", victim.username, PASSWORD, address).status_code == 429
        assert form_post(url, "/admin/login/", victim.username, PASSWORD, address).status_code == 429
    # The attacker's address is locked for everyone; another account from elsewhere is not.
    assert token(url, "bystander", PASSWORD, attacker).status_code == 429
    assert token(url, "bystander", PASSWORD, "198.51.100.8").status_code == 200

    log = log_path.read_text()
    # The attempts were answered by more than one worker, which were recycled after max_requests.
    assert "Autorestarting worker after current request" in log, log[-3000:]
    assert len(set(re.findall(r"Booting worker with pid: (\d+)", log))) > 3


def test_a_form_lock_from_many_failures_is_shared_by_all_workers(gunicorn, settings):
    url, _ = gunicorn
    victim = make_user("victim")
    statuses = [form_post(url, "/accounts/login/", victim.username, "wrong", "203.0.113.9").status_code
                for _ in range(2 * settings.MICA_LOGIN_FAILURE_LIMIT)]
    assert statuses[-1] == 429 and statuses.count(200) == settings.MICA_LOGIN_FAILURE_LIMIT - 1
    assert form_post(url, "/accounts/login/", victim.username, PASSWORD, "198.51.100.9").status_code == 429


def test_the_image_runs_this_config_and_returns_freed_memory():
    import yaml

    web = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())["services"]["web"]
    assert "--config docker/gunicorn.conf.py" in " ".join(web["command"])
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert 'CMD ["gunicorn", "--config", "docker/gunicorn.conf.py"' in dockerfile
    assert "MALLOC_MMAP_THRESHOLD_=1048576" in dockerfile and "MALLOC_ARENA_MAX=2" in dockerfile
