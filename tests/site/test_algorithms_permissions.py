"""Every page and endpoint of model containers, requested by each standing user: anonymous,
outsider, another team's member, a team member, an annotator, the organizer, a co-organizer
and site staff. Pages and the API agree; a team's run is its own and the organizers'."""

import base64

import pytest
from rest_framework.test import APIClient

from mica.accounts.tokens import issue_token
from mica.algorithms.models import Algorithm, ContainerImage, InferenceRun
from mica.challenges.models import Phase

from .conftest import PASSWORD
from .containers import PREDICT, image_archive

pytestmark = pytest.mark.django_db

USERS = ["anonymous", "outsider", "rival", "participant", "annotator", "organizer", "co_organizer", "staff"]
ORGANIZERS = {"organizer", "co_organizer", "staff"}
TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}


@pytest.fixture
def people(outsider, rival, participant, annotator, organizer, co_organizer, staff, team):
    return {"anonymous": None, "outsider": outsider, "rival": rival, "participant": participant,
            "annotator": annotator, "organizer": organizer, "co_organizer": co_organizer, "staff": staff}


@pytest.fixture
def run(phase, team, participant, tmp_path):
    Phase.objects.filter(pk=phase.pk).update(accepts_containers=True)
    phase.refresh_from_db()
    path, _ = image_archive(tmp_path / "model.tar", PREDICT)
    image = ContainerImage.store(str(path))
    algorithm = Algorithm.objects.create(challenge=phase.challenge, team=team, image=image, name="model.tar",
                                         uploaded_by=participant)
    return InferenceRun.submit(phase=phase, user=participant, algorithm=algorithm, filename="model.tar")


def expect(allowed, *, denied=403, anonymous=302):
    return {user: 200 if user in allowed else (anonymous if user == "anonymous" else denied) for user in USERS}


@pytest.mark.parametrize("who", USERS)
def test_pages(client, people, run, who):
    user = people[who]
    if user:
        client.login(username=user.username, password=PASSWORD)
    algorithm, slug = run.algorithm, run.phase.challenge.slug
    pages = {
        f"/algorithms/runs/{run.uuid}/": expect({"participant"} | ORGANIZERS),
        f"/algorithms/challenges/{slug}/runs/": expect(ORGANIZERS),
        f"/algorithms/{algorithm.pk}/rerun/": expect(ORGANIZERS),
        f"/algorithms/{algorithm.pk}/transferability/": expect(ORGANIZERS),
        f"/algorithms/phases/{run.phase_id}/metric-container/": expect(ORGANIZERS),
    }
    for url, expected in pages.items():
        status = client.get(url).status_code
        assert status == expected[who], f"{who} GET {url}: {status}, expected {expected[who]}"


def api_client(user):
    client = APIClient()
    if user:
        client.credentials(HTTP_AUTHORIZATION=f"Token {issue_token(user).key}")
    return client


@pytest.mark.parametrize("who", USERS)
def test_endpoints(people, run, who):
    client = api_client(people[who])
    algorithm = run.algorithm
    endpoints = {
        f"/api/v1/inference-runs/{run.uuid}/": expect({"participant"} | ORGANIZERS, anonymous=401),
        f"/api/v1/algorithms/{algorithm.pk}/": expect(ORGANIZERS, anonymous=401),
        f"/api/v1/algorithms/{algorithm.pk}/transferability/": expect(ORGANIZERS, anonymous=401),
    }
    for url, expected in endpoints.items():
        status = client.get(url).status_code
        assert status == expected[who], f"{who} GET {url}: {status}, expected {expected[who]}"
    listed = client.get("/api/v1/inference-runs/")
    if who == "anonymous":
        assert listed.status_code == 401
    else:
        assert listed.json()["count"] == (1 if who in {"participant"} | ORGANIZERS else 0), who
        algorithms = client.get("/api/v1/algorithms/").json()["count"]
        assert algorithms == (1 if who in ORGANIZERS else 0), who
    rerun = client.post(f"/api/v1/algorithms/{algorithm.pk}/rerun/", {"phase": run.phase_id}, format="json")
    assert rerun.status_code == (201 if who in ORGANIZERS else 401 if who == "anonymous" else 403), who


def start_upload(user, **pairs):
    metadata = ",".join(f"{key} {base64.b64encode(str(value).encode()).decode()}" for key, value in pairs.items())
    return api_client(user).post("/uploads/", HTTP_UPLOAD_LENGTH="1000", HTTP_UPLOAD_METADATA=metadata, **TUS)


@pytest.mark.parametrize("who", USERS)
def test_who_may_send_a_container(people, run, who):
    """A member of a team of the challenge (the participant's, or the rival's own); nobody else."""
    response = start_upload(people[who], purpose="container-submission", phase=run.phase_id)
    expected = 201 if who in {"participant", "rival"} else 401 if who == "anonymous" else 403
    assert response.status_code == expected, f"{who}: {response.status_code} {response.content!r}"


@pytest.mark.parametrize("who", USERS)
def test_who_may_send_a_metric_container(people, run, who):
    response = start_upload(people[who], purpose="metric-container", phase=run.phase_id, metrics="hits:higher")
    expected = 201 if who in ORGANIZERS else 401 if who == "anonymous" else 403
    assert response.status_code == expected, f"{who}: {response.status_code} {response.content!r}"


def test_logs_in_the_api_follow_the_phase(people, run):
    assert api_client(people["participant"]).get(f"/api/v1/inference-runs/{run.uuid}/").json()["stdout"] is None
    assert api_client(people["organizer"]).get(f"/api/v1/inference-runs/{run.uuid}/").json()["stdout"] == ""
    Phase.objects.filter(pk=run.phase_id).update(container_logs_visible=True)
    assert api_client(people["participant"]).get(f"/api/v1/inference-runs/{run.uuid}/").json()["stdout"] == ""
