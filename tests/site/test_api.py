"""The REST API under /api/v1/: token auth, submissions, leaderboards, schema and docs."""

import pytest
from rest_framework.test import APIClient

from mica.submissions.models import Submission

from .conftest import PASSWORD, run_evaluations, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(participant):
    client = APIClient()
    response = client.post("/api/v1/auth/token/", {"username": participant.username, "password": PASSWORD})
    assert response.status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    return client


def test_it_accepts_a_submission_with_a_token(api, phase, team, predictions):
    response = api.post("/api/v1/submissions/", {"phase": phase.pk, "predictions": upload("p.csv", predictions)},
                        format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "queued"
    assert body["team"] == team.name
    submission = Submission.objects.get(uuid=body["uuid"])
    public = run_evaluations(submission)["public"]
    detail = api.get(f"/api/v1/submissions/{body['uuid']}/").json()
    assert detail["status"] == "succeeded"
    # Participants see the public score rounded to the phase's 4 significant digits, nothing private.
    assert detail["metrics"]["auc"] == float(f"{public.primary_score:.4g}")
    assert detail["evaluations"] is None


def test_it_reports_a_bad_file_with_its_row(api, phase, team):
    content = b"case_id,score\ncase-00000,0.5\ncase-00001,NaN\n"
    response = api.post("/api/v1/submissions/", {"phase": phase.pk, "predictions": upload("mine.csv", content)},
                        format="multipart")
    assert response.status_code == 400
    message = " ".join(response.json()["predictions"])
    assert "mine.csv" in message and "row 3" in message
    assert Submission.objects.count() == 0


def test_it_lists_only_your_teams_submissions(api, phase, team, participant, outsider, predictions):
    Submission.create(phase=phase, user=participant, uploaded_file=upload("p.csv", predictions))
    assert api.get("/api/v1/submissions/").json()["count"] == 1
    other = APIClient()
    other.force_authenticate(outsider)
    assert other.get("/api/v1/submissions/").json()["count"] == 0


def test_it_checks_access(phase, team, predictions):
    anonymous = APIClient()
    response = anonymous.post("/api/v1/submissions/", {"phase": phase.pk, "predictions": upload("p.csv", predictions)},
                              format="multipart")
    assert response.status_code in (401, 403)
    assert anonymous.get("/api/v1/submissions/").status_code in (401, 403)
    assert Submission.objects.count() == 0


def test_the_leaderboard_is_public(phase, team, participant, predictions):
    submission = Submission.create(phase=phase, user=participant, uploaded_file=upload("p.csv", predictions))
    run_evaluations(submission)
    rows = APIClient().get(f"/api/v1/leaderboards/{phase.pk}/").json()
    assert [(row["rank"], row["team"]) for row in rows] == [(1, team.name)]
    assert "submission_uuid" not in rows[0]


def test_challenges_list_their_phases(phase):
    body = APIClient().get("/api/v1/challenges/").json()
    assert body["results"][0]["slug"] == "pneumonia"
    assert body["results"][0]["phases"][0]["n_cases"] == 40


def test_the_schema_and_docs_are_served(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/v1/submissions/" in schema.content
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content
