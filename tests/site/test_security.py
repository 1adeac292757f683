"""Brute-force protection and API tokens that expire and can be revoked.

Bad inputs tried: 60 wrong passwords in a row on the log-in form, the admin log-in and the token
endpoint, for one account from one address and for many accounts from one address; then the
right password; an expired token, a revoked token, a made-up token, no token at all.
"""

import time
from datetime import datetime, timedelta

import pytest
from axes.models import AccessAttempt
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from .conftest import PASSWORD, make_user

pytestmark = pytest.mark.django_db

WRONG = "not-the-password"


@pytest.fixture(autouse=True)
def fresh_failure_counters():
    # The token endpoint counts failures in the shared cache (Redis here), which outlives a test.
    cache.clear()
    yield
    cache.clear()


def form_login(client, username, password):
    return client.post("/accounts/login/", {"username": username, "password": password})


def admin_login(client, username, password):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password})


def token_login(client, username, password, address="127.0.0.1"):
    return client.post("/api/v1/auth/token/", {"username": username, "password": password}, REMOTE_ADDR=address)


@pytest.mark.parametrize("login", [form_login, admin_login], ids=["login form", "admin login"])
def test_sixty_wrong_passwords_lock_the_account_even_for_the_right_one(login, settings):
    user = make_user("victim", is_staff=True)
    statuses = [login(Client(), user.username, WRONG).status_code for _ in range(60)]
    limit = settings.MICA_LOGIN_FAILURE_LIMIT
    assert set(statuses[:limit - 1]) == {200}  # the form again, with its error
    assert set(statuses[limit:]) == {429}
    refused = login(Client(), user.username, PASSWORD)
    assert refused.status_code == 429
    assert b"Too many failed log-ins" in refused.content
    assert "_auth_user_id" not in refused.wsgi_request.session


def test_the_form_lock_ends_after_the_cool_off(settings):
    user = make_user("victim")
    for _ in range(60):
        form_login(Client(), user.username, WRONG)
    assert form_login(Client(), user.username, PASSWORD).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(seconds=settings.MICA_LOGIN_COOLOFF + 1))
    assert form_login(Client(), user.username, PASSWORD).status_code == 302


def test_one_address_trying_many_accounts_is_locked_out():
    users = [make_user(f"user{i}") for i in range(60)]
    # A new X-Forwarded-For each time changes nothing: with no trusted proxy it is not read.
    statuses = [Client(HTTP_X_FORWARDED_FOR=f"10.1.0.{i}").post(
        "/accounts/login/", {"username": user.username, "password": WRONG}).status_code
        for i, user in enumerate(users)]
    assert statuses[-1] == 429
    # Another account, never tried, from the same address: refused too.
    assert form_login(Client(), make_user("fresh").username, PASSWORD).status_code == 429
    # The same account from another address still logs in: the lock is per address and per account.
    assert Client(REMOTE_ADDR="10.0.0.9").post(
        "/accounts/login/", {"username": "fresh", "password": PASSWORD}).status_code == 302


def test_sixty_wrong_passwords_on_the_token_endpoint_lock_it(settings):
    user = make_user("victim")
    client = APIClient()
    responses = [token_login(client, user.username, WRONG) for _ in range(60)]
    limit = settings.MICA_LOGIN_FAILURE_LIMIT
    assert {r.status_code for r in responses[:limit - 1]} == {400}
    assert {r.status_code for r in responses[limit:]} == {429}
    refused = token_login(client, user.username, PASSWORD)
    assert refused.status_code == 429
    assert 0 < int(refused["Retry-After"]) <= settings.MICA_LOGIN_COOLOFF
    assert not Token.objects.filter(user=user).exists()
    # Another address is refused too for this account; another account from the first address too.
    assert token_login(client, user.username, PASSWORD, address="10.0.0.7").status_code == 429
    assert token_login(client, make_user("bystander").username, PASSWORD).status_code == 429
    # A third party's account from a third address is not affected.
    assert token_login(client, "bystander", PASSWORD, address="10.0.0.8").status_code == 200


def test_the_token_lock_ends_after_the_cool_off(settings):
    settings.MICA_LOGIN_COOLOFF = 2
    settings.AXES_COOLOFF_TIME = timedelta(seconds=2)
    user = make_user("victim")
    client = APIClient()
    for _ in range(settings.MICA_LOGIN_FAILURE_LIMIT):
        token_login(client, user.username, WRONG)
    assert token_login(client, user.username, PASSWORD).status_code == 429
    time.sleep(2.5)
    assert token_login(client, user.username, PASSWORD).status_code == 200


def test_a_success_is_not_counted_as_a_failure(settings):
    user = make_user("regular")
    client = APIClient()
    for _ in range(3 * settings.MICA_LOGIN_FAILURE_LIMIT):
        assert token_login(client, user.username, PASSWORD).status_code == 200


# Tokens


def authenticated(token_key):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token_key}")
    return client


def test_a_token_expires_and_a_new_one_is_issued(settings):
    user = make_user("alice")
    body = token_login(APIClient(), user.username, PASSWORD).json()
    assert authenticated(body["token"]).get("/api/v1/submissions/").status_code == 200
    issued = Token.objects.get(key=body["token"])
    expires_at = datetime.fromisoformat(body["expires_at"].replace("Z", "+00:00"))
    assert expires_at == issued.created + timedelta(seconds=settings.MICA_TOKEN_TTL)
    Token.objects.filter(pk=issued.pk).update(created=timezone.now() - timedelta(seconds=settings.MICA_TOKEN_TTL + 1))
    expired = authenticated(body["token"]).get("/api/v1/submissions/")
    assert expired.status_code == 401
    assert "expired" in expired.json()["detail"]
    assert expired["WWW-Authenticate"] == "Token"
    renewed = token_login(APIClient(), user.username, PASSWORD).json()["token"]
    assert renewed != body["token"]
    assert authenticated(renewed).get("/api/v1/submissions/").status_code == 200


def test_a_token_is_revoked_by_its_owner():
    user = make_user("alice")
    key = token_login(APIClient(), user.username, PASSWORD).json()["token"]
    client = authenticated(key)
    assert client.delete("/api/v1/auth/token/").status_code == 204
    assert client.get("/api/v1/submissions/").status_code == 401
    assert not Token.objects.filter(user=user).exists()
    assert APIClient().delete("/api/v1/auth/token/").status_code == 401


@pytest.mark.parametrize("header", ["Token not-a-real-token", "Token", "Token a b"])
def test_an_invalid_token_is_answered_401_with_a_challenge(header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    for url in ["/api/v1/submissions/", "/api/v1/challenges/"]:  # even on a public endpoint
        response = client.get(url)
        assert response.status_code == 401, url
        assert response["WWW-Authenticate"] == "Token"


def test_no_credentials_on_a_private_endpoint_is_401():
    response = APIClient().get("/api/v1/submissions/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


# Where the counters live


def test_without_redis_the_counters_live_in_a_database_table_migrate_creates(tmp_path):
    from .test_settings import run_django

    env = {"DEBUG": "1", "MICA_VAR_DIR": str(tmp_path), "ALLOWED_HOSTS": "testserver"}
    assert run_django(["migrate", "--noinput"], **env).returncode == 0
    script = (
        "from django.conf import settings; from django.test import Client;"
        "from django.contrib.auth.models import User; User.objects.create_user('demo', password='pw-123-long');"
        "print(settings.CACHES['default']['BACKEND']);"
        "print([Client().post('/api/v1/auth/token/', {'username': 'demo', 'password': 'x'}).status_code"
        " for _ in range(12)])"
    )
    result = run_django(["shell", "-c", script], **env)
    assert result.returncode == 0, result.stderr
    backend, statuses = result.stdout.strip().splitlines()[-2:]
    assert backend == "django.core.cache.backends.db.DatabaseCache"
    assert statuses.endswith("429, 429]"), statuses


def test_a_cache_url_that_is_not_redis_stops_the_start_up(tmp_path):
    from .test_settings import run_django

    result = run_django(["check"], DEBUG="1", MICA_VAR_DIR=str(tmp_path), CACHE_URL="memcached://cache:11211")
    assert result.returncode != 0
    assert "CACHE_URL='memcached://cache:11211' is not a Redis URL" in result.stderr
