"""The organizers' tools in the REST API: challenges, phases, teams, test sets, evaluations and
the dashboard. Each endpoint calls the access function and model method its page calls; each is
checked for its outcome and across the standing users.

Bad inputs tried: a registration without accepting the terms; a challenge restricted to e-mail
domains without domains; a phase ending before it starts, with another task's metric, with an
unknown option; revealing a running phase; deleting a challenge, phase or test set something
depends on; a corrected truth with a case the test set does not have; a merge with an unknown
code; a disqualification without a reason; cancelling an evaluation that has ended.
"""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone
from rest_framework.test import APIClient

from mica.challenges.models import Challenge, Phase, Team, TestSet
from mica.evaluations.models import Evaluation, Rescore
from mica.submissions.models import Submission

from .conftest import csv_bytes, make_user, run_evaluations, upload

pytestmark = pytest.mark.django_db

USERS = ["anonymous", "outsider", "rival", "participant", "annotator", "organizer", "co_organizer", "staff"]
ORGANIZERS = {"organizer", "co_organizer", "staff"}


def client_of(request, who):
    client = APIClient()
    if who != "anonymous":
        client.force_authenticate(request.getfixturevalue(who))
    return client


def answers(request, call):
    """The status code each standing user gets for the call."""
    return {who: call(client_of(request, who)).status_code for who in USERS}


def expected(organizers, others=403, anonymous=401, **exceptions):
    return {who: (anonymous if who == "anonymous" else organizers if who in ORGANIZERS else others)
            for who in USERS} | exceptions


@pytest.fixture
def api(organizer):
    client = APIClient()
    client.force_authenticate(organizer)
    return client


@pytest.fixture
def standing(team, rival, co_organizer):
    """Every standing user exists: the participant in a team, a rival team, a co-organizer."""
    return team


# -- challenges -------------------------------------------------------------------------------
def test_organizers_edit_a_challenge_through_the_pages_form(api, challenge):
    response = api.patch("/api/v1/challenges/pneumonia/", {"title": "Pneumonia, v2", "team_size_limit": 3},
                         format="json")
    assert response.status_code == 200, response.content
    challenge.refresh_from_db()
    assert (challenge.title, challenge.team_size_limit, challenge.description) == (
        "Pneumonia, v2", 3, "Find **pneumonia** on chest X-rays.")
    # The form's rule: a domains registration needs its domains.
    response = api.patch("/api/v1/challenges/pneumonia/", {"registration": "domains"}, format="json")
    assert response.status_code == 400
    assert "allowed_email_domains" in response.json()
    # The form's rule: the task type is fixed once a test set exists.
    api.patch("/api/v1/challenges/pneumonia/", {"task_type": "regression"}, format="json")
    challenge.refresh_from_db()
    assert (challenge.task_type, challenge.registration) == ("classification", "open")


def test_editing_a_challenge_is_for_its_organizers(request, standing):
    codes = answers(request, lambda c: c.patch("/api/v1/challenges/pneumonia/", {"title": "T"}, format="json"))
    assert codes == expected(200)


def test_publishing_and_back_to_draft(api, challenge, outsider):
    assert api.post("/api/v1/challenges/pneumonia/publish/", {"state": "draft"}, format="json").json()["state"] == "draft"
    seen_by_outsider = APIClient()
    seen_by_outsider.force_authenticate(outsider)
    assert seen_by_outsider.get("/api/v1/challenges/pneumonia/").status_code == 404
    assert api.post("/api/v1/challenges/pneumonia/publish/", {"state": "published"}, format="json").status_code == 200
    assert seen_by_outsider.get("/api/v1/challenges/pneumonia/").status_code == 200
    assert api.post("/api/v1/challenges/pneumonia/publish/", {"state": "gone"}, format="json").status_code == 400


def test_publishing_is_for_its_organizers(request, standing):
    codes = answers(request, lambda c: c.post("/api/v1/challenges/pneumonia/publish/", {"state": "published"},
                                              format="json"))
    assert codes == expected(200)


def test_a_challenge_with_teams_is_not_deleted(api, standing):
    response = api.delete("/api/v1/challenges/pneumonia/")
    assert response.status_code == 400
    assert "2 teams" in response.json()["detail"][0]
    assert Challenge.objects.filter(slug="pneumonia").exists()


def test_deleting_is_for_the_creator_and_staff(request, standing):
    # Teams depend on the challenge: the creator and staff are told so (400), the rest refused.
    codes = answers(request, lambda c: c.delete("/api/v1/challenges/pneumonia/"))
    assert codes == expected(400, co_organizer=403)
    Team.objects.all().delete()
    assert client_of(request, "organizer").delete("/api/v1/challenges/pneumonia/").status_code == 204
    assert not Challenge.objects.exists()


def test_creating_a_challenge_needs_the_staffs_approval(request, standing, outsider):
    body = {"title": "Fractures", "slug": "fractures", "task_type": "detection", "registration": "open"}
    codes = answers(request, lambda c: c.post("/api/v1/challenges/", body, format="json"))
    assert codes == expected(403)  # staff too: the permission is granted, not implied by is_staff
    outsider.user_permissions.add(Permission.objects.get(codename="add_challenge"))
    outsider = type(outsider).objects.get(pk=outsider.pk)  # permissions are cached on the object
    client = APIClient()
    client.force_authenticate(outsider)
    response = client.post("/api/v1/challenges/", body, format="json")
    assert response.status_code == 201, response.content
    created = Challenge.objects.get(slug="fractures")
    assert created.state == Challenge.State.DRAFT and created.is_organizer(outsider)
    assert created.created_by == outsider


def test_registering_accepts_the_terms(challenge, outsider):
    client = APIClient()
    client.force_authenticate(outsider)
    refused = client.post("/api/v1/challenges/pneumonia/register/", {"accept_terms": False}, format="json")
    assert refused.status_code == 400 and "accept_terms" in refused.json()
    assert not challenge.is_participant(outsider)
    response = client.post("/api/v1/challenges/pneumonia/register/", {"accept_terms": True}, format="json")
    assert response.status_code == 200
    assert response.json()["approved"] and response.json()["accepted_terms_at"]
    assert challenge.is_participant(outsider)


def test_registration_waits_for_approval_where_asked(challenge, outsider):
    challenge.registration = Challenge.Registration.APPROVAL
    challenge.save()
    client = APIClient()
    client.force_authenticate(outsider)
    body = client.post("/api/v1/challenges/pneumonia/register/", {"accept_terms": True}, format="json").json()
    assert body["approved"] is False and not challenge.is_participant(outsider)


def test_registering_across_users(request, standing):
    codes = answers(request, lambda c: c.post("/api/v1/challenges/pneumonia/register/", {"accept_terms": True},
                                              format="json"))
    # Organizers cannot take part in their own challenge: the model's message, 400.
    assert codes == expected(400, others=200)
    message = client_of(request, "organizer").post("/api/v1/challenges/pneumonia/register/",
                                                   {"accept_terms": True}, format="json").json()
    assert message == {"detail": ["Organizers cannot take part in their own challenge."]}


def test_the_dashboard_counts_participants_teams_and_the_queue(request, phase, standing, participant, predictions):
    Submission.create(phase=phase, user=participant, uploaded_file=upload("p.csv", predictions))
    body = client_of(request, "organizer").get("/api/v1/challenges/pneumonia/dashboard/").json()
    assert sorted(p["user"] for p in body["participants"]) == ["paul", "rita", "tara"]
    assert all(p["approved"] and p["accepted_terms_at"] for p in body["participants"])
    teams = {t["name"]: (t["n_members"], t["n_submissions"]) for t in body["teams"]}
    assert teams == {"Team Paul": (2, 1), "Rivals": (1, 0)}
    assert body["unfinished_evaluations"] == Evaluation.objects.filter(status="queued").count() == 2
    codes = answers(request, lambda c: c.get("/api/v1/challenges/pneumonia/dashboard/"))
    assert codes == expected(200)


# -- phases -----------------------------------------------------------------------------------
def phase_body(challenge, **changes):
    now = timezone.now()
    return {"challenge": challenge.slug, "name": "Sanity", "test_set": challenge.test_sets.get().pk,
            "starts_at": now.isoformat(), "ends_at": (now + timedelta(days=2)).isoformat(),
            "primary_metric": "auc", "secondary_metrics": ["log_loss"]} | changes


def test_organizers_create_and_edit_phases_checked_by_the_model(api, challenge):
    response = api.post("/api/v1/phases/", phase_body(challenge), format="json")
    assert response.status_code == 201, response.content
    phase = Phase.objects.get(pk=response.json()["id"])
    assert (phase.name, phase.challenge, phase.metrics) == ("Sanity", challenge, ["auc", "log_loss"])
    bad = [({"ends_at": (timezone.now() - timedelta(days=1)).isoformat()}, "ends_at"),
           ({"primary_metric": "dice"}, "primary_metric"),
           ({"metric_options": {"no_such_option": 1}}, "metric_options")]
    for change, field in bad:
        response = api.patch(f"/api/v1/phases/{phase.pk}/", change, format="json")
        assert response.status_code == 400 and field in response.json(), (change, response.content)
    phase.refresh_from_db()
    assert phase.primary_metric == "auc" and phase.metric_options == {}
    response = api.patch(f"/api/v1/phases/{phase.pk}/", {"name": "Warm-up", "daily_limit": 9}, format="json")
    assert response.status_code == 200
    phase.refresh_from_db()
    assert (phase.name, phase.daily_limit) == ("Warm-up", 9)


def test_a_new_primary_metric_rereads_the_scores(api, phase, team, participant, predictions):
    submission = Submission.create(phase=phase, user=participant, uploaded_file=upload("p.csv", predictions))
    public = run_evaluations(submission)["public"]
    response = api.patch(f"/api/v1/phases/{phase.pk}/", {"primary_metric": "log_loss"}, format="json")
    assert response.status_code == 200
    public.refresh_from_db()
    assert public.primary_score == public.metrics["log_loss"]


def test_phases_are_changed_by_their_organizers(request, standing, phase, challenge):
    assert answers(request, lambda c: c.post("/api/v1/phases/", phase_body(challenge), format="json")) == expected(201)
    assert answers(request, lambda c: c.patch(f"/api/v1/phases/{phase.pk}/", {"daily_limit": 3},
                                              format="json")) == expected(200)

    def delete_a_new_phase(client):
        new = Phase.objects.create(challenge=challenge, name="Spare", test_set=phase.test_set,
                                   starts_at=phase.starts_at, ends_at=phase.ends_at, primary_metric="auc")
        return client.delete(f"/api/v1/phases/{new.pk}/")

    assert answers(request, delete_a_new_phase) == expected(204)
    # Running: the private board cannot be revealed yet (the model's 400), to anyone.
    assert answers(request, lambda c: c.post(f"/api/v1/phases/{phase.pk}/reveal/")) == expected(400)


def test_a_phase_with_submissions_is_not_deleted_and_reveals_after_its_end(api, phase, team, participant,
                                                                            predictions):
    Submission.create(phase=phase, user=participant, uploaded_file=upload("p.csv", predictions))
    response = api.delete(f"/api/v1/phases/{phase.pk}/")
    assert response.status_code == 400 and "1 submission" in response.json()["detail"][0]
    running = api.post(f"/api/v1/phases/{phase.pk}/reveal/")
    assert running.status_code == 400 and "after the phase has ended" in running.json()["detail"][0]
    Phase.objects.filter(pk=phase.pk).update(ends_at=timezone.now() - timedelta(minutes=1))
    revealed = api.post(f"/api/v1/phases/{phase.pk}/reveal/")
    assert revealed.status_code == 200 and revealed.json()["private_revealed_at"]
    assert APIClient().get(f"/api/v1/leaderboards/{phase.pk}/private/").status_code == 200


def test_a_phase_of_a_draft_is_hidden_from_non_organizers(request, standing, phase, challenge):
    challenge.state = Challenge.State.DRAFT
    challenge.save()
    codes = answers(request, lambda c: c.patch(f"/api/v1/phases/{phase.pk}/", {"daily_limit": 3}, format="json"))
    assert codes == expected(200, others=404)


# -- teams ------------------------------------------------------------------------------------
def test_a_team_is_seen_by_its_members_and_the_organizers(request, standing):
    team = standing
    assert answers(request, lambda c: c.get(f"/api/v1/teams/{team.pk}/")) == expected(200, participant=200)
    member_view = client_of(request, "participant").get(f"/api/v1/teams/{team.pk}/").json()
    organizer_view = client_of(request, "organizer").get(f"/api/v1/teams/{team.pk}/").json()
    assert member_view["members"] == ["paul", "tara"] and member_view["join_code"] == team.join_code
    assert organizer_view["join_code"] is None


def test_disqualification_is_for_organizers_and_its_reason_for_them_alone(request, standing):
    team = standing
    codes = answers(request, lambda c: c.post(f"/api/v1/teams/{team.pk}/disqualify/", {"reason": "Used the test set"},
                                              format="json"))
    assert codes == expected(200)
    team.refresh_from_db()
    assert team.disqualified_at and team.disqualification_reason == "Used the test set"
    member_view = client_of(request, "participant").get(f"/api/v1/teams/{team.pk}/").json()
    assert member_view["disqualified_at"] and member_view["disqualification_reason"] is None
    assert "Used the test set" not in str(member_view)
    organizer = client_of(request, "organizer")
    assert organizer.get(f"/api/v1/teams/{team.pk}/").json()["disqualification_reason"] == "Used the test set"
    assert organizer.post(f"/api/v1/teams/{team.pk}/disqualify/", {"reason": "  "}, format="json").status_code == 400
    assert answers(request, lambda c: c.post(f"/api/v1/teams/{team.pk}/reinstate/")) == expected(200)
    team.refresh_from_db()
    assert team.disqualified_at is None


def test_members_rename_and_remove(request, standing, teammate):
    team = standing
    codes = answers(request, lambda c: c.post(f"/api/v1/teams/{team.pk}/rename/", {"name": "Paul & Tara"},
                                              format="json"))
    assert codes == expected(403, participant=200)
    team.refresh_from_db()
    assert team.name == "Paul & Tara"
    member = client_of(request, "participant")
    taken = member.post(f"/api/v1/teams/{team.pk}/rename/", {"name": "rivals"}, format="json")
    assert taken.status_code == 400 and "already exists" in taken.json()["detail"][0]
    removed = member.post(f"/api/v1/teams/{team.pk}/remove/", {"user": teammate.pk}, format="json")
    assert removed.status_code == 200 and removed.json()["members"] == ["paul"]
    outsider = make_user("nobody")
    assert member.post(f"/api/v1/teams/{team.pk}/remove/", {"user": outsider.pk}, format="json").status_code == 400


def test_leaving_and_merging(request, standing, challenge, rival):
    team = standing
    rivals = Team.objects.get(name="Rivals")
    member = client_of(request, "participant")
    refused = member.post(f"/api/v1/teams/{team.pk}/merge/", {"join_code": rivals.join_code}, format="json")
    assert refused.status_code == 400 and "cannot merge" in refused.json()["detail"][0]
    assert member.post(f"/api/v1/teams/{team.pk}/merge/", {"join_code": "nope"}, format="json").status_code == 400
    challenge.team_merge_deadline = timezone.now() + timedelta(days=1)
    challenge.save()
    merged = member.post(f"/api/v1/teams/{team.pk}/merge/", {"join_code": rivals.join_code}, format="json")
    assert merged.status_code == 200 and merged.json()["id"] == rivals.pk
    assert sorted(merged.json()["members"]) == ["paul", "rita", "tara"]
    assert not Team.objects.filter(pk=team.pk).exists()
    assert member.post(f"/api/v1/teams/{rivals.pk}/leave/").status_code == 204
    assert not rivals.has_member(request.getfixturevalue("participant"))


def test_team_actions_across_users(request, standing):
    team = standing
    rivals = Team.objects.get(name="Rivals")
    # Only members merge; the rest are refused before any rule is checked.
    codes = answers(request, lambda c: c.post(f"/api/v1/teams/{team.pk}/merge/", {"join_code": rivals.join_code},
                                              format="json"))
    assert codes == expected(403, participant=400)
    codes = answers(request, lambda c: c.post(f"/api/v1/teams/{team.pk}/leave/"))
    assert codes == expected(403, participant=204)


# -- test sets --------------------------------------------------------------------------------
def truth_upload(truth, name="truth.csv", flip=(), extra=()):
    case_ids, labels = truth
    rows = [(case_id, 1 - label if case_id in flip else label) for case_id, label in zip(case_ids, labels)]
    return upload(name, csv_bytes(["case_id", "pneumonia"], rows + list(extra)))


def test_test_sets_are_listed_with_their_splits_and_versions(request, standing, truth):
    body = client_of(request, "organizer").get("/api/v1/challenges/pneumonia/test-sets/").json()
    [test_set] = body
    assert test_set["splits"] == {"public": 20, "private": 20}
    assert [(v["number"], v["rescore"]) for v in test_set["versions"]] == [(1, None)]
    assert "pneumonia" not in str(body) and "case-" not in str(body)  # no label column, no case id
    codes = answers(request, lambda c: c.get("/api/v1/challenges/pneumonia/test-sets/"))
    assert codes == expected(200)
    codes = answers(request, lambda c: c.get(f"/api/v1/test-sets/{test_set['id']}/"))
    assert codes == expected(200)


def test_organizers_upload_a_test_set(api, challenge, truth):
    response = api.post("/api/v1/challenges/pneumonia/test-sets/",
                        {"name": "Second", "truth_file": truth_upload(truth), "private_fraction": 0.25, "seed": 3},
                        format="multipart")
    assert response.status_code == 201, response.content
    created = TestSet.objects.get(pk=response.json()["id"])
    assert (created.split_seed, created.cases.filter(split="private").count()) == (3, 10)
    bad = upload("bad.csv", b"case_id,pneumonia\ncase-1,maybe\n")
    response = api.post("/api/v1/challenges/pneumonia/test-sets/",
                        {"name": "Bad", "truth_file": bad, "private_fraction": 0.5}, format="multipart")
    assert response.status_code == 400 and "bad.csv" in response.json()["truth_file"][0]
    assert not TestSet.objects.filter(name="Bad").exists()


def test_uploading_a_test_set_is_for_organizers(request, standing, truth):
    codes = answers(request, lambda c: c.post("/api/v1/challenges/pneumonia/test-sets/",
                                              {"name": "T", "truth_file": truth_upload(truth), "private_fraction": 0.5},
                                              format="multipart"))
    assert codes == expected(201)


def test_a_corrected_truth_rescores_every_submission(api, phase, team, participant, predictions, truth):
    from mica.evaluations.tasks import run_rescore

    submission = Submission.create(phase=phase, user=participant, uploaded_file=upload("p.csv", predictions))
    run_evaluations(submission)
    test_set = phase.test_set
    wrong = api.post(f"/api/v1/test-sets/{test_set.pk}/versions/",
                     {"truth_file": truth_upload(truth, extra=[("case-99999", 1)]), "note": "More"}, format="multipart")
    assert wrong.status_code == 400 and "1 new" in wrong.json()["truth_file"][0]
    assert test_set.versions.count() == 1
    response = api.post(f"/api/v1/test-sets/{test_set.pk}/versions/",
                        {"truth_file": truth_upload(truth, flip={"case-00003"}), "note": "Case 3 relabelled"},
                        format="multipart")
    assert response.status_code == 201, response.content
    assert response.json()["number"] == 2
    assert response.json()["rescore"] == {"status": "queued", "ended": 0, "total": 0}
    run_rescore(Rescore.objects.get().pk)
    run_evaluations(submission)
    progress = api.get(f"/api/v1/test-sets/{test_set.pk}/").json()["versions"][1]["rescore"]
    assert progress == {"status": "done", "ended": 2, "total": 2}


def test_versions_and_deletion_are_for_organizers(request, standing, challenge, truth):
    test_set = challenge.test_sets.get()
    codes = answers(request, lambda c: c.post(f"/api/v1/test-sets/{test_set.pk}/versions/",
                                              {"truth_file": truth_upload(truth), "note": "Same"}, format="multipart"))
    assert codes == expected(201)

    def delete_a_new_test_set(client):
        new = TestSet.create_from_upload(challenge, "Spare", truth_upload(truth), user=challenge.created_by, seed=1)
        return client.delete(f"/api/v1/test-sets/{new.pk}/")

    assert answers(request, delete_a_new_test_set) == expected(204)


def test_a_test_set_a_phase_uses_is_not_deleted(api, phase):
    response = api.delete(f"/api/v1/test-sets/{phase.test_set.pk}/")
    assert response.status_code == 400 and "phase 'Final'" in response.json()["detail"][0]
    assert TestSet.objects.filter(pk=phase.test_set.pk).exists()


# -- evaluations ------------------------------------------------------------------------------
def test_organizers_list_a_phases_evaluations(request, standing, phase, participant, predictions):
    submission = Submission.create(phase=phase, user=participant, uploaded_file=upload("p.csv", predictions))
    evaluated = run_evaluations(submission)
    body = client_of(request, "organizer").get(f"/api/v1/evaluations/?phase={phase.pk}").json()
    by_split = {row["split"]: row for row in body["results"]}
    assert set(by_split) == {"public", "private"}
    private = by_split["private"]
    assert private["status"] == "succeeded" and private["truth_version"] == 1 and private["attempts"] == 1
    assert private["primary_score"] == evaluated["private"].primary_score  # organizers: not rounded
    assert private["metrics"]["log_loss"] == evaluated["private"].metrics["log_loss"]
    assert private["submission"] == str(submission.uuid) and private["team"] == "Team Paul"
    codes = answers(request, lambda c: c.get(f"/api/v1/evaluations/?phase={phase.pk}"))
    assert codes == expected(200, others=404)
    uuid = evaluated["private"].uuid
    assert answers(request, lambda c: c.get(f"/api/v1/evaluations/{uuid}/")) == expected(200, others=404)
    assert client_of(request, "organizer").get("/api/v1/evaluations/").status_code == 400


def test_organizers_cancel_an_unfinished_evaluation(request, standing, phase, participant, predictions):
    submission = Submission.create(phase=phase, user=participant, uploaded_file=upload("p.csv", predictions))
    public, private = submission.evaluations.get(split="public"), submission.evaluations.get(split="private")
    codes = answers(request, lambda c: c.post(f"/api/v1/evaluations/{public.uuid}/cancel/"))
    # The first organizer cancels it; then it has ended, and the others are told so.
    assert codes == expected(400, others=404, organizer=202)
    public.refresh_from_db()
    assert public.status == "cancelled"
    private.refresh_from_db()
    assert private.status == "queued"
