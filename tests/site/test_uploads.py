"""The tus 1.0 server of mica.uploads: creation, resuming with HEAD, chunks at an offset,
checksums, termination, quotas and size caps, expiry, authentication and ownership.

Bad inputs tried: no Tus-Resumable, a missing or non-numeric Upload-Length and Upload-Offset,
metadata that is not base64 or repeats a key, an unknown purpose, an empty file, a file over
the purpose's and the site's limits, a user's quota passed, a chunk at the wrong offset, the
wrong Content-Type, a chunk longer than what is left, a bad checksum and an unknown algorithm,
another user's upload, a finished upload patched again, a purpose that refuses the file."""

import base64
import hashlib
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from mica.accounts.tokens import issue_token
from mica.core.storage import private_storage
from mica.uploads import purposes
from mica.uploads.models import ResumableUpload

from .conftest import make_user

pytestmark = pytest.mark.django_db

TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}
RECEIVED = {}


def admit(user, target):
    if target.get("refuse_now"):
        raise ValidationError("This target takes nothing now.")
    return int(target.get("max", 1000))


def receive(upload):
    with upload.joined() as path, open(path, "rb") as file:
        content = file.read()
    if content.startswith(b"bad"):
        raise ValidationError(f"{upload.filename}: the file starts with 'bad'.")
    RECEIVED[upload.uuid] = content
    return f"/received/{upload.uuid}/"


@pytest.fixture(autouse=True)
def echo_purpose(settings, tmp_path):
    settings.STORAGES = {**settings.STORAGES, "private": {**settings.STORAGES["private"],
                                                           "OPTIONS": {"location": str(tmp_path), "base_url": None}}}
    purposes.register("echo", admit=admit, receive=receive)
    yield
    purposes.PURPOSES.pop("echo")
    RECEIVED.clear()


def metadata(**pairs):
    return ",".join(f"{key} {base64.b64encode(str(value).encode()).decode()}" for key, value in pairs.items())


def create(client, length, **pairs):
    pairs.setdefault("purpose", "echo")
    return client.post("/uploads/", HTTP_UPLOAD_LENGTH=str(length), HTTP_UPLOAD_METADATA=metadata(**pairs), **TUS)


def patch(client, url, offset, data, **headers):
    return client.generic("PATCH", url, data, content_type="application/offset+octet-stream",
                          HTTP_UPLOAD_OFFSET=str(offset), **TUS, **headers)


@pytest.fixture
def alice(db):
    return make_user("alice")


@pytest.fixture
def client(alice):
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {issue_token(alice).key}")
    return client


def test_it_takes_a_file_in_chunks_and_hands_it_to_its_purpose(client):
    options = client.options("/uploads/")
    assert options.status_code == 204 and options["Tus-Version"] == "1.0.0"
    assert "creation" in options["Tus-Extension"] and "termination" in options["Tus-Extension"]

    created = create(client, 10, filename="model.tar", max=50)
    assert created.status_code == 201 and created["Upload-Offset"] == "0"
    url = created["Location"]
    assert patch(client, url, 0, b"hello")["Upload-Offset"] == "5"
    head = client.head(url, **TUS)
    assert head.status_code == 200 and head["Upload-Offset"] == "5" and head["Upload-Length"] == "10"
    assert head["Cache-Control"] == "no-store"
    done = patch(client, url, 5, b"world")
    assert done.status_code == 204 and done["Upload-Offset"] == "10"
    upload = ResumableUpload.objects.get()
    assert done["Mica-Result-Url"] == f"/received/{upload.uuid}/"
    assert RECEIVED[upload.uuid] == b"helloworld"
    assert upload.state == "received" and upload.filename == "model.tar" and upload.target == {"max": "50"}
    assert client.head(url, **TUS)["Mica-Result-Url"] == upload.result_url
    assert patch(client, url, 10, b"x").status_code == 409  # it has ended


def test_a_chunk_at_the_wrong_offset_is_answered_with_the_right_one(client):
    url = create(client, 6)["Location"]
    patch(client, url, 0, b"abc")
    wrong = patch(client, url, 1, b"bcdef")
    assert wrong.status_code == 409 and wrong["Upload-Offset"] == "3"
    assert patch(client, url, 3, b"defXYZ")["Upload-Offset"] == "6"  # bytes past the length are not taken
    assert list(RECEIVED.values()) == [b"abcdef"]


def test_a_checksum_is_checked_and_a_bad_chunk_is_not_kept(client):
    url = create(client, 4)["Location"]
    good = base64.b64encode(hashlib.sha1(b"ab").digest()).decode()
    bad = base64.b64encode(hashlib.sha1(b"zz").digest()).decode()
    assert patch(client, url, 0, b"ab", HTTP_UPLOAD_CHECKSUM=f"sha1 {good}")["Upload-Offset"] == "2"
    refused = patch(client, url, 2, b"cd", HTTP_UPLOAD_CHECKSUM=f"sha1 {bad}")
    assert refused.status_code == 460
    assert client.head(url, **TUS)["Upload-Offset"] == "2"
    assert patch(client, url, 2, b"cd", HTTP_UPLOAD_CHECKSUM="crc32 AAAA").status_code == 400
    assert patch(client, url, 2, b"cd")["Upload-Offset"] == "4"


@pytest.mark.parametrize("headers, expected, words", [
    ({"HTTP_UPLOAD_LENGTH": "ten"}, 400, "Upload-Length must be a whole number"),
    ({"HTTP_UPLOAD_LENGTH": "10", "HTTP_UPLOAD_METADATA": "purpose ###"}, 400, "not base64"),
    ({"HTTP_UPLOAD_LENGTH": "10", "HTTP_UPLOAD_METADATA": metadata(purpose="echo") + "," + metadata(purpose="x")},
     400, "repeated key"),
    ({"HTTP_UPLOAD_LENGTH": "10", "HTTP_UPLOAD_METADATA": metadata(purpose="nothing")}, 400, "'purpose' must be"),
    ({"HTTP_UPLOAD_LENGTH": "0", "HTTP_UPLOAD_METADATA": metadata(purpose="echo", filename="a.tar")}, 400,
     "a.tar: the file is empty"),
    ({"HTTP_UPLOAD_LENGTH": "2000", "HTTP_UPLOAD_METADATA": metadata(purpose="echo", filename="a.tar")}, 413,
     "a.tar: 2000 bytes is over the limit of 1000 bytes"),
    ({"HTTP_UPLOAD_LENGTH": "10", "HTTP_UPLOAD_METADATA": metadata(purpose="echo", refuse_now=1)}, 400,
     "takes nothing now"),
])
def test_a_bad_creation_is_refused_with_its_reason(client, headers, expected, words):
    response = client.post("/uploads/", **headers, **TUS)
    assert response.status_code == expected
    assert words in response.json()["detail"]
    assert not ResumableUpload.objects.exists()


def test_the_protocol_version_and_the_chunk_type_are_required(client):
    assert client.post("/uploads/", HTTP_UPLOAD_LENGTH="3", HTTP_UPLOAD_METADATA=metadata(purpose="echo")).status_code == 412
    url = create(client, 3)["Location"]
    wrong_type = client.generic("PATCH", url, b"abc", content_type="application/octet-stream",
                                HTTP_UPLOAD_OFFSET="0", **TUS)
    assert wrong_type.status_code == 415
    assert client.generic("PATCH", url, b"abc", content_type="application/offset+octet-stream",
                          **TUS).status_code == 400  # no Upload-Offset


@override_settings(MICA_UPLOAD_MAX_BYTES=100, MICA_UPLOAD_QUOTA_BYTES=150)
def test_the_site_cap_and_the_users_quota_hold(client):
    assert create(client, 101, max=10_000).status_code == 413  # over the site's cap, whatever the purpose says
    assert create(client, 100, max=10_000).status_code == 201
    over = create(client, 60, max=10_000)
    assert over.status_code == 413 and "quota of 150 bytes" in over.json()["detail"]
    assert create(client, 50, max=10_000).status_code == 201


def test_termination_removes_the_bytes(client):
    url = create(client, 8)["Location"]
    patch(client, url, 0, b"abcd")
    upload = ResumableUpload.objects.get()
    assert upload.parts() == [f"{0:020d}"]
    assert client.delete(url, **TUS).status_code == 204
    assert not ResumableUpload.objects.exists() and not private_storage().exists(upload.folder)
    assert client.head(url, **TUS).status_code == 404


def test_a_refused_file_says_why_and_is_not_kept(client):
    url = create(client, 5, filename="x.tar")["Location"]
    refused = patch(client, url, 0, b"bad!!")
    assert refused.status_code == 422
    assert refused.json()["problems"] == ["x.tar: the file starts with 'bad'."]
    upload = ResumableUpload.objects.get()
    assert upload.state == "refused" and upload.parts() == []


def test_the_sweep_removes_expired_uploads_only(client):
    from mica.core.tasks import sweep

    stale_url = create(client, 8)["Location"]
    patch(client, stale_url, 0, b"abc")
    fresh_url = create(client, 8)["Location"]
    stale = ResumableUpload.objects.get(uuid=stale_url.rstrip("/").rsplit("/", 1)[1])
    ResumableUpload.objects.filter(pk=stale.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    sweep()
    assert list(ResumableUpload.objects.values_list("uuid", flat=True)) == [
        ResumableUpload.objects.get(uuid=fresh_url.rstrip("/").rsplit("/", 1)[1]).uuid]
    assert stale.parts() == []


def test_a_patch_extends_the_expiry(client):
    url = create(client, 8)["Location"]
    ResumableUpload.objects.update(expires_at=timezone.now() + timedelta(seconds=5))
    response = patch(client, url, 0, b"ab")
    assert ResumableUpload.objects.get().expires_at > timezone.now() + timedelta(hours=1)
    assert response["Upload-Expires"]


def test_only_the_owner_sees_or_touches_an_upload(client, alice):
    url = create(client, 4)["Location"]
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Token {issue_token(make_user('bob')).key}")
    assert other.head(url, **TUS).status_code == 404
    assert patch(other, url, 0, b"abcd").status_code == 404
    assert other.delete(url, **TUS).status_code == 404
    anonymous = APIClient()
    assert anonymous.post("/uploads/", HTTP_UPLOAD_LENGTH="4", HTTP_UPLOAD_METADATA=metadata(purpose="echo"),
                          **TUS).status_code == 401
    assert anonymous.head(url, **TUS).status_code == 401
    assert ResumableUpload.objects.get().offset == 0


def test_a_session_needs_its_csrf_token(alice):
    from .conftest import PASSWORD

    browser = APIClient(enforce_csrf_checks=True)
    browser.login(username="alice", password=PASSWORD)
    without = browser.post("/uploads/", HTTP_UPLOAD_LENGTH="4", HTTP_UPLOAD_METADATA=metadata(purpose="echo"), **TUS)
    assert without.status_code == 403
    browser.get("/accounts/login/")  # sets the CSRF cookie, as any page with a form does
    token = browser.cookies["csrftoken"].value
    created = browser.post("/uploads/", HTTP_UPLOAD_LENGTH="4", HTTP_UPLOAD_METADATA=metadata(purpose="echo"),
                           HTTP_X_CSRFTOKEN=token, **TUS)
    assert created.status_code == 201
