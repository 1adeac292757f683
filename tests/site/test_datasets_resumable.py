"""A dataset archive sent as a resumable (tus) upload: in chunks, resumed after a dropped
connection, then anonymized as any upload is.

Bad inputs tried: a dataset id that is not one, another challenge's dataset, a participant and
an outsider sending to a dataset, a file that is not a .zip."""

import base64

import pytest
from rest_framework.test import APIClient

from mica.accounts.tokens import issue_token
from mica.datasets.models import Dataset, Upload
from mica.datasets.tasks import ingest_upload

from .imaging import studies_zip

pytestmark = pytest.mark.django_db

TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}


def api_for(user):
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {issue_token(user).key}")
    return client


def create(client, length, **pairs):
    metadata = ",".join(f"{key} {base64.b64encode(str(value).encode()).decode()}"
                        for key, value in {"purpose": "dataset-archive", **pairs}.items())
    return client.post("/uploads/", HTTP_UPLOAD_LENGTH=str(length), HTTP_UPLOAD_METADATA=metadata, **TUS)


def patch(client, url, offset, data):
    return client.generic("PATCH", url, data, content_type="application/offset+octet-stream",
                          HTTP_UPLOAD_OFFSET=str(offset), **TUS)


@pytest.fixture
def dataset(challenge, organizer):
    return Dataset.objects.create(challenge=challenge, name="Radiographs", created_by=organizer)


def test_an_archive_sent_in_chunks_and_resumed_is_anonymized(dataset, organizer, tmp_path):
    content = studies_zip(tmp_path).read()
    client = api_for(organizer)
    created = create(client, len(content), dataset=dataset.pk, filename="studies.zip")
    assert created.status_code == 201, created.content
    url, third = created["Location"], len(content) // 3
    assert patch(client, url, 0, content[:third]).status_code == 204
    # The connection drops mid-chunk: the client asks where the server got to, and goes on from there.
    offset = int(client.head(url, **TUS)["Upload-Offset"])
    assert offset == third
    assert patch(client, url, offset, content[offset:2 * third]).status_code == 204
    done = patch(client, url, 2 * third, content[2 * third:])
    assert done.status_code == 204, done.content
    upload = Upload.objects.get(dataset=dataset)
    assert done["Mica-Result-Url"] == upload.get_absolute_url()
    assert upload.original_filename == "studies.zip" and upload.file.read() == content
    ingest_upload(upload.pk)
    upload.refresh_from_db()
    assert upload.status == Upload.Status.PROCESSED, upload.status_reason
    assert dataset.instances.exists()


@pytest.mark.parametrize("who, status", [("organizer", 201), ("co_organizer", 201), ("participant", 403),
                                         ("outsider", 403), ("annotator", 403), ("rival", 403), ("staff", 201)])
def test_only_the_datasets_organizers_may_send_an_archive(request, dataset, who, status):
    user = request.getfixturevalue(who)
    assert create(api_for(user), 100, dataset=dataset.pk, filename="s.zip").status_code == status


def test_a_bad_target_or_file_is_refused_with_its_reason(dataset, organizer):
    client = api_for(organizer)
    refused = create(client, 100, dataset="seven", filename="s.zip")
    assert refused.status_code == 400 and "'dataset' must be the id" in refused.content.decode()
    assert create(client, 100, dataset=10**9, filename="s.zip").status_code == 403
    created = create(client, 5, dataset=dataset.pk, filename="notes.txt")
    done = patch(client, created["Location"], 0, b"hello")
    assert done.status_code in (400, 422), done.status_code
    assert "upload a .zip" in done.content.decode()
    assert not Upload.objects.filter(dataset=dataset).exists()
