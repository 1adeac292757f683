"""Challenge pages: creating, registering with terms, teams, test sets and phases."""

from datetime import timedelta

import pytest
from django.utils import timezone

from django.contrib.auth.models import Permission

from mica.challenges.models import Challenge, ChallengeRole, OrganizerRequest, Phase, Role, TestSet

from .conftest import PASSWORD, csv_bytes, upload

pytestmark = pytest.mark.django_db


def login(client, user):
    client.login(username=user.username, password=PASSWORD)


def test_the_description_is_rendered_safely(client, challenge):
    challenge.description = "**bold** <script>alert(1)</script> [x](javascript:alert(1))"
    challenge.save()
    page = client.get(challenge.get_absolute_url()).content.decode()
    assert "<strong>bold</strong>" in page
    assert "<script>alert(1)" not in page
    assert "javascript:" not in page


NEW_CHALLENGE = {"title": "Bone age", "slug": "bone-age", "task_type": "regression", "registration": "open"}


def test_only_approved_organizers_create_challenges(client, outsider, staff):
    login(client, outsider)
    response = client.post("/challenges/new/", NEW_CHALLENGE)
    assert response.status_code == 302 and response["Location"] == "/challenges/requests/new/"
    assert not Challenge.objects.exists()
    client.post("/challenges/requests/new/", {"motivation": "A bone-age challenge for our society."})
    login(client, staff)
    request = OrganizerRequest.objects.get()
    client.post("/challenges/requests/", {"request": request.pk, "decision": "approve"})
    login(client, outsider)
    response = client.post("/challenges/new/", NEW_CHALLENGE)
    challenge = Challenge.objects.get(slug="bone-age")
    assert challenge.is_organizer(outsider) and challenge.state == "draft"


def test_a_draft_is_seen_by_its_organizers_only(client, outsider, organizer, staff):
    challenge = Challenge.objects.create(slug="draft", title="Draft", task_type="regression", created_by=organizer)
    challenge.add_organizer(organizer)
    for user, status in ((None, 404), (outsider, 404), (organizer, 200), (staff, 200)):
        client.logout()
        if user:
            login(client, user)
        assert client.get("/challenges/draft/").status_code == status
        assert client.get("/api/v1/challenges/draft/").status_code == status
        assert ("Draft" in client.get("/").content.decode()) == (status == 200)
    login(client, organizer)
    client.post("/challenges/draft/publish/", {"state": "published"})
    client.logout()
    assert client.get("/challenges/draft/").status_code == 200


def test_a_reserved_slug_is_refused(client, organizer):
    organizer.user_permissions.add(Permission.objects.get(codename="add_challenge"))
    login(client, organizer)
    response = client.post("/challenges/new/", {**NEW_CHALLENGE, "slug": "new"})
    assert "reserved word" in str(response.context["form"].errors)
    assert not Challenge.objects.exists()


def test_registering_needs_the_terms_accepted(client, challenge, participant):
    login(client, participant)
    client.post(f"/challenges/{challenge.slug}/register/", {})
    assert not challenge.is_participant(participant)
    client.post(f"/challenges/{challenge.slug}/register/", {"accept_terms": "on"})
    role = ChallengeRole.objects.get(challenge=challenge, user=participant, role=Role.PARTICIPANT)
    assert role.accepted_terms_at is not None


def test_a_team_is_joined_with_its_code(client, challenge, participant, teammate, outsider):
    challenge.register(participant)
    challenge.register(teammate)
    login(client, participant)
    client.post(f"/challenges/{challenge.slug}/teams/new/", {"name": "Lungs"})
    team = challenge.team_of(participant)
    assert team.name == "Lungs"
    login(client, teammate)
    client.post(f"/challenges/{challenge.slug}/teams/join/", {"join_code": "wrong"})
    assert challenge.team_of(teammate) is None
    client.post(f"/challenges/{challenge.slug}/teams/join/", {"join_code": team.join_code})
    assert challenge.team_of(teammate) == team
    # One team per challenge, and only registered participants join.
    client.post(f"/challenges/{challenge.slug}/teams/new/", {"name": "Second"})
    assert challenge.teams.count() == 1
    login(client, outsider)
    client.post(f"/challenges/{challenge.slug}/teams/join/", {"join_code": team.join_code})
    assert challenge.team_of(outsider) is None


BAD_TRUTHS = {
    "an empty file": (b"", "empty"),
    "one class only": (b"case_id,label\na,1\nb,1\n", "class"),
    "a label that is not 0 or 1": (b"case_id,label\na,1\nb,0\nc,2\n", "row 4"),
    "a duplicate case": (b"case_id,label\na,1\nb,0\na,0\n", "duplicate"),
}


@pytest.mark.parametrize("content, expected", BAD_TRUTHS.values(), ids=BAD_TRUTHS.keys())
def test_a_bad_truth_file_is_refused_and_nothing_stored(client, organizer, content, expected):
    challenge = Challenge.objects.create(slug="c", title="C", task_type="classification", created_by=organizer)
    challenge.add_organizer(organizer)
    login(client, organizer)
    response = client.post("/challenges/c/test-sets/new/", {"name": "Hidden", "truth_file": upload("t.csv", content),
                                                          "private_fraction": 0.5})
    assert response.status_code == 200
    assert expected in str(response.context["form"].errors["truth_file"]).lower()
    assert not TestSet.objects.exists()


def test_an_organizer_adds_a_phase(client, challenge, organizer):
    login(client, organizer)
    now = timezone.now()
    response = client.post(f"/challenges/{challenge.slug}/phases/new/", {
        "name": "Preliminary", "test_set": challenge.test_sets.get().pk,
        "starts_at": now.strftime("%Y-%m-%dT%H:%M"), "ends_at": (now - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M"),
    })
    assert "end after it starts" in str(response.context["form"].errors)
    assert not Phase.objects.exists()


def test_organizer_pages_check_access(client, challenge, participant):
    challenge.register(participant)
    login(client, participant)
    for path in ("test-sets/new/", "phases/new/"):
        assert client.get(f"/challenges/{challenge.slug}/{path}").status_code == 403
    response = client.post(f"/challenges/{challenge.slug}/test-sets/new/",
                           {"name": "x", "truth_file": upload("t.csv", csv_bytes(["case_id", "label"], [["a", 1]]))})
    assert response.status_code == 403


def test_case_ids_are_for_participants_and_carry_no_label(client, phase, truth, participant, outsider):
    case_ids, _ = truth
    url = f"/challenges/phases/{phase.pk}/case-ids.csv"
    assert client.get(url).status_code == 302  # to the login page
    login(client, outsider)
    assert client.get(url).status_code == 403
    phase.challenge.register(participant)
    login(client, participant)
    content = client.get(url).content.decode().splitlines()
    assert content == ["case_id", *case_ids]


def test_a_corrected_truth_on_the_page_starts_a_rescore_and_a_bad_one_stores_nothing(client, phase, organizer, truth):
    from mica.evaluations.models import Rescore

    case_ids, labels = truth
    test_set = phase.test_set
    url = f"/challenges/{phase.challenge.slug}/test-sets/{test_set.pk}/versions/"
    login(client, organizer)
    bad = upload("t.csv", csv_bytes(["case_id", "pneumonia"], zip(case_ids[:-1], labels[:-1])))
    client.post(url, {"truth_file": bad, "note": "one case short"})
    assert test_set.versions.count() == 1 and not Rescore.objects.exists()
    good = upload("t.csv", csv_bytes(["case_id", "pneumonia"], zip(case_ids, 1 - labels)))
    client.post(url, {"truth_file": good, "note": "labels flipped"})
    assert test_set.versions.count() == 2
    assert Rescore.objects.get().truth_version == test_set.latest_version
