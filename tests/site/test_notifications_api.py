"""Notifications over the API: each user reads and changes their own, nobody else's."""

import pytest
from rest_framework.test import APIClient

from mica.notifications.models import OPTIONAL_KINDS, ORGANIZER_KINDS, EmailOptOut, Kind, Notification, notify

from .test_forum_access import STANDING, user_for

pytestmark = pytest.mark.django_db


def api_as(user):
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.fixture
def everyone(request, team, rival, co_organizer, staff, outsider, annotator, organizer, participant):
    """Each standing user who has an account, with one notification of their own."""
    users = {who: user_for(request, who) for who in STANDING if who != "anonymous"}
    for who, user in users.items():
        notify([user], Kind.ANNOUNCEMENT, f"For {who}", f"Only {who} reads this.", url="/challenges/")
    return users


@pytest.mark.parametrize("who", STANDING)
def test_each_user_lists_their_own_notifications_only(request, everyone, who):
    user = user_for(request, who)
    api = api_as(user)
    listed = api.get("/api/v1/notifications/")
    preferences = api.get("/api/v1/notifications/preferences/")
    changed = api.patch("/api/v1/notifications/preferences/", {"email": {"forum_reply": False}}, format="json")
    marked = api.post("/api/v1/notifications/read/", {}, format="json")
    if user is None:
        assert {r.status_code for r in (listed, preferences, changed, marked)} == {401}
        assert not EmailOptOut.objects.exists() and not Notification.objects.filter(read_at__isnull=False).exists()
        return
    assert listed.status_code == 200
    rows = listed.json()["results"]
    assert [(row["subject"], row["body"]) for row in rows] == [(f"For {who}", f"Only {who} reads this.")]
    assert rows[0]["kind"] == "announcement" and rows[0]["web_url"].endswith("/challenges/")
    # The organizers' kinds are offered to those who organize a challenge (and staff) only.
    offered = [kind for kind in OPTIONAL_KINDS
               if kind not in ORGANIZER_KINDS or who in ("organizer", "co_organizer", "staff")]
    assert preferences.status_code == 200 and [row["kind"] for row in preferences.json()["email"]] == offered
    assert changed.status_code == 200
    assert list(EmailOptOut.objects.values_list("user__username", "kind")) == [(user.username, "forum_reply")]
    assert marked.json() == {"marked": 1}
    assert list(Notification.objects.filter(read_at__isnull=False).values_list("user", flat=True)) == [user.pk]


def test_marking_read_by_id_touches_only_ones_own(participant, outsider):
    mine = notify([participant, participant], Kind.ANNOUNCEMENT, "Mine", "x")
    [theirs] = notify([outsider], Kind.ANNOUNCEMENT, "Theirs", "x")
    api = api_as(participant)
    response = api.post("/api/v1/notifications/read/", {"ids": [mine[0].pk, theirs.pk]}, format="json")
    assert response.json() == {"marked": 1}
    assert Notification.objects.get(pk=theirs.pk).read_at is None
    listed = {row["id"]: row["read_at"] for row in api.get("/api/v1/notifications/").json()["results"]}
    assert listed[mine[0].pk] is not None and theirs.pk not in listed
    bad = api.post("/api/v1/notifications/read/", {"ids": ["x"]}, format="json")
    assert bad.status_code == 400 and list(bad.json()) == ["ids"]


def test_preferences_change_the_kinds_named_and_keep_the_others(client, participant):
    EmailOptOut.set_for(participant, [Kind.ANNOUNCEMENT])
    api = api_as(participant)
    response = api.patch("/api/v1/notifications/preferences/",
                         {"email": {"announcement": True, "submission_failed": False}}, format="json")
    assert response.status_code == 200
    off = {row["kind"] for row in response.json()["email"] if not row["on"]}
    assert off == {"submission_failed"}
    # The settings page shows the same.
    client.force_login(participant)
    page = client.get("/notifications/settings/").content.decode()
    assert 'value="submission_failed">' in page and 'value="announcement" checked>' in page
    # A notification of a kind turned off shows on the site and is not e-mailed.
    [row] = notify([participant], Kind.SUBMISSION_FAILED, "Failed", "x")
    assert row.status == Notification.Status.SITE_ONLY


@pytest.mark.parametrize("body", [{"email": {"verify_email": False}}, {"email": {"no_such_kind": True}},
                                  {"email": {"announcement": "maybe"}}, {"email": []}, {"email": None}])
def test_a_bad_preference_is_refused_naming_email(participant, body):
    response = api_as(participant).patch("/api/v1/notifications/preferences/", body, format="json")
    assert response.status_code == 400 and list(response.json()) == ["email"], response.json()
    assert not EmailOptOut.objects.exists()


@pytest.mark.parametrize("value", [0, 1, "true", "off", None])
def test_a_preference_is_true_or_false_only(participant, value):
    response = api_as(participant).patch("/api/v1/notifications/preferences/", {"email": {"announcement": value}},
                                         format="json")
    assert response.status_code == 400 and list(response.json()) == ["email"]
