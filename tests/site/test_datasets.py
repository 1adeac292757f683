"""Dataset uploads: anonymized on the ingest queue, indexed, previewed; quarantine shown to organizers."""

import io
import zipfile

import pytest
from django.core.files.storage import storages
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

import anonymizer.synthetic
from mica.datasets.models import Dataset, Instance, Study, Upload
from mica.datasets.tasks import ingest_upload

from .conftest import PASSWORD

pytestmark = pytest.mark.django_db

PATIENT_NAME = "Doe^Johnathan"
PATIENT_ID = "MRN-99812"


def studies_zip(tmp_path, n_patients=2, extra=None):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(n_patients):
            path = tmp_path / f"{index}.dcm"
            anonymizer.synthetic.write_radiograph(
                path, patient_name=f"{PATIENT_NAME}{index}", patient_id=f"{PATIENT_ID}{index}", seed=index
            )
            archive.write(path, f"{PATIENT_NAME}{index}/image.dcm")
        for name, content in (extra or {}).items():
            archive.writestr(name, content)
    return SimpleUploadedFile("studies.zip", buffer.getvalue(), content_type="application/zip")


@pytest.fixture
def dataset(challenge, organizer):
    return Dataset.objects.create(challenge=challenge, name="Radiographs", created_by=organizer)


def upload_through_page(client, organizer, dataset, archive):
    client.login(username=organizer.username, password=PASSWORD)
    response = client.post(f"/datasets/{dataset.pk}/upload/", {"archive": archive})
    assert response.status_code == 302, response.content
    return Upload.objects.get()


def test_an_upload_is_anonymized_indexed_and_its_original_deleted(client, organizer, dataset, tmp_path):
    upload = upload_through_page(client, organizer, dataset, studies_zip(tmp_path, extra={"notes.txt": b"hello"}))
    original = upload.file.name
    assert storages["private"].exists(original)
    ingest_upload(upload.pk)
    upload.refresh_from_db()
    assert upload.status == Upload.Status.PROCESSED, upload.status_reason
    assert not storages["private"].exists(original)
    assert upload.files_done == upload.files_total == 3
    assert Study.objects.filter(dataset=dataset).count() == 2
    instances = list(Instance.objects.filter(dataset=dataset))
    assert len(instances) == 2
    for instance in instances:
        content = instance.file.open("rb").read()
        assert PATIENT_NAME.encode() not in content and PATIENT_ID.encode() not in content
        assert instance.uid.startswith("2.25.")
        assert instance.preview
    quarantined = list(upload.quarantined.all())
    # Paths can hold names: the site shows a keyed hash of each path, never the path.
    safe_name = anonymizer.keys.source_name(bytes(dataset.anonymization_key), "notes.txt")
    assert [item.source for item in quarantined] == [safe_name]
    page = client.get(upload.get_absolute_url()).content.decode()
    assert safe_name in page and "notes.txt" not in page and quarantined[0].reason in page


def test_the_same_patient_keeps_one_pseudonym_across_uploads(client, organizer, dataset, tmp_path):
    for _ in range(2):
        upload = Upload.receive(dataset=dataset, user=organizer, uploaded_file=studies_zip(tmp_path, n_patients=1))
        ingest_upload(upload.pk)
    pseudonyms = set(Study.objects.filter(dataset=dataset).values_list("patient_pseudonym", flat=True))
    assert len(pseudonyms) == 1
    assert Instance.objects.filter(dataset=dataset).count() == 1  # the same instance, not a copy


def test_a_broken_archive_fails_with_a_reason_and_is_deleted(client, organizer, dataset):
    archive = SimpleUploadedFile("broken.zip", b"PK\x03\x04 this is not a zip archive", content_type="application/zip")
    upload = upload_through_page(client, organizer, dataset, archive)
    ingest_upload(upload.pk)
    upload.refresh_from_db()
    assert upload.status == Upload.Status.FAILED
    assert "could not be processed" in upload.status_reason
    assert not upload.file
    assert not Instance.objects.exists()


def test_only_a_zip_is_accepted(client, organizer, dataset):
    client.login(username=organizer.username, password=PASSWORD)
    response = client.post(f"/datasets/{dataset.pk}/upload/", {"archive": SimpleUploadedFile("a.dcm", b"x")})
    assert ".zip" in str(response.context["form"].errors["archive"])
    assert not Upload.objects.exists()


def test_it_checks_access(client, organizer, participant, outsider, dataset, tmp_path):
    upload = Upload.receive(dataset=dataset, user=organizer, uploaded_file=studies_zip(tmp_path, n_patients=1))
    ingest_upload(upload.pk)
    instance = Instance.objects.get()
    dataset.challenge.register(participant)
    urls = [f"/datasets/{dataset.pk}/", f"/datasets/{dataset.pk}/instances/{instance.uid}/preview.png",
            f"/datasets/{dataset.pk}/instances/{instance.uid}/file"]
    client.login(username=participant.username, password=PASSWORD)
    for url in urls + [f"/datasets/{dataset.pk}/upload/", upload.get_absolute_url()]:
        assert client.get(url).status_code == 403, url
    dataset.visible_to_participants = True
    dataset.save()
    for url in urls:
        assert client.get(url).status_code == 200, url
    assert client.get(upload.get_absolute_url()).status_code == 403
    client.login(username=outsider.username, password=PASSWORD)
    for url in urls:
        assert client.get(url).status_code == 403, url


def test_the_api_takes_an_upload_and_reports_its_progress(organizer, participant, dataset, tmp_path):
    api = APIClient()
    api.force_authenticate(organizer)
    response = api.post(f"/api/v1/datasets/{dataset.pk}/uploads/", {"archive": studies_zip(tmp_path)},
                        format="multipart")
    assert response.status_code == 202, response.content
    ingest_upload(Upload.objects.get(uuid=response.json()["uuid"]).pk)
    body = api.get(f"/api/v1/uploads/{response.json()['uuid']}/").json()
    assert body["status"] == "processed"
    assert body["files_done"] == 2
    other = APIClient()
    other.force_authenticate(participant)
    assert other.get(f"/api/v1/uploads/{response.json()['uuid']}/").status_code == 404
    assert other.post(f"/api/v1/datasets/{dataset.pk}/uploads/", {"archive": studies_zip(tmp_path)},
                      format="multipart").status_code == 404


def test_a_png_dataset_is_stripped_and_served_as_dicom_too(client, organizer, dataset):
    import numpy as np
    import pydicom
    from PIL import Image

    from tests.anonymizer.helpers import PNG_TEXT, png_with_metadata

    pixels = (np.arange(64 * 48, dtype=np.uint32).reshape(64, 48) * 13 % 65536).astype(np.uint16)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("Nightingale_chest.png", png_with_metadata(pixels))
    upload = Upload.receive(dataset=dataset, user=organizer,
                            uploaded_file=SimpleUploadedFile("pngs.zip", buffer.getvalue()))
    ingest_upload(upload.pk)
    instance = Instance.objects.get(dataset=dataset)
    stored = instance.file.open("rb").read()
    assert instance.kind == "png" and b"Nightingale" not in stored and PNG_TEXT.encode() not in stored
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(stored))), pixels)

    client.login(username=organizer.username, password=PASSWORD)
    first = client.get(f"/datasets/{dataset.pk}/instances/{instance.uid}/dicom")
    second = client.get(f"/datasets/{dataset.pk}/instances/{instance.uid}/dicom")
    assert first.status_code == 200
    wrapped = pydicom.dcmread(io.BytesIO(first.content))
    again = pydicom.dcmread(io.BytesIO(second.content))
    assert np.array_equal(wrapped.pixel_array, pixels)
    assert wrapped.SOPInstanceUID == again.SOPInstanceUID and wrapped.StudyInstanceUID == again.StudyInstanceUID
    assert wrapped.PatientID.startswith("MICA-")


@pytest.mark.parametrize("who, status", [("organizer", 302), ("participant", 403), ("outsider", 403)])
def test_organizers_edit_a_dataset(client, challenge, organizer, participant, outsider, who, status):
    dataset = Dataset.objects.create(challenge=challenge, name="Radiographs", created_by=organizer)
    user = {"organizer": organizer, "participant": participant, "outsider": outsider}[who]
    client.login(username=user.username, password=PASSWORD)
    response = client.post(f"/datasets/{dataset.pk}/edit/", {"name": "Chest films", "visible_to_participants": "on",
                                                             "max_files_per_upload": 500, "max_decoded_pixels": 10**7})
    assert response.status_code == status
    dataset.refresh_from_db()
    assert (dataset.name == "Chest films") == (who == "organizer")
    assert client.post(f"/datasets/{dataset.pk}/delete/").status_code == status
    assert Dataset.objects.filter(pk=dataset.pk).exists() == (who != "organizer")


def test_a_dataset_with_an_annotation_project_is_not_deleted_and_a_deleted_one_takes_its_images(
        client, challenge, organizer, tmp_path, django_capture_on_commit_callbacks):
    from pathlib import Path

    from mica.annotations.models import AnnotationProject

    dataset = Dataset.objects.create(challenge=challenge, name="Radiographs", created_by=organizer)
    upload_row = Upload.receive(dataset=dataset, user=organizer, uploaded_file=studies_zip(tmp_path, 2))
    ingest_upload(upload_row.pk)
    files = [instance.file.path for instance in Instance.objects.filter(dataset=dataset)]
    assert len(files) == 2
    project = AnnotationProject.objects.create(dataset=dataset, title="Pneumonia reads", created_by=organizer)
    client.login(username=organizer.username, password=PASSWORD)
    client.post(f"/datasets/{dataset.pk}/delete/")
    assert Dataset.objects.filter(pk=dataset.pk).exists()
    project.delete()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/datasets/{dataset.pk}/delete/")
    assert not Dataset.objects.filter(pk=dataset.pk).exists()
    assert not any(Path(path).exists() for path in files)


def test_the_organizers_file_limit_quarantines_the_rest_of_an_upload_with_a_clear_reason(organizer, challenge,
                                                                                          tmp_path):
    dataset = Dataset.objects.create(challenge=challenge, name="Radiographs", created_by=organizer,
                                     max_files_per_upload=2)
    upload_row = Upload.receive(dataset=dataset, user=organizer, uploaded_file=studies_zip(tmp_path, 3))
    ingest_upload(upload_row.pk)
    upload_row.refresh_from_db()
    assert upload_row.status == Upload.Status.PROCESSED
    assert dataset.instances.count() == 2
    [quarantined] = upload_row.quarantined.all()
    assert "max_files" in quarantined.reason
