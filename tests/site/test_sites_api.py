"""The organizers' REST API for sites (/api/v1/phases/<id>/sites/, /api/v1/sites/…): each
endpoint's outcome, bad inputs named, a token's value in the answer that issued it and nowhere
after, and every endpoint across the standing users (and the site's admin).

Bad inputs tried: an unknown admin, another task's metric, no metric, a name the phase has
already, a wrong type."""

import json

import pytest
from rest_framework.test import APIClient

from mica.sites.models import Site, SiteAuditEntry, SiteJob, SiteToken

from .sites import hospital, other_hospital, site_admin, site_phase, two_algorithms  # noqa: F401

pytestmark = pytest.mark.django_db

USERS = ["anonymous", "outsider", "rival", "participant", "annotator", "organizer", "co_organizer", "staff",
         "site_admin"]
ORGANIZERS = {"organizer", "co_organizer", "staff"}
ADMINS = ORGANIZERS | {"site_admin"}


def client_of(request, who):
    client = APIClient()
    if who != "anonymous":
        client.force_authenticate(request.getfixturevalue(who))
    return client


@pytest.fixture
def api(organizer):
    client = APIClient()
    client.force_authenticate(organizer)
    return client


@pytest.fixture
def standing(team, rival, co_organizer, annotator, outsider, staff):
    """Every standing user exists: the participant in a team, a rival team, a co-organizer."""
    return team


def test_an_organizer_lists_adds_and_edits_sites(api, site_phase, site_admin, hospital):
    url = f"/api/v1/phases/{site_phase.pk}/sites/"
    listed = api.get(url)
    assert listed.status_code == 200 and [s["name"] for s in listed.json()] == ["St Elsewhere"]
    assert listed.json()[0]["admin"] == site_admin.username and listed.json()[0]["metrics"] == ["auc", "log_loss"]
    added = api.post(url, {"name": "Mercy", "admin": site_admin.username, "metrics": ["log_loss", "auc"],
                           "share_per_case": True}, format="json")
    assert added.status_code == 201, added.json()
    site = Site.objects.get(name="Mercy")
    assert added.json()["id"] == site.pk and site.metrics == ["log_loss", "auc"] and site.share_per_case
    assert site.phase == site_phase and site.created_by.username == "olivia" and site.admin == site_admin
    edited = api.patch(f"/api/v1/sites/{site.pk}/", {"metrics": ["auc"], "share_per_case": False}, format="json")
    assert edited.status_code == 200, edited.json()
    site.refresh_from_db()
    assert site.metrics == ["auc"] and not site.share_per_case and site.name == "Mercy"
    # Keeping its own name is no clash; taking another site's is.
    assert api.patch(f"/api/v1/sites/{site.pk}/", {"name": "Mercy"}, format="json").status_code == 200
    clash = api.patch(f"/api/v1/sites/{site.pk}/", {"name": "St Elsewhere"}, format="json")
    assert clash.status_code == 400 and "has a site of this name already" in clash.json()["name"][0]


@pytest.mark.parametrize("body, field, message", [
    ({"admin": "nobody"}, "admin", "No active user has this username"),
    ({"metrics": ["auc", "dice"]}, "metrics", "Not metrics of the classification task: dice"),
    ({"metrics": []}, "metrics", "This list may not be empty"),
    ({"name": "St Elsewhere"}, "name", "has a site of this name already"),
    ({"share_per_case": "perhaps"}, "share_per_case", "Must be a valid boolean"),
])
def test_bad_sites_are_named_and_nothing_is_stored(api, site_phase, site_admin, hospital, body, field, message):
    good = {"name": "Mercy", "admin": site_admin.username, "metrics": ["auc"]}
    response = api.post(f"/api/v1/phases/{site_phase.pk}/sites/", {**good, **body}, format="json")
    assert response.status_code == 400 and message in " ".join(response.json()[field])
    assert Site.objects.count() == 1


def test_a_token_is_shown_once_and_never_again(api, hospital, site_admin):
    issued = api.post(f"/api/v1/sites/{hospital.pk}/tokens/")
    assert issued.status_code == 201
    raw = issued.json()["token"]
    token = SiteToken.objects.get()
    assert raw.startswith("mica-site-") and SiteToken.authenticate(raw) == token
    assert issued.json()["prefix"] == raw[:16] and issued.json()["id"] == token.pk
    # Nothing after the answer that issued it carries the value, nor its hash.
    later = [api.get(f"/api/v1/sites/{hospital.pk}/tokens/"), api.get(f"/api/v1/sites/{hospital.pk}/"),
             api.get(f"/api/v1/phases/{hospital.phase_id}/sites/"), api.get(f"/api/v1/sites/{hospital.pk}/jobs/"),
             api.get(f"/api/v1/sites/{hospital.pk}/audit/"), api.post(f"/api/v1/site-tokens/{token.pk}/revoke/")]
    for answer in later:
        assert answer.status_code == 200
        text = answer.content.decode()
        assert raw not in text and raw[16:] not in text and token.key_hash not in text and '"token"' not in text
    assert set(later[0].json()[0]) == {"id", "prefix", "created_by", "created_at", "last_used_at", "revoked_at"}
    token.refresh_from_db()
    assert token.revoked_at is not None and SiteToken.authenticate(raw) is None
    assert later[-1].json()["revoked_at"] is not None


def test_jobs_and_the_audit_log(api, client, hospital, two_algorithms, site_admin, organizer):
    hospital.queue_evaluations(organizer)
    _, raw = hospital.issue_token(site_admin)
    claimed = client.post("/sites/api/claim", HTTP_AUTHORIZATION=f"Bearer {raw}").json()
    body = {"lease": claimed["lease"], "status": "succeeded", "n_cases": 30, "missing_cases": 0,
            "metrics": {"auc": 0.71, "log_loss": 0.6}, "intervals": {"auc": [0.6, 0.82]}}
    assert client.post(f"/sites/api/jobs/{claimed['job']}/result", json.dumps(body), content_type="application/json",
                       HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 201
    jobs = api.get(f"/api/v1/sites/{hospital.pk}/jobs/").json()
    assert jobs["count"] == 2
    by_uuid = {job["uuid"]: job for job in jobs["results"]}
    done = by_uuid[claimed["job"]]
    assert done["status"] == "succeeded" and done["result"]["metrics"]["auc"] == 0.71 and done["attempts"] == 1
    assert {job["status"] for job in jobs["results"]} == {"succeeded", "queued"}
    assert done["team"] == SiteJob.objects.get(uuid=claimed["job"]).algorithm.team.name
    audit = api.get(f"/api/v1/sites/{hospital.pk}/audit/").json()
    assert audit["count"] == 1
    entry = audit["results"][0]
    assert entry["job"] == claimed["job"] and entry["body"] == body and entry["token_prefix"] == raw[:16]
    assert entry["summary"].startswith("succeeded")
    assert SiteAuditEntry.objects.get().body == entry["body"] and SiteJob.objects.count() == 2


def expected(allowed, *, ok=200, denied=403):
    return {who: ok if who in allowed else (401 if who == "anonymous" else denied) for who in USERS}


def test_every_endpoint_across_the_standing_users(request, standing, hospital, site_admin, organizer):
    phase = hospital.phase
    calls = {
        "list": (lambda c: c.get(f"/api/v1/phases/{phase.pk}/sites/"), expected(ORGANIZERS)),
        "add": (lambda c: c.post(f"/api/v1/phases/{phase.pk}/sites/", {
            "name": f"Site {len(Site.objects.all())}", "admin": site_admin.username, "metrics": ["auc"]},
            format="json"), expected(ORGANIZERS, ok=201)),
        "show": (lambda c: c.get(f"/api/v1/sites/{hospital.pk}/"), expected(ADMINS)),
        "edit": (lambda c: c.patch(f"/api/v1/sites/{hospital.pk}/", {"share_per_case": False}, format="json"),
                 expected(ORGANIZERS)),
        "tokens": (lambda c: c.get(f"/api/v1/sites/{hospital.pk}/tokens/"), expected(ADMINS)),
        "issue": (lambda c: c.post(f"/api/v1/sites/{hospital.pk}/tokens/"), expected(ADMINS, ok=201)),
        "revoke": (lambda c: c.post(f"/api/v1/site-tokens/{hospital.issue_token(organizer)[0].pk}/revoke/"),
                   expected(ADMINS)),
        "jobs": (lambda c: c.get(f"/api/v1/sites/{hospital.pk}/jobs/"), expected(ADMINS)),
        "audit": (lambda c: c.get(f"/api/v1/sites/{hospital.pk}/audit/"), expected(ADMINS)),
    }
    for name, (call, wanted) in calls.items():
        got = {who: call(client_of(request, who)).status_code for who in USERS}
        assert got == wanted, name
    # What each refused call left: no site added, no token issued by them, none revoked by them.
    assert Site.objects.filter(phase=phase).count() == 1 + len(ORGANIZERS)
    assert SiteToken.objects.count() == len(ADMINS) + len(USERS)  # issued by the admins; one to revoke per user
    assert SiteToken.objects.exclude(revoked_at=None).count() == len(ADMINS)


def test_a_site_of_a_hidden_challenge_is_not_found_for_outsiders(request, standing, hospital):
    from mica.challenges.models import Challenge

    Challenge.objects.filter(pk=hospital.phase.challenge_id).update(state=Challenge.State.DRAFT)
    assert client_of(request, "outsider").get(f"/api/v1/sites/{hospital.pk}/").status_code == 404
    assert client_of(request, "site_admin").get(f"/api/v1/sites/{hospital.pk}/").status_code == 200
    assert client_of(request, "organizer").get("/api/v1/sites/999999/").status_code == 404
    assert client_of(request, "organizer").get("/api/v1/phases/999999/sites/").status_code == 404
