"""Sites, their tokens and the site workers' API, through Django's test client: a result is
stored once (a replay changes nothing), a forged lease and another site's token are refused,
bad bodies are named; pages and endpoints across the standing users; the transferability
arithmetic and the leaderboard's per-site column."""

import json

import pytest

from mica.challenges.models import Phase
from mica.sites.models import Site, SiteAuditEntry, SiteJob, SiteToken
from mica.sites.transfer import BOOTSTRAP, NORMAL, difference, transferability

from .conftest import PASSWORD
from .sites import hospital, other_hospital, site_admin, site_phase, two_algorithms  # noqa: F401

pytestmark = pytest.mark.django_db

USERS = ["anonymous", "outsider", "rival", "participant", "annotator", "organizer", "co_organizer", "staff",
         "site_admin"]
ORGANIZERS = {"organizer", "co_organizer", "staff"}


def bearer(raw):
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def post(client, url, body, raw):
    return client.post(url, json.dumps(body), content_type="application/json", **bearer(raw))


def good_result(lease, **extra):
    return {"lease": lease, "status": "succeeded", "n_cases": 30, "missing_cases": 0,
            "metrics": {"auc": 0.71, "log_loss": 0.6}, "intervals": {"auc": [0.6, 0.82]}, **extra}


@pytest.fixture
def claimed(client, hospital, two_algorithms, site_admin, organizer):
    hospital.queue_evaluations(organizer)
    _, raw = hospital.issue_token(site_admin)
    response = client.post("/sites/api/claim", **bearer(raw))
    assert response.status_code == 200
    return response.json(), raw


def test_a_token_is_hashed_shown_once_and_revocable(client, hospital, site_admin):
    token, raw = hospital.issue_token(site_admin)
    assert raw.startswith("mica-site-") and raw not in token.key_hash and token.prefix == raw[:16]
    assert SiteToken.authenticate(raw) == token
    # A site token opens neither the user API nor a page.
    for header in ({"HTTP_AUTHORIZATION": f"Token {raw}"}, bearer(raw)):
        assert client.get("/api/v1/inference-runs/", **header).status_code == 401
    assert client.get(f"/sites/{hospital.pk}/", **bearer(raw)).status_code == 302
    token.revoke()
    assert SiteToken.authenticate(raw) is None
    assert client.post("/sites/api/claim", **bearer(raw)).status_code == 401
    for header in ({}, bearer("mica-site-guess"), {"HTTP_AUTHORIZATION": f"Token {raw}"}):
        response = client.post("/sites/api/claim", **header)
        assert response.status_code == 401 and "site token" in response.json()["detail"]


def test_the_claim_tells_the_worker_only_what_it_needs(claimed, hospital):
    job, _ = claimed
    assert job["kind"] == "evaluate" and job["task"] == "classification" and job["metrics"] == ["auc", "log_loss"]
    assert job["share_per_case"] is False and len(job["image"]["sha256"]) == 64
    assert job["image"]["digest"].startswith("sha256:") and job["lease"]
    stored = SiteJob.objects.get(uuid=job["job"])
    assert stored.status == "running" and stored.claimed_by == job["lease"] and stored.attempts == 1
    assert "Team" not in json.dumps(job)  # the site scores an image, not a team


def test_the_image_is_served_under_the_live_lease_only(client, claimed, other_hospital, site_admin):
    job, raw = claimed
    url = job["image"]["url"]
    assert client.get(url, **bearer(raw)).status_code == 409
    assert client.get(url, HTTP_X_MICA_LEASE="forged", **bearer(raw)).status_code == 409
    response = client.get(url, HTTP_X_MICA_LEASE=job["lease"], **bearer(raw))
    assert response.status_code == 200 and response["X-Mica-Digest"] == job["image"]["digest"]
    _, other = other_hospital.issue_token(site_admin)
    refused = client.get(url, HTTP_X_MICA_LEASE=job["lease"], **bearer(other))
    assert refused.status_code == 403 and "another site" in refused.json()["detail"]
    assert client.get(url, HTTP_X_MICA_LEASE=job["lease"]).status_code == 401


def test_a_result_is_stored_once_and_forgeries_are_refused(client, claimed, other_hospital, site_admin):
    job, raw = claimed
    url = f"/sites/api/jobs/{job['job']}/result"
    forged = post(client, url, good_result("someone-else"), raw)
    assert forged.status_code == 409 and "not the job's live lease" in forged.json()["detail"]
    _, other = other_hospital.issue_token(site_admin)
    assert post(client, url, good_result(job["lease"]), other).status_code == 403
    stored = post(client, url, good_result(job["lease"]), raw)
    assert stored.status_code == 201
    replay = post(client, url, good_result(job["lease"]), raw)
    assert replay.status_code == 200 and "replay" in replay.json()["detail"]
    row = SiteJob.objects.get(uuid=job["job"])
    assert row.status == "succeeded" and row.result["metrics"]["auc"] == 0.71 and row.result_lease == job["lease"]
    assert SiteAuditEntry.objects.filter(job=row).count() == 1
    assert SiteAuditEntry.objects.get().body == good_result(job["lease"])
    # Heartbeats after the end, and a forged one, are refused.
    assert post(client, f"/sites/api/jobs/{job['job']}/heartbeat", {"lease": job["lease"]}, raw).status_code == 409


@pytest.mark.parametrize("body, message", [
    ({"status": "done"}, "'status' must be"),
    ({"metrics": {"auc": 0.7}}, "exactly the site's metrics"),
    ({"metrics": {"auc": "high", "log_loss": 0.6}}, "numbers or null"),
    ({"intervals": {"auc": [0.1]}}, "[low, high]"),
    ({"n_cases": 0}, "'n_cases'"),
    ({"per_case": {"log_loss": [0.1] * 30}}, "keeps per-case values at the site"),
    ({"case_ids": ["a"]}, "Unknown keys: case_ids"),
])
def test_bad_results_are_named_and_nothing_is_stored(client, claimed, body, message):
    job, raw = claimed
    response = post(client, f"/sites/api/jobs/{job['job']}/result", {**good_result(job["lease"]), **body}, raw)
    assert response.status_code == 400 and message in response.json()["detail"]
    assert SiteJob.objects.get(uuid=job["job"]).status == "running" and not SiteAuditEntry.objects.exists()
    not_json = client.post(f"/sites/api/jobs/{job['job']}/result", b"{", content_type="application/json",
                           **bearer(raw))
    assert not_json.status_code == 400 and "not JSON" in not_json.json()["detail"]


def test_heartbeats_renew_and_an_expired_lease_is_taken_over(client, claimed, settings):
    job, raw = claimed
    before = SiteJob.objects.get(uuid=job["job"]).lease_expires_at
    beat = post(client, f"/sites/api/jobs/{job['job']}/heartbeat", {"lease": job["lease"]}, raw)
    assert beat.status_code == 200 and SiteJob.objects.get(uuid=job["job"]).lease_expires_at > before
    assert post(client, f"/sites/api/jobs/{job['job']}/heartbeat", {"lease": "forged"}, raw).status_code == 409
    from datetime import timedelta

    from django.utils import timezone
    SiteJob.objects.filter(uuid=job["job"]).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    SiteJob.sweep()  # an expired lease with attempts left: the job waits for the next claim, no message sent
    assert SiteJob.objects.get(uuid=job["job"]).status == "running"
    second = client.post("/sites/api/claim", **bearer(raw)).json()
    assert second["job"] == job["job"] and second["lease"] != job["lease"]
    late = post(client, f"/sites/api/jobs/{job['job']}/result", good_result(job["lease"]), raw)
    assert late.status_code == 409 and "another worker took the job over" in late.json()["detail"]
    assert not SiteAuditEntry.objects.exists()
    stored = post(client, f"/sites/api/jobs/{job['job']}/result", good_result(second["lease"]), raw)
    assert stored.status_code == 201
    ended = post(client, f"/sites/api/jobs/{job['job']}/result", good_result(job["lease"]), raw)
    assert ended.status_code == 409 and "the job ended (Finished)" in ended.json()["detail"]


def test_a_result_after_the_lease_ran_out_is_stored_while_no_other_worker_took_the_job(client, claimed):
    """A hospital's slow link: the lease ran out (and the sweep saw it) but no claim took the
    job, so the late result is the job's result, not a wasted run."""
    from datetime import timedelta

    from django.utils import timezone
    job, raw = claimed
    SiteJob.objects.filter(uuid=job["job"]).update(lease_expires_at=timezone.now() - timedelta(minutes=10))
    SiteJob.sweep()
    late = post(client, f"/sites/api/jobs/{job['job']}/result", good_result(job["lease"]), raw)
    assert late.status_code == 201, late.json()
    row = SiteJob.objects.get(uuid=job["job"])
    assert row.status == "succeeded" and row.result_lease == job["lease"] and row.attempts == 1
    assert SiteAuditEntry.objects.filter(job=row).count() == 1


def test_each_token_is_rate_limited_with_retry_after(client, hospital, other_hospital, site_admin, settings):
    import time

    settings.MICA_SITE_API_REQUESTS, settings.MICA_SITE_API_WINDOW_SECONDS = 3, 2
    _, raw = hospital.issue_token(site_admin)
    _, other = other_hospital.issue_token(site_admin)
    # Start at a window's beginning, so the three requests share one.
    time.sleep(2 - time.time() % 2)
    assert [client.post("/sites/api/claim", **bearer(raw)).status_code for _ in range(3)] == [204] * 3
    refused = client.post("/sites/api/claim", **bearer(raw))
    assert refused.status_code == 429 and 1 <= int(refused["Retry-After"]) <= 2
    assert "Too many requests with this site token" in refused.json()["detail"]
    assert raw not in refused.json()["detail"]
    # Every endpoint counts, and another token has its own count.
    assert post(client, "/sites/api/jobs/00000000-0000-0000-0000-000000000000/heartbeat", {}, raw).status_code == 429
    assert client.post("/sites/api/claim", **bearer(other)).status_code == 204
    time.sleep(int(refused["Retry-After"]))
    assert client.post("/sites/api/claim", **bearer(raw)).status_code == 204
    assert SiteToken.objects.get(prefix=raw[:16]).last_used_at is not None


def test_the_sweep_fails_a_job_that_used_its_attempts(claimed, settings):
    from datetime import timedelta

    from django.utils import timezone
    job, _ = claimed
    SiteJob.objects.filter(uuid=job["job"]).update(attempts=settings.MICA_MAX_ATTEMPTS,
                                                   lease_expires_at=timezone.now() - timedelta(seconds=1))
    SiteJob.sweep()
    row = SiteJob.objects.get(uuid=job["job"])
    assert row.status == "failed" and "lease ran out 3 times" in row.status_reason


def test_a_job_at_a_site_has_its_own_time_limit(claimed, settings):
    """The sweep fails an evaluation at MICA_WORK_TIME_LIMIT, a site's job only at
    MICA_SITE_JOB_TIME_LIMIT: the hospital scores the whole test set on its own hardware."""
    from datetime import timedelta

    from django.utils import timezone
    settings.MICA_WORK_TIME_LIMIT = 3600
    settings.MICA_SITE_JOB_TIME_LIMIT = 6 * 3600
    job, _ = claimed
    rows = SiteJob.objects.filter(uuid=job["job"])
    rows.update(started_at=timezone.now() - timedelta(hours=2))  # its lease still live: beating
    SiteJob.sweep()
    assert rows.get().status == "running"
    rows.update(started_at=timezone.now() - timedelta(hours=7))
    SiteJob.sweep()
    assert rows.get().status == "failed" and rows.get().status_reason == "It did not finish within 360 minutes."


def test_a_comparison_needs_both_algorithms_scored(hospital, two_algorithms, organizer):
    from django.core.exceptions import ValidationError
    with pytest.raises(ValidationError, match="Not scored at St Elsewhere yet"):
        SiteJob.queue_comparison(site=hospital, algorithm=two_algorithms[0], other_algorithm=two_algorithms[1],
                                 metric="auc", user=organizer)


def scored(site, algorithm, user, auc, interval, per_case=None):
    job = SiteJob.queue(site=site, algorithm=algorithm, user=user)
    result = {"status": "succeeded", "n_cases": 10, "metrics": {"auc": auc, "log_loss": 0.5},
              "intervals": {"auc": interval}}
    if per_case:
        result["per_case"] = per_case
    SiteJob.objects.filter(pk=job.pk).update(status="succeeded", result=result)
    return job


def test_transferability_differences_and_rankings(hospital, other_hospital, two_algorithms, organizer, site_phase):
    coin, alternate = two_algorithms
    scored(hospital, coin, organizer, 0.5, [0.4, 0.6])
    scored(other_hospital, coin, organizer, 0.6, [0.5, 0.7])
    scored(hospital, alternate, organizer, 0.8, [0.7, 0.9])
    scored(other_hospital, alternate, organizer, 0.55, [0.45, 0.65])
    table = transferability(site_phase)
    rows = {row["algorithm"]: row for row in table["rows"]}
    # Sites are ordered by name: County General, St Elsewhere.
    assert [s.name for s in table["sites"]] == ["County General", "St Elsewhere"]
    assert [c["rank"] for c in rows[coin]["cells"]] == [1, 2]
    assert [c["rank"] for c in rows[alternate]["cells"]] == [2, 1]
    assert rows[alternate]["pooled"] == pytest.approx(0.675) and rows[alternate]["pooled_rank"] == 1
    d = rows[coin]["differences"][0]
    z = 1.959963984540054
    half = z * (0.1 / z) * 2 ** 0.5  # two SEs of 0.1 / z each
    assert d["value"] == pytest.approx(0.1) and d["method"] == NORMAL
    assert d["interval"] == pytest.approx([0.1 - half, 0.1 + half])


def test_an_algorithms_own_transferability_page_lists_the_sites(client, hospital, two_algorithms, organizer):
    scored(hospital, two_algorithms[1], organizer, 0.77, [0.66, 0.88])
    client.login(username=organizer.username, password=PASSWORD)
    page = client.get(f"/algorithms/{two_algorithms[1].pk}/transferability/").content.decode()
    section = page.split('id="site-transferability"')[1]
    assert "St Elsewhere" in section and "0.7700" in section and "[0.6600 – 0.8800]" in section
    unscored = client.get(f"/algorithms/{two_algorithms[0].pk}/transferability/").content.decode()
    assert 'id="site-transferability"' not in unscored


def test_per_case_values_give_a_bootstrap_difference():
    first = {"metrics": {"log_loss": 0.3}, "per_case": {"log_loss": [0.1, 0.2, 0.3, 0.4, 0.5]}}
    second = {"metrics": {"log_loss": 0.5}, "per_case": {"log_loss": [0.4, 0.5, 0.6, None, 0.5]}}
    d = difference("log_loss", first, second)
    assert d["method"] == BOOTSTRAP and d["interval"][0] < -0.2 < d["interval"][1]
    # AUC is no mean of per-case values: the intervals' normal approximation, or none without them.
    assert difference("auc", {"metrics": {"auc": 0.7}}, {"metrics": {"auc": 0.6}})["interval"] is None


def test_the_leaderboard_shows_a_column_per_site(client, hospital, two_algorithms, organizer, site_phase, truth,
                                                 participant):
    from mica.submissions.models import Submission

    from .conftest import csv_bytes, make_scores, run_evaluations, upload

    case_ids, labels = truth
    content = csv_bytes(["case_id", "score"], zip(case_ids, make_scores(labels)))
    run_evaluations(Submission.create(phase=site_phase, user=participant, uploaded_file=upload("p.csv", content)))
    scored(hospital, two_algorithms[0], organizer, 0.61, [0.52, 0.7])
    page = client.get(f"/leaderboards/phases/{site_phase.pk}/").content.decode()
    header, body = page.split("<tbody>")
    assert 'site-column' in header and "St Elsewhere" in header
    assert "0.6100" in body and "[0.5200, 0.7000]" in body


def test_a_participant_sees_site_scores_rounded_as_the_boards_own(client, hospital, two_algorithms, organizer,
                                                                   site_phase, truth, participant):
    """Site scores are rounded to the phase's significant digits for all but the organizers,
    on the page, in both exports and in the API: the unrounded value never reaches a participant."""
    import csv
    import io

    from mica.submissions.models import Submission

    from .conftest import csv_bytes, make_scores, run_evaluations, upload

    Phase.objects.filter(pk=site_phase.pk).update(score_precision=2)
    case_ids, labels = truth
    content = csv_bytes(["case_id", "score"], zip(case_ids, make_scores(labels)))
    run_evaluations(Submission.create(phase=site_phase, user=participant, uploaded_file=upload("p.csv", content)))
    scored(hospital, two_algorithms[0], organizer, 0.61234567, [0.52345678, 0.70456789])
    base = f"/leaderboards/phases/{site_phase.pk}/"

    def seen(user):
        client.logout()
        client.login(username=user.username, password=PASSWORD)
        page = client.get(base).content.decode().split("<tbody>")[1]
        table = list(csv.DictReader(io.StringIO(client.get(base + "leaderboard.csv").content.decode())))
        data = client.get(base + "leaderboard.json").json()
        api = client.get(f"/api/v1/leaderboards/{site_phase.pk}/").json()
        return page, table, data, api

    page, table, data, api = seen(participant)
    assert "0.6100" in page and "[0.5200, 0.7000]" in page and "0.6123" not in page
    assert table[0]["site:St Elsewhere"] == "0.61" and table[0]["site:St Elsewhere_high"] == "0.7"
    assert data["rows"][0]["sites"]["St Elsewhere"] == {"value": 0.61, "interval": [0.52, 0.7]}
    assert api[0]["sites"] == {"St Elsewhere": {"value": 0.61, "interval": [0.52, 0.7]}}
    for text in (page, json.dumps(table), json.dumps(data), json.dumps(api)):
        assert not any(digits in text for digits in ("6123", "5234", "7045"))
    # The organizers see what the site sent.
    page, table, data, api = seen(organizer)
    assert "0.6123" in page and table[0]["site:St Elsewhere"] == "0.61234567"
    assert data["rows"][0]["sites"]["St Elsewhere"] == {"value": 0.61234567, "interval": [0.52345678, 0.70456789]}
    assert api[0]["sites"]["St Elsewhere"] == {"value": 0.61234567, "interval": [0.52345678, 0.70456789]}


@pytest.fixture
def people(outsider, rival, participant, annotator, organizer, co_organizer, staff, team, site_admin):
    return {"anonymous": None, "outsider": outsider, "rival": rival, "participant": participant,
            "annotator": annotator, "organizer": organizer, "co_organizer": co_organizer, "staff": staff,
            "site_admin": site_admin}


def expect(allowed, *, denied=403, anonymous=302):
    return {user: 200 if user in allowed else (anonymous if user == "anonymous" else denied) for user in USERS}


@pytest.mark.parametrize("who", USERS)
def test_pages(client, people, hospital, two_algorithms, who):
    user = people[who]
    if user:
        client.login(username=user.username, password=PASSWORD)
    token, _ = hospital.issue_token(people["organizer"])
    phase = hospital.phase
    admins = ORGANIZERS | {"site_admin"}
    pages = {
        f"/sites/phases/{phase.pk}/": expect(ORGANIZERS),
        f"/sites/phases/{phase.pk}/transferability/": expect(ORGANIZERS),
        f"/sites/{hospital.pk}/": expect(admins),
        f"/sites/{hospital.pk}/audit/": expect(admins),
    }
    for url, expected in pages.items():
        status = client.get(url).status_code
        assert status == expected[who], f"{who} GET {url}: {status}, expected {expected[who]}"
    posts = {
        f"/sites/{hospital.pk}/queue/": expect(ORGANIZERS),
        f"/sites/{hospital.pk}/compare/": expect(ORGANIZERS),
        f"/sites/{hospital.pk}/tokens/": expect(admins),
        f"/sites/tokens/{token.pk}/revoke/": expect(admins),
    }
    for url, expected in posts.items():
        status = client.post(url).status_code
        wanted = 302 if expected[who] == 200 else expected[who]
        assert status == wanted, f"{who} POST {url}: {status}, expected {wanted}"
    # The workers' API takes a site token only: no user's session opens it.
    assert client.post("/sites/api/claim").status_code == 401
    token.refresh_from_db()
    assert (token.revoked_at is not None) == (who in admins)
    assert hospital.jobs.count() == (2 if who in ORGANIZERS else 0)


def test_the_new_token_is_shown_once(client, hospital, site_admin):
    client.login(username=site_admin.username, password=PASSWORD)
    client.post(f"/sites/{hospital.pk}/tokens/")
    first = client.get(f"/sites/{hospital.pk}/").content.decode()
    assert 'id="new-token"' in first and "mica-site-" in first
    assert 'id="new-token"' not in client.get(f"/sites/{hospital.pk}/").content.decode()


def test_an_organizer_adds_a_site(client, organizer, site_phase, site_admin):
    client.login(username=organizer.username, password=PASSWORD)
    url = f"/sites/phases/{site_phase.pk}/"
    bad = client.post(url, {"name": "Mercy", "admin": "nobody", "metrics": "auc, dice"})
    assert "No active user has this username" in bad.content.decode()
    assert "Not metrics of the classification task: dice" in bad.content.decode()
    response = client.post(url, {"name": "Mercy", "admin": site_admin.username, "metrics": "auc"})
    site = Site.objects.get(name="Mercy")
    assert response.status_code == 302 and site.metrics == ["auc"] and not site.share_per_case
    assert site.admin == site_admin and site.phase == site_phase
    again = client.post(url, {"name": "Mercy", "admin": site_admin.username, "metrics": "auc"})
    assert "has a site of this name already" in again.content.decode()


def test_a_site_of_another_phase_keeps_its_own_jobs(client, hospital, two_algorithms, site_admin, organizer, phase):
    other_phase = Phase.objects.create(challenge=phase.challenge, name="Second", test_set=phase.test_set,
                                       starts_at=phase.starts_at, ends_at=phase.ends_at, primary_metric="auc")
    elsewhere = Site.objects.create(phase=other_phase, name="Far away", metrics=["auc"], admin=site_admin,
                                    created_by=organizer)
    hospital.queue_evaluations(organizer)
    _, raw = elsewhere.issue_token(site_admin)
    assert client.post("/sites/api/claim", **bearer(raw)).status_code == 204
