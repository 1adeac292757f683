"""Every page and endpoint of challenges, phases, teams, submissions and leaderboards, requested
by each standing user: anonymous, outsider, another team's member, a team member, an annotator,
the organizer, a co-organizer and site staff. Pages and the API must agree."""

import pytest
from rest_framework.test import APIClient

from mica.submissions.models import Submission

from .conftest import PASSWORD, run_evaluations, upload

pytestmark = pytest.mark.django_db

USERS = ["anonymous", "outsider", "rival", "participant", "annotator", "organizer", "co_organizer", "staff"]
ORGANIZERS = {"organizer", "co_organizer", "staff"}
LOGIN = 302  # anonymous users are sent to the login page


@pytest.fixture
def people(request, outsider, rival, participant, annotator, organizer, co_organizer, staff, team):
    return {"anonymous": None, "outsider": outsider, "rival": rival, "participant": participant,
            "annotator": annotator, "organizer": organizer, "co_organizer": co_organizer, "staff": staff}


@pytest.fixture
def submission(phase, team, participant, predictions):
    submission = Submission.create(phase=phase, user=participant, uploaded_file=upload("p.csv", predictions))
    run_evaluations(submission)
    return submission


def expect(allowed, *, denied=403, anonymous=LOGIN):
    return {user: 200 if user in allowed else (anonymous if user == "anonymous" else denied) for user in USERS}


def pages(challenge, phase, team, submission):
    slug, test_set = challenge.slug, phase.test_set
    member_side = {"participant"} | ORGANIZERS
    return {
        f"/challenges/{slug}/": expect(set(USERS), anonymous=200),
        f"/challenges/{slug}/edit/": expect(ORGANIZERS),
        f"/challenges/{slug}/organizers/": expect(ORGANIZERS),
        f"/challenges/{slug}/dashboard/": expect(ORGANIZERS),
        f"/challenges/{slug}/test-sets/new/": expect(ORGANIZERS),
        f"/challenges/{slug}/test-sets/{test_set.pk}/": expect(ORGANIZERS),
        f"/challenges/{slug}/phases/new/": expect(ORGANIZERS),
        f"/challenges/phases/{phase.pk}/edit/": expect(ORGANIZERS),
        f"/challenges/phases/{phase.pk}/case-ids.csv": expect({"participant", "rival"} | ORGANIZERS),
        f"/challenges/{slug}/teams/{team.pk}/": expect(member_side),
        "/challenges/requests/": expect({"staff"}),
        f"/submissions/phases/{phase.pk}/baseline/": expect(ORGANIZERS),
        f"/submissions/{submission.uuid}/": expect(member_side),
        f"/submissions/{submission.uuid}/file/": expect(member_side),
        f"/leaderboards/phases/{phase.pk}/": expect(set(USERS), anonymous=200),
        f"/leaderboards/phases/{phase.pk}/private/": expect(ORGANIZERS, denied=404, anonymous=404),
    }


def endpoints(challenge, phase, submission):
    member_side = {"participant"} | ORGANIZERS
    return {
        f"/api/v1/challenges/{challenge.slug}/": expect(set(USERS), anonymous=200),
        f"/api/v1/phases/{phase.pk}/": expect(set(USERS), anonymous=200),
        f"/api/v1/phases/{phase.pk}/case-ids/": expect({"participant", "rival"} | ORGANIZERS, anonymous=403),
        f"/api/v1/submissions/{submission.uuid}/": expect(member_side, anonymous=403),
        f"/api/v1/leaderboards/{phase.pk}/": expect(set(USERS), anonymous=200),
        f"/api/v1/leaderboards/{phase.pk}/private/": expect(ORGANIZERS, denied=404, anonymous=404),
    }


@pytest.mark.parametrize("who", USERS)
def test_pages(client, people, challenge, phase, team, submission, who):
    user = people[who]
    if user:
        client.login(username=user.username, password=PASSWORD)
    for url, expected in pages(challenge, phase, team, submission).items():
        status = client.get(url).status_code
        assert status == expected[who], f"{who} GET {url}: {status}, expected {expected[who]}"


@pytest.mark.parametrize("who", USERS)
def test_endpoints(people, challenge, phase, submission, who):
    api = APIClient()
    if people[who]:
        api.force_authenticate(people[who])
    for url, expected in endpoints(challenge, phase, submission).items():
        status = api.get(url).status_code
        allowed = {expected[who]} | ({401} if who == "anonymous" and expected[who] == 403 else set())
        assert status in allowed, f"{who} GET {url}: {status}, expected {expected[who]}"


@pytest.mark.parametrize("who", USERS)
def test_the_submission_list_holds_what_each_user_may_read(people, phase, submission, who):
    api = APIClient()
    if people[who]:
        api.force_authenticate(people[who])
    response = api.get("/api/v1/submissions/")
    if who == "anonymous":
        assert response.status_code in (401, 403)
        return
    listed = [row["uuid"] for row in response.json()["results"]]
    assert listed == ([str(submission.uuid)] if who in {"participant"} | ORGANIZERS else [])
    evaluations = response.json()["results"][0]["evaluations"] if listed else None
    assert (evaluations is not None) == (who in ORGANIZERS)  # only organizers see both parts


@pytest.mark.parametrize("who", USERS)
def test_organizer_actions(client, people, challenge, phase, team, who):
    user = people[who]
    if user:
        client.login(username=user.username, password=PASSWORD)
    actions = [
        (f"/challenges/{challenge.slug}/publish/", {"state": "draft"}),
        (f"/challenges/phases/{phase.pk}/reveal/", {}),
        (f"/challenges/{challenge.slug}/teams/{team.pk}/", {"action": "disqualify", "reason": "cheating"}),
        (f"/challenges/phases/{phase.pk}/delete/", {}),
    ]
    for url, data in actions:
        status = client.post(url, data).status_code
        if who in ORGANIZERS:
            assert status == 302, (who, url, status)
        elif who == "anonymous":
            assert status == LOGIN
        elif who == "participant" and "teams" in url:
            assert status == 403  # a member changes the team, but never disqualifies it
        else:
            assert status in (403, 404), (who, url, status)
    challenge.refresh_from_db()
    team.refresh_from_db()
    assert (challenge.state == "draft") == (who in ORGANIZERS)
    assert (team.disqualified_at is not None) == (who in ORGANIZERS)
