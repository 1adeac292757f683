"""An upload's quarantine list is paginated, never serialised inline.

Bad input tried: an upload with 100,000 quarantined files (as a 9.7 MB zip of tiny files gave the
probe), listed through /api/v1/uploads/ and its detail; page numbers past the end and not numbers.
"""

import time

import pytest
from rest_framework.test import APIClient

from mica.challenges.models import ChallengeRole, Role
from mica.datasets.models import Dataset, QuarantinedFile, Upload

from .conftest import make_user

pytestmark = pytest.mark.django_db

N_QUARANTINED = 100_000


@pytest.fixture
def big_quarantine(challenge, organizer):
    dataset = Dataset.objects.create(challenge=challenge, name="Radiographs", created_by=organizer)
    upload = Upload.objects.create(dataset=dataset, uploaded_by=organizer, original_filename="tiny-files.zip",
                                   status=Upload.Status.PROCESSED)
    QuarantinedFile.objects.bulk_create(
        (QuarantinedFile(upload=upload, source=f"junk/{i:06d}.txt", reason="not DICOM, PNG or JPEG")
         for i in range(N_QUARANTINED)), batch_size=10_000)
    return upload


def client_for(user):
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def test_the_upload_list_carries_a_count_not_the_files(big_quarantine, organizer):
    started = time.monotonic()
    response = client_for(organizer).get("/api/v1/uploads/")
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 1
    assert body["results"][0]["n_quarantined"] == N_QUARANTINED
    assert "quarantined" not in body["results"][0]
    assert len(response.content) < 2_000, len(response.content)
    assert elapsed < 5, elapsed  # a safety net against serialising 100,000 rows, not a speed target
    detail = client_for(organizer).get(f"/api/v1/uploads/{big_quarantine.uuid}/").json()
    assert detail["n_quarantined"] == N_QUARANTINED


def test_the_quarantined_files_come_a_page_at_a_time(big_quarantine, organizer):
    url = f"/api/v1/uploads/{big_quarantine.uuid}/quarantined/"
    first = client_for(organizer).get(url).json()
    assert first["count"] == N_QUARANTINED
    assert [row["source"] for row in first["results"]][:2] == ["junk/000000.txt", "junk/000001.txt"]
    assert len(first["results"]) == 50
    last = client_for(organizer).get(first["next"].replace("page=2", f"page={N_QUARANTINED // 50}")).json()
    assert last["results"][-1] == {"source": f"junk/{N_QUARANTINED - 1:06d}.txt", "reason": "not DICOM, PNG or JPEG"}
    assert last["next"] is None
    for bad_page in [str(N_QUARANTINED), "0", "x"]:
        assert client_for(organizer).get(url, {"page": bad_page}).status_code == 404


def test_only_the_organizers_see_an_upload_and_its_quarantine(big_quarantine, organizer, annotator, team,
                                                              participant, outsider):
    co_organizer = make_user("cora")
    ChallengeRole.objects.create(challenge=big_quarantine.dataset.challenge, user=co_organizer, role=Role.ORGANIZER)
    staff = make_user("stan", is_staff=True)
    other_team = make_user("otto")
    big_quarantine.dataset.challenge.register(other_team)
    detail = f"/api/v1/uploads/{big_quarantine.uuid}/"
    expected = {None: 401, outsider: 404, other_team: 404, participant: 404, annotator: 404, staff: 404,
                organizer: 200, co_organizer: 200}
    for user, status in expected.items():
        for url in [detail, f"{detail}quarantined/"]:
            assert client_for(user).get(url).status_code == status, (user, url)
        listed = client_for(user).get("/api/v1/uploads/")
        assert listed.status_code == (401 if user is None else 200)
        if user is not None:
            assert listed.json()["count"] == (1 if status == 200 else 0), user
