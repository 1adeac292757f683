"""Data releases: archives streamed with Range, for participants who accepted the terms, logged.

Bad inputs tried: a training labels CSV without a case_id column, one naming a case twice, one
naming a hidden test case, one naming a case the dataset lacks; a test release with labels; a
Range past the end, a suffix range of 0, a malformed and a multi-part Range, a stale If-Range.
"""

import io
import zipfile

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from mica.challenges.models import TestSet
from mica.downloads.models import DataRelease, DownloadRecord
from mica.downloads.streaming import UNSATISFIABLE, requested_range
from mica.downloads.tasks import prepare_release

from .conftest import PASSWORD, csv_bytes, make_user
from .imaging import ingested_dataset

pytestmark = pytest.mark.django_db


@pytest.fixture
def dataset(challenge, organizer, tmp_path):
    return ingested_dataset(challenge, organizer, tmp_path)


@pytest.fixture
def imaging_test_set(challenge, organizer, dataset):
    """A test set of three of the dataset's cases; the other three are the training cases."""
    case_ids = sorted(dataset.cases.values_list("case_id", flat=True))[:3]
    truth = SimpleUploadedFile("truth.csv", csv_bytes(["case_id", "pneumonia"], zip(case_ids, [0, 1, 1])))
    return TestSet.create_from_upload(challenge, "Imaging test set", truth, user=organizer, seed=1,
                                      private_fraction=0)


def training_labels(dataset, test_set):
    hidden = set(test_set.case_ids())
    case_ids = [c for c in sorted(dataset.cases.values_list("case_id", flat=True)) if c not in hidden]
    return case_ids, csv_bytes(["case_id", "pneumonia"], [(c, i % 2) for i, c in enumerate(case_ids)])


def prepared(release):
    prepare_release(release.pk)
    release.refresh_from_db()
    return release


@pytest.fixture
def training(challenge, organizer, dataset, imaging_test_set):
    _, labels = training_labels(dataset, imaging_test_set)
    return prepared(DataRelease.create(challenge=challenge, dataset=dataset, name="Training", kind="training",
                                       user=organizer, labels=SimpleUploadedFile("labels.csv", labels)))


@pytest.fixture
def test_images(challenge, organizer, dataset, imaging_test_set):
    return prepared(DataRelease.create(challenge=challenge, dataset=dataset, name="Test images", kind="test",
                                       user=organizer, test_set=imaging_test_set))


def archive_url(release):
    return f"/api/v1/releases/{release.pk}/archive/"


def full_download(client, release):
    response = client.get(archive_url(release))
    assert response.status_code == 200
    return b"".join(response.streaming_content)


def test_the_training_archive_holds_every_image_and_the_labels(client, team, participant, training, dataset,
                                                                imaging_test_set):
    assert training.status == "ready", training.status_reason
    client.force_login(participant)
    content = full_download(client, training)
    assert len(content) == training.size
    archive = zipfile.ZipFile(io.BytesIO(content))
    assert archive.testzip() is None
    case_ids, labels = training_labels(dataset, imaging_test_set)
    assert archive.read("labels.csv") == labels
    expected = {f"images/{case.case_id}/{instance.uid}.dcm" for case in dataset.cases.filter(case_id__in=case_ids)
                for instance in case.instances}
    assert set(archive.namelist()) == {"labels.csv", *expected}
    one = dataset.cases.get(case_id=case_ids[0]).instances.first()
    assert archive.read(f"images/{case_ids[0]}/{one.uid}.dcm") == one.file.open("rb").read()


def test_a_png_release_holds_each_dicom_frame_as_a_png(client, team, participant, organizer, challenge, dataset,
                                                      imaging_test_set):
    import numpy as np
    from PIL import Image

    from curation.images import dicom_to_png

    api = APIClient()
    api.force_authenticate(organizer)
    response = api.post("/api/v1/releases/", {"challenge": challenge.slug, "name": "Test PNG", "kind": "test",
                                               "dataset": dataset.pk, "test_set": imaging_test_set.pk,
                                               "image_format": "png"}, format="multipart")
    assert response.status_code == 201, response.content
    release = prepared(DataRelease.objects.get(pk=response.json()["id"]))
    assert release.status == "ready", release.status_reason
    client.force_login(participant)
    archive = zipfile.ZipFile(io.BytesIO(full_download(client, release)))
    images = [name for name in archive.namelist() if name.startswith("images/")]
    assert images and all(name.endswith(".png") for name in images)
    case = dataset.cases.get(case_id=sorted(imaging_test_set.case_ids())[0])
    instance = case.instances.first()
    name = next(n for n in images if n.startswith(f"images/{case.case_id}/{instance.uid}"))
    with instance.file.open("rb") as handle:
        expected = Image.open(io.BytesIO(dicom_to_png(handle)))
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(archive.read(name)))), np.asarray(expected))
    assert api.post("/api/v1/releases/", {"challenge": challenge.slug, "name": "Bad", "kind": "test",
                                          "dataset": dataset.pk, "test_set": imaging_test_set.pk,
                                          "image_format": "jpeg2000"}, format="multipart").status_code == 400


def test_test_images_carry_no_labels(client, team, participant, test_images, imaging_test_set):
    client.force_login(participant)
    archive = zipfile.ZipFile(io.BytesIO(full_download(client, test_images)))
    names = archive.namelist()
    assert archive.read("cases.csv").decode().split() == ["case_id", *sorted(imaging_test_set.case_ids())]
    assert all(name == "cases.csv" or name.startswith("images/") for name in names)
    assert {name.split("/")[1] for name in names if name.startswith("images/")} == set(imaging_test_set.case_ids())
    truth = imaging_test_set.latest_version.file.open("rb").read()
    assert all(truth not in archive.read(name) for name in names)
    assert b"pneumonia" not in b"".join(archive.read(name) for name in names)


def test_a_download_interrupted_and_resumed_with_range_gives_the_same_bytes(client, team, participant, training):
    client.force_login(participant)
    whole = full_download(client, training)
    # The client hangs up after a third of the archive (the generator is closed unfinished).
    response = client.get(archive_url(training))
    cut = training.size // 3
    received, chunks = b"", iter(response.streaming_content)
    while len(received) < cut:
        received += next(chunks)
    # The client hangs up: the test client's wrapper closes the response the way a server does
    # (and keeps the test's database connection open while it does).
    response._iterator.close()
    received = received[:cut]
    resumed = client.get(archive_url(training), HTTP_RANGE=f"bytes={cut}-", HTTP_IF_RANGE=response["ETag"])
    assert resumed.status_code == 206
    assert resumed["Content-Range"] == f"bytes {cut}-{training.size - 1}/{training.size}"
    assert int(resumed["Content-Length"]) == training.size - cut
    assert received + b"".join(resumed.streaming_content) == whole
    records = list(DownloadRecord.objects.filter(user=participant).order_by("started_at"))
    assert [(r.range_start, r.completed) for r in records] == [(0, True), (0, False), (cut, True)]
    assert records[2].bytes_sent == training.size - cut


def test_every_range_form_gives_the_right_bytes_or_a_416(client, team, participant, training):
    client.force_login(participant)
    whole, size = full_download(client, training), training.size
    for header, expected in [(f"bytes=10-19", whole[10:20]), ("bytes=-100", whole[-100:]),
                             (f"bytes={size - 5}-{size + 100}", whole[-5:])]:
        response = client.get(archive_url(training), HTTP_RANGE=header)
        assert response.status_code == 206, header
        assert b"".join(response.streaming_content) == expected, header
    for header in [f"bytes={size}-", "bytes=-0"]:
        response = client.get(archive_url(training), HTTP_RANGE=header)
        assert response.status_code == 416, header
        assert response["Content-Range"] == f"bytes */{size}"
    for header in ["bytes=0-1,5-9", "bytes=9-3", "pages=1-2"]:  # ignored, as the RFC allows: all of it
        response = client.get(archive_url(training), HTTP_RANGE=header)
        assert response.status_code == 200, header
    stale = client.get(archive_url(training), HTTP_RANGE="bytes=10-", HTTP_IF_RANGE='"another-archive"')
    assert stale.status_code == 200 and b"".join(stale.streaming_content) == whole


def test_range_parsing():
    assert requested_range(None, 100) is None
    assert requested_range("bytes=0-", 100) == (0, 99)
    assert requested_range("bytes=-200", 100) == (0, 99)
    assert requested_range("bytes=100-", 100) == UNSATISFIABLE
    assert requested_range("bytes=-", 100) is None


def test_the_archive_is_the_same_bytes_on_every_request_and_for_every_user(client, team, participant, organizer,
                                                                            training):
    client.force_login(participant)
    first = full_download(client, training)
    client.force_login(organizer)
    assert full_download(client, training) == first


def test_bad_training_labels_are_refused_with_the_row(challenge, organizer, dataset, imaging_test_set):
    training_ids, _ = training_labels(dataset, imaging_test_set)
    hidden = imaging_test_set.case_ids()[0]
    for content, problem in [
        (b"id,pneumonia\nx,1\n", "labels.csv, row 1: the first column must be case_id"),
        (csv_bytes(["case_id", "y"], [(training_ids[0], 1), (training_ids[0], 0)]), "labels.csv, row 3: a case named twice"),
        (csv_bytes(["case_id", "y"], [(hidden, 1)]), "labels.csv names 1 case(s) of a hidden test set"),
        (csv_bytes(["case_id", "y"], [("not-a-case", 1)]), "1 case(s) are not in the dataset"),
    ]:
        release = prepared(DataRelease.create(challenge=challenge, dataset=dataset, name=problem[:50], kind="training",
                                              user=organizer, labels=SimpleUploadedFile("labels.csv", content)))
        assert release.status == "failed"
        assert problem in release.status_reason
        assert hidden not in release.status_reason


def test_a_test_release_takes_no_labels(challenge, organizer, dataset, imaging_test_set):
    with pytest.raises(ValidationError, match="carries no labels"):
        DataRelease.create(challenge=challenge, dataset=dataset, name="Test", kind="test", user=organizer,
                           test_set=imaging_test_set, labels=SimpleUploadedFile("labels.csv", b"case_id\n"))


def test_organizers_see_who_downloaded_what(client, team, participant, organizer, training):
    client.force_login(participant)
    full_download(client, training)
    client.force_login(organizer)
    page = client.get(f"/downloads/challenges/{training.challenge.slug}/log/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "paul" in text and "Training" in text and str(training.size) in text
    api = client.get(f"/api/v1/releases/{training.pk}/downloads/").json()
    assert api[0]["user"] == "paul" and api[0]["bytes_sent"] == training.size


def test_registering_accepts_the_terms_and_opens_the_data(client, challenge, training):
    user = make_user("newcomer")
    client.force_login(user)
    assert client.get(archive_url(training)).status_code == 403
    assert client.post(f"/api/v1/challenges/{challenge.slug}/register/", {"accept_terms": True},
                       content_type="application/json").status_code in (200, 201)
    assert client.get(archive_url(training)).status_code == 200


def test_a_token_downloads_like_a_session(client, team, participant, training):
    token = client.post("/api/v1/auth/token/", {"username": "paul", "password": PASSWORD}).json()["token"]
    response = client.get(archive_url(training), HTTP_AUTHORIZATION=f"Token {token}", HTTP_RANGE="bytes=0-9")
    assert response.status_code == 206 and len(b"".join(response.streaming_content)) == 10


@pytest.mark.parametrize("who, data_page, archive, log", [
    ("anonymous", 302, 401, 302),
    ("outsider", 403, 403, 403),
    ("rival", 200, 200, 403),
    ("participant", 200, 200, 403),
    ("annotator", 403, 403, 403),
    ("organizer", 200, 200, 200),
    ("co_organizer", 200, 200, 200),
    ("staff", 200, 200, 200),
])
def test_it_checks_access(request, client, team, training, who, data_page, archive, log):
    if who != "anonymous":
        client.force_login(request.getfixturevalue(who))
    slug = training.challenge.slug
    assert client.get(f"/downloads/challenges/{slug}/").status_code == data_page
    assert client.get(archive_url(training)).status_code == archive
    assert client.get(f"/downloads/challenges/{slug}/log/").status_code == log
    listing = client.get(f"/api/v1/releases/?challenge={slug}")
    assert listing.status_code == (archive if archive != 200 else 200)


def test_participants_see_only_ready_releases_and_cannot_create_one(client, team, participant, challenge, dataset,
                                                                     imaging_test_set, organizer):
    DataRelease.create(challenge=challenge, dataset=dataset, name="Queued", kind="test", user=organizer,
                       test_set=imaging_test_set)
    client.force_login(participant)
    assert client.get(f"/api/v1/releases/?challenge={challenge.slug}").json() == []
    response = client.post("/api/v1/releases/", {"challenge": challenge.slug, "name": "Mine", "kind": "test",
                                                 "dataset": dataset.pk, "test_set": imaging_test_set.pk})
    assert response.status_code == 403
    client.force_login(organizer)
    response = client.post("/api/v1/releases/", {"challenge": challenge.slug, "name": "Theirs", "kind": "test",
                                                 "dataset": dataset.pk, "test_set": imaging_test_set.pk})
    assert response.status_code == 201, response.content
    assert [r["status"] for r in client.get(f"/api/v1/releases/?challenge={challenge.slug}").json()] == ["queued"] * 2


def test_the_challenge_page_links_to_the_data_for_participants_and_organizers(client, team, participant, organizer,
                                                                              outsider, challenge):
    link = f"/downloads/challenges/{challenge.slug}/"
    for user, shown in [(participant, True), (organizer, True), (outsider, False)]:
        client.force_login(user)
        assert (link in client.get(challenge.get_absolute_url()).content.decode()) == shown, user


@pytest.mark.parametrize("who, status", [("anonymous", 401), ("outsider", 403), ("rival", 403), ("participant", 403),
                                          ("annotator", 403), ("organizer", 204), ("co_organizer", 204),
                                          ("staff", 204)])
def test_only_organizers_delete_a_release_and_its_files_go_with_it(request, client, team, rival, training, who,
                                                                   status):
    if who != "anonymous":
        client.force_login(request.getfixturevalue(who))
    assert client.delete(f"/api/v1/releases/{training.pk}/").status_code == status
    assert DataRelease.objects.filter(pk=training.pk).exists() == (status != 204)


def test_deleting_a_release_on_the_page_removes_the_files_made_for_it(client, organizer, test_images,
                                                                      django_capture_on_commit_callbacks):
    from mica.core.storage import private_storage

    made = [row[1] for row in test_images.manifest if row[0] == "cases.csv"]
    assert made and private_storage().exists(made[0])
    client.force_login(organizer)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/downloads/challenges/{test_images.challenge.slug}/{test_images.pk}/delete/")
    assert response.status_code == 302
    assert not DataRelease.objects.filter(pk=test_images.pk).exists()
    assert not private_storage().exists(made[0])
