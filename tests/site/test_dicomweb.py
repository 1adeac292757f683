"""DICOMweb served by Mica, checked with dicomweb-client (the real client) against a live server.

Bad inputs tried: unknown query keys, negative or non-numeric limit, frame 0 and a frame past the
end, a non-numeric frame list, UIDs of another dataset, a wrong token, a write (POST).
"""

import numpy as np
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from PIL import Image
from requests import HTTPError
from rest_framework.authtoken.models import Token

from mica.annotations.models import AnnotationProject
from mica.challenges.models import ChallengeRole, Role, Team
from mica.datasets.models import Instance, Series

from .conftest import PASSWORD, make_user
from .imaging import CT_SLICES, MULTIFRAME_FRAMES, PATIENT_ID, PATIENT_NAME, ingested_dataset

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def dataset(challenge, organizer, tmp_path):
    return ingested_dataset(challenge, organizer, tmp_path)


def client_for(live_server, dataset, user):
    token, _ = Token.objects.get_or_create(user=user)
    return DICOMwebClient(url=f"{live_server.url}/datasets/{dataset.pk}/dicomweb",
                          headers={"Authorization": f"Token {token.key}"})


def value(record, tag):
    return record[tag]["Value"][0]


def test_qido_searches_studies_series_and_instances(live_server, dataset, organizer):
    client = client_for(live_server, dataset, organizer)
    studies = client.search_for_studies()
    assert len(studies) == 3
    pseudonyms = {value(study, "00100020") for study in studies}
    assert all(pseudonym.startswith("MICA-") for pseudonym in pseudonyms)
    ct_study = next(study for study in studies if value(study, "00201208") == CT_SLICES + 1)
    assert value(ct_study, "00201206") == 2
    study_uid = value(ct_study, "0020000D")
    assert client.search_for_studies(search_filters={"StudyInstanceUID": study_uid})[0] == ct_study
    assert len(client.search_for_studies(search_filters={"PatientID": value(ct_study, "00100020")})) == 1
    assert len(client.search_for_studies(search_filters={"PatientID": "MICA-*"})) == 3
    assert client.search_for_studies(search_filters={"PatientID": "nobody"}) == []
    assert len(client.search_for_studies(limit=2)) == 2 and len(client.search_for_studies(offset=2)) == 1
    series = client.search_for_series(study_instance_uid=study_uid)
    assert sorted(value(item, "00201209") for item in series) == [1, CT_SLICES]
    assert len(client.search_for_series(search_filters={"Modality": "CT"})) == 2
    ct_series = next(item for item in series if value(item, "00201209") == CT_SLICES)
    instances = client.search_for_instances(study_uid, value(ct_series, "0020000E"))
    assert len(instances) == CT_SLICES
    assert {value(item, "00080018") for item in instances} == set(
        Instance.objects.filter(series__series_uid=value(ct_series, "0020000E")).values_list("uid", flat=True))
    assert len(client.search_for_instances()) == 2 + CT_SLICES + 1
    with_field = client.search_for_instances(study_uid, fields=["PatientName"])
    assert all("00100010" in item for item in with_field)


def test_wado_retrieves_instances_metadata_frames_and_rendered_images(live_server, dataset, organizer):
    client = client_for(live_server, dataset, organizer)
    multiframe = Instance.objects.get(dataset=dataset, series__in=Series.objects.filter(
        instances__isnull=False).annotate().filter(series_uid__in=[
            series.series_uid for series in Series.objects.filter(study__dataset=dataset)
            if series.instances.count() == 1 and series.modality == "CT"]))
    study_uid, series_uid = multiframe.series.study.study_uid, multiframe.series.series_uid
    stored = pydicom.dcmread(multiframe.file.path)

    retrieved = client.retrieve_instance(study_uid, series_uid, multiframe.uid)
    assert retrieved.SOPInstanceUID == multiframe.uid
    assert np.array_equal(retrieved.pixel_array, stored.pixel_array)
    assert PATIENT_NAME not in str(retrieved.PatientName) and PATIENT_ID not in str(retrieved.PatientID)
    assert len(client.retrieve_study(study_uid)) == CT_SLICES + 1
    assert len(client.retrieve_series(study_uid, series_uid)) == 1

    metadata = client.retrieve_instance_metadata(study_uid, series_uid, multiframe.uid)
    assert value(metadata, "00280008") == MULTIFRAME_FRAMES and "BulkDataURI" in metadata["7FE00010"]
    assert len(client.retrieve_series_metadata(study_uid, series_uid)) == 1
    assert len(client.retrieve_study_metadata(study_uid)) == CT_SLICES + 1

    frames = client.retrieve_instance_frames(study_uid, series_uid, multiframe.uid, frame_numbers=[2, 4])
    frame_pixels = stored.pixel_array
    for content, number in zip(frames, [2, 4]):
        decoded = np.frombuffer(content, dtype=frame_pixels.dtype).reshape(frame_pixels.shape[1:])
        assert np.array_equal(decoded, frame_pixels[number - 1])

    rendered = client.retrieve_instance_frames_rendered(study_uid, series_uid, multiframe.uid, frame_numbers=[3],
                                                        media_types=("image/png",))
    import io
    image = Image.open(io.BytesIO(rendered))
    assert image.format == "PNG" and image.size == (stored.Columns, stored.Rows)
    first = Image.open(io.BytesIO(client.retrieve_instance_rendered(study_uid, series_uid, multiframe.uid,
                                                                       media_types=("image/png",))))
    assert np.asarray(first).tolist() != np.asarray(image).tolist()  # frame 3 is not frame 1


def test_monochrome1_is_rendered_inverted(live_server, dataset, organizer):
    client = client_for(live_server, dataset, organizer)
    radiographs = [instance for instance in Instance.objects.filter(dataset=dataset, series__modality__in=["DX", "CR"])]
    photometrics = {}
    import io
    for instance in radiographs:
        header = pydicom.dcmread(instance.file.path)
        png = client.retrieve_instance_rendered(instance.series.study.study_uid, instance.series.series_uid,
                                                instance.uid, media_types=("image/png",))
        rendered = np.asarray(Image.open(io.BytesIO(png)), dtype=float)
        correlation = np.corrcoef(rendered.ravel(), header.pixel_array.astype(float).ravel())[0, 1]
        photometrics[header.PhotometricInterpretation] = correlation
    assert photometrics["MONOCHROME2"] > 0.9 and photometrics["MONOCHROME1"] < -0.9


def test_bad_requests_are_named(live_server, dataset, organizer):
    client = client_for(live_server, dataset, organizer)
    instance = Instance.objects.filter(dataset=dataset).first()
    base = f"{live_server.url}/datasets/{dataset.pk}/dicomweb"
    path = f"{base}/studies/{instance.series.study.study_uid}/series/{instance.series.series_uid}/instances/{instance.uid}"
    session = client._session
    cases = [(f"{base}/studies?NotAKeyword=1", 400, "Unknown query key"),
             (f"{base}/studies?limit=-1", 400, "must not be negative"),
             (f"{base}/studies?limit=ten", 400, "whole numbers"),
             (f"{path}/frames/0", 404, "Frame 0 does not exist"),
             (f"{path}/frames/99", 404, "Frame 99 does not exist"),
             (f"{path}/frames/one", 400, "Frame numbers are whole numbers")]
    for url, status, message in cases:
        response = session.get(url)
        assert response.status_code == status and message in response.json()["error"], url
    assert session.post(f"{base}/studies").status_code == 405


def test_paths_of_another_dataset_are_refused(live_server, challenge, organizer, tmp_path):
    first = ingested_dataset(challenge, organizer, tmp_path / "a", name="First")
    (tmp_path / "b").mkdir()
    other_challenge_organizer = make_user("otto")
    from mica.challenges.models import Challenge

    other = Challenge.objects.create(slug="other", title="Other", task_type="classification",
                                     state="published", created_by=other_challenge_organizer)
    ChallengeRole.objects.create(challenge=other, user=other_challenge_organizer, role=Role.ORGANIZER)
    second = ingested_dataset(other, other_challenge_organizer, tmp_path / "b", name="Second")
    instance = Instance.objects.filter(dataset=second).first()
    study_uid, series_uid = instance.series.study.study_uid, instance.series.series_uid
    client = client_for(live_server, first, organizer)  # organizer of the first dataset only
    for call in (lambda: client.retrieve_study(study_uid),
                 lambda: client.retrieve_instance(study_uid, series_uid, instance.uid),
                 lambda: client.search_for_series(study_uid)):
        with pytest.raises(HTTPError) as raised:
            call()
        assert raised.value.response.status_code == 404
    with pytest.raises(HTTPError) as raised:
        client_for(live_server, second, organizer).search_for_studies()
    assert raised.value.response.status_code == 403


@pytest.fixture
def standing_users(challenge, organizer, participant, teammate, outsider, annotator):
    challenge.register(participant)
    challenge.register(teammate)
    Team.create_for(challenge, participant, "Team Paul").add_member(teammate)
    other = make_user("olga")
    challenge.register(other)
    Team.create_for(challenge, other, "Other team")
    co_organizer = make_user("cora")
    ChallengeRole.objects.create(challenge=challenge, user=co_organizer, role=Role.ORGANIZER)
    return {"anonymous": None, "outsider": outsider, "other team": other, "team member": participant,
            "annotator": annotator, "organizer": organizer, "co-organizer": co_organizer,
            "staff": make_user("stan", is_staff=True)}


@pytest.mark.parametrize("visible", [False, True])
def test_permission_matrix(live_server, dataset, organizer, annotator, standing_users, visible):
    dataset.visible_to_participants = visible
    dataset.save()
    project = AnnotationProject.objects.create(dataset=dataset, title="Reads", created_by=organizer)
    instance = Instance.objects.filter(dataset=dataset).first()
    study_uid, series_uid = instance.series.study.study_uid, instance.series.series_uid
    base = f"{live_server.url}/datasets/{dataset.pk}/dicomweb"
    urls = [f"{base}/studies", f"{base}/studies/{study_uid}/series", f"{base}/studies/{study_uid}/metadata",
            f"{base}/studies/{study_uid}/series/{series_uid}/instances/{instance.uid}/frames/1",
            f"{base}/studies/{study_uid}/series/{series_uid}/instances/{instance.uid}/rendered"]
    import requests

    def statuses(user, project_reader=False):
        headers = {}
        if user is not None:
            headers["Authorization"] = f"Token {Token.objects.get_or_create(user=user)[0].key}"
        return {requests.get(url, headers=headers).status_code for url in urls}

    allowed = {"organizer", "co-organizer", "staff"} | ({"other team", "team member"} if visible else set())
    for name, user in standing_users.items():
        expected = 401 if user is None else (200 if name in allowed else 403)
        assert statuses(user) == {expected}, name
    assert statuses(annotator) == {403}
    project.add_reader(annotator)  # a reader of a project on the dataset may see its images
    assert statuses(annotator) == {200}
    assert requests.get(urls[0], headers={"Authorization": "Token wrong"}).status_code == 401


def test_the_browser_session_is_enough(client, dataset, organizer):
    client.login(username=organizer.username, password=PASSWORD)
    response = client.get(f"/datasets/{dataset.pk}/dicomweb/studies")
    assert response.status_code == 200 and response["Content-Type"] == "application/dicom+json"
