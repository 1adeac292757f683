"""Pulling studies from a hospital's DICOMweb server: a real Orthanc (Debian's orthanc and
orthanc-dicomweb) started by the test, its studies pulled through the anonymizer, and a leak
check of everything stored.

Bad inputs tried: a server not in MICA_DICOMWEB_SOURCES, both UIDs and filters, neither, a
malformed UID, an unknown study, an unknown filter, a search matching nothing, a server that
is down.
"""

import json
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pydicom
import pytest
from django.core.files.storage import storages

import anonymizer.synthetic
from mica.challenges.models import ChallengeRole, Role, Team
from mica.datasets.models import Dataset, DicomWebPull, Instance, Upload
from mica.datasets.pull import pull_studies, request_pull
from mica.datasets.tasks import ingest_upload

from .conftest import PASSWORD, make_user

pytestmark = pytest.mark.django_db

PATIENT_NAME = "Pacs^Petronella"
PATIENT_ID = "HOSP-44172"
ORTHANC = shutil.which("Orthanc") or "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    """A PACS holding two patients' studies: a CT series of 3 slices and a radiograph."""
    folder = tmp_path_factory.mktemp("orthanc")
    port = free_port()
    config = {"Name": "MicaTestPACS", "StorageDirectory": str(folder / "db"), "IndexDirectory": str(folder / "db"),
              "HttpPort": port, "DicomPort": free_port(), "RemoteAccessAllowed": False,
              "AuthenticationEnabled": False, "Plugins": [DICOMWEB_PLUGIN],
              "DicomWeb": {"Enable": True, "Root": "/dicom-web/"}}
    (folder / "orthanc.json").write_text(json.dumps(config))
    server = subprocess.Popen([ORTHANC, str(folder / "orthanc.json")], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(f"{base}/system")
            break
        except OSError:
            time.sleep(0.1)
    (folder / "ct").mkdir()
    files = anonymizer.synthetic.write_ct_series(folder / "ct", n_slices=3, size=64, patient_name=PATIENT_NAME,
                                                 patient_id=PATIENT_ID)
    files.append(anonymizer.synthetic.write_radiograph(folder / "cr.dcm", rows=128, columns=96,
                                                       patient_name=f"{PATIENT_NAME}2", patient_id=f"{PATIENT_ID}-2"))
    for path in files:
        request = urllib.request.Request(f"{base}/instances", data=Path(path).read_bytes(), method="POST")
        assert json.load(urllib.request.urlopen(request))["Status"] == "Success"
    studies = {pydicom.dcmread(path).PatientID: pydicom.dcmread(path).StudyInstanceUID for path in files}
    yield {"url": f"{base}/dicom-web", "ct_study": studies[PATIENT_ID], "cr_study": studies[f"{PATIENT_ID}-2"]}
    server.terminate()
    server.wait()


@pytest.fixture
def dataset(challenge, organizer, orthanc, settings):
    settings.MICA_DICOMWEB_SOURCES = [orthanc["url"]]
    return Dataset.objects.create(challenge=challenge, name="From the PACS", created_by=organizer)


def stored_bytes(dataset):
    """Every file the site keeps for the dataset, in private storage."""
    root = Path(storages["private"].location)
    for folder in ("datasets", "previews", "identifiers", "uploads", "pulls"):
        for path in (root / folder / str(dataset.pk)).rglob("*"):
            if path.is_file():
                yield path, path.read_bytes()


def test_a_pull_goes_through_the_anonymizer_and_nothing_identifying_is_stored(client, dataset, organizer, orthanc):
    client.login(username=organizer.username, password=PASSWORD)
    response = client.post(f"/datasets/{dataset.pk}/pull/",
                           {"source": orthanc["url"], "study_uids": f"{orthanc['ct_study']}\n"})
    assert response.status_code == 302
    pull = DicomWebPull.objects.get()
    assert pull.status == DicomWebPull.Status.QUEUED
    pull_studies(pull.pk)  # the worker's step, run here
    pull.refresh_from_db()
    assert pull.status == DicomWebPull.Status.RECEIVED, pull.status_reason
    assert (pull.studies_total, pull.instances_received) == (1, 3)
    ingest_upload(pull.upload.pk)
    upload = Upload.objects.get(pk=pull.upload.pk)
    assert upload.status == Upload.Status.PROCESSED, upload.status_reason
    instances = Instance.objects.filter(dataset=dataset)
    assert instances.count() == 3 and all(instance.uid.startswith("2.25.") for instance in instances)
    assert dataset.cases.count() == 3
    # The leak check: no name in any stored file, and no patient ID or original study UID but in
    # the organizers' private identifier map (which holds them by design, to map their labels).
    files = dict(stored_bytes(dataset))
    assert files and not any(path.parts[-3] == "pulls" for path in files)  # the query is gone
    for path, content in files.items():
        assert PATIENT_NAME.encode() not in content, path
        if "identifiers" in path.parts:
            assert PATIENT_ID.encode() in content and orthanc["ct_study"].encode() in content, path
        else:
            assert PATIENT_ID.encode() not in content and orthanc["ct_study"].encode() not in content, path
    page = client.get(f"/datasets/{dataset.pk}/pull/").content.decode()
    assert "3 instances of 1 study received" in page and orthanc["ct_study"] not in page


def test_a_pull_by_patient_id_takes_only_that_patients_studies(dataset, organizer, orthanc):
    pull = request_pull(dataset, organizer, orthanc["url"], filters={"PatientID": f"{PATIENT_ID}-2"})
    pull_studies(pull.pk)
    pull.refresh_from_db()
    assert pull.status == DicomWebPull.Status.RECEIVED, pull.status_reason
    assert (pull.studies_total, pull.instances_received) == (1, 1)


def test_bad_pulls_are_refused_or_fail_with_a_reason(dataset, organizer, orthanc, settings):
    with pytest.raises(ValueError, match="not among the DICOMweb sources"):
        request_pull(dataset, organizer, "http://elsewhere.example/dicom-web", [orthanc["ct_study"]])
    with pytest.raises(ValueError, match="either Study Instance UIDs or filters"):
        request_pull(dataset, organizer, orthanc["url"], [orthanc["ct_study"]], {"PatientID": PATIENT_ID})
    with pytest.raises(ValueError, match="either Study Instance UIDs or filters"):
        request_pull(dataset, organizer, orthanc["url"])
    with pytest.raises(ValueError, match="Study 2: not a DICOM UID"):
        request_pull(dataset, organizer, orthanc["url"], [orthanc["ct_study"], "1.2.x"])
    with pytest.raises(ValueError, match="Unknown filter 'PatientName'"):
        request_pull(dataset, organizer, orthanc["url"], filters={"PatientName": PATIENT_NAME})
    assert not DicomWebPull.objects.exists()

    outcomes = []
    for study_uids, filters in ((["1.2.3.999"], None), ((), {"PatientID": "NOBODY"})):
        pull = request_pull(dataset, organizer, orthanc["url"], study_uids, filters)
        pull_studies(pull.pk)
        pull.refresh_from_db()
        outcomes.append((pull.status, pull.status_reason))
    down = f"http://127.0.0.1:{free_port()}/dicom-web"
    settings.MICA_DICOMWEB_SOURCES = [down]
    pull = request_pull(dataset, organizer, down, [orthanc["ct_study"]])
    pull_studies(pull.pk)
    pull.refresh_from_db()
    outcomes.append((pull.status, pull.status_reason))
    assert outcomes == [("failed", "Study 1 of 1: the server answered 404."),
                        ("failed", "No study on the server matches these filters."),
                        ("failed", "The DICOMweb server could not be reached.")]
    assert not Upload.objects.exists()
    assert not any(path.parts[-3] == "pulls" for path, _ in stored_bytes(dataset))


def test_only_organizers_may_pull(client, challenge, dataset, organizer, participant, teammate, outsider, annotator):
    challenge.register(participant)
    challenge.register(teammate)
    Team.create_for(challenge, participant, "Team Paul").add_member(teammate)
    other = make_user("olga")
    challenge.register(other)
    co_organizer = make_user("cora")
    ChallengeRole.objects.create(challenge=challenge, user=co_organizer, role=Role.ORGANIZER)
    users = {"outsider": outsider, "other team": other, "team member": participant, "annotator": annotator,
             "organizer": organizer, "co-organizer": co_organizer, "staff": make_user("stan", is_staff=True)}
    url = f"/datasets/{dataset.pk}/pull/"
    assert client.get(url).status_code == 302  # anonymous: to the login page
    for name, user in users.items():
        client.login(username=user.username, password=PASSWORD)
        expected = 200 if name in ("organizer", "co-organizer", "staff") else 403
        assert client.get(url).status_code == expected, name
        assert client.post(url, {"source": "x", "study_uids": "1.2"}).status_code in (expected, 200), name
    assert not DicomWebPull.objects.exists()
