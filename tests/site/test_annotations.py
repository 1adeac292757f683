"""Annotation projects: assignment, the reader's queue and autosaved answers, adjudication, agreement,
and who may see what (pages and API, across the standing users).

Bad inputs tried: an unknown label, a choice outside the options, a number outside its range or not
finite, a box on an image of another case, a box with no width, a mark that is not an object, too
long a text, a non-annotator as reader, assigning twice, more readers per case than readers.
"""

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from mica.annotations.curation_calls import assign_cases, majority_vote
from mica.annotations.models import Adjudication, AnnotationProject, Assignment, Label, consensus_table
from mica.challenges.models import ChallengeRole, Role, Team

from .conftest import PASSWORD, make_user
from .imaging import ingested_dataset

pytestmark = pytest.mark.django_db


def annotator_of(challenge, username):
    user = make_user(username)
    ChallengeRole.objects.create(challenge=challenge, user=user, role=Role.ANNOTATOR)
    return user


@pytest.fixture
def readers(challenge, annotator):
    return [annotator, annotator_of(challenge, "rita")]


@pytest.fixture
def adjudicator(challenge):
    return annotator_of(challenge, "adam")


@pytest.fixture
def project(challenge, organizer, readers, adjudicator, tmp_path):
    dataset = ingested_dataset(challenge, organizer, tmp_path, case_level="series")
    project = AnnotationProject.objects.create(
        dataset=dataset, title="Pneumonia reads", instructions="Mark **every** opacity.<script>x</script>",
        readers_per_case=2, created_by=organizer, seed=7)
    Label.objects.create(project=project, key="pneumonia", title="Pneumonia", kind="choice", options=["no", "yes"],
                         definition="*Yes* when an opacity is seen.")
    Label.objects.create(project=project, key="severity", title="Severity", kind="number", minimum=0, maximum=10)
    Label.objects.create(project=project, key="opacity", title="Opacity", kind="boxes")
    Label.objects.create(project=project, key="note", title="Note", kind="text")
    for reader in readers:
        project.add_reader(reader)
    project.add_reader(adjudicator, is_adjudicator=True)
    project.assign()
    return project


def api_for(user):
    api = APIClient()
    api.force_authenticate(user)
    return api


def a_box(assignment, **geometry):
    uid = assignment.case.instances.first().uid
    return {"instance": uid, "frame": 1, "x": 10, "y": 12, "width": 30, "height": 20, **geometry}


# ---- assignment -----------------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(n_cases=st.integers(1, 60), n_readers=st.integers(1, 7), per_case=st.integers(1, 7),
       reread=st.sampled_from([0, 0.1, 0.5, 1]), seed=st.integers(0, 2**31))
def test_assignment_is_balanced_and_never_gives_a_case_twice_to_a_reader(n_cases, n_readers, per_case, reread, seed):
    per_case = min(per_case, n_readers)
    deals = assign_cases(list(range(n_cases)), {f"r{i}": 1.0 for i in range(n_readers)},
                         readers_per_case=per_case, reread_share=reread, seed=seed)
    first = [deal for deal in deals if not deal.is_reread]
    assert len(first) == n_cases * per_case
    pairs = [(deal.case, deal.reader) for deal in first]
    assert len(set(pairs)) == len(pairs)  # never the same case twice to one reader (first reads)
    loads = [sum(deal.reader == f"r{i}" for deal in first) for i in range(n_readers)]
    assert max(loads) - min(loads) <= 1
    for reader in {deal.reader for deal in deals}:
        own = [deal for deal in deals if deal.reader == reader]
        assert sorted(deal.position for deal in own) == list(range(len(own)))
        rereads = [deal.case for deal in own if deal.is_reread]
        assert len(rereads) == round(reread * (len(own) - len(rereads)))
        assert set(rereads) <= {deal.case for deal in own if not deal.is_reread}


def test_weights_skew_the_share_as_asked():
    deals = assign_cases(list(range(300)), {"a": 1.0, "b": 2.0}, readers_per_case=1, reread_share=0, seed=3)
    assert sum(deal.reader == "b" for deal in deals) == 200


def test_the_same_seed_deals_the_same_cases():
    arguments = dict(readers_per_case=2, reread_share=0.2, seed=11)
    assert assign_cases(range(20), {"a": 1, "b": 1, "c": 1}, **arguments) == assign_cases(
        range(20), {"a": 1, "b": 1, "c": 1}, **arguments)


def test_majority_vote_sends_ties_to_adjudication():
    assert majority_vote(["yes", "yes", "no"]) == "yes"
    assert majority_vote(["yes", "no"]) is None
    assert majority_vote([["a", "b"], ["a", "b"]]) == ["a", "b"]


def test_the_project_assigns_every_case_to_two_readers_once(project, readers, adjudicator):
    cases = project.dataset.cases.count()
    assert Assignment.objects.filter(project=project).count() == 2 * cases
    for reader in project.readers.filter(is_adjudicator=False):
        assert reader.assignments.count() == cases  # two readers, two per case: each reads all
    assert not Assignment.objects.filter(reader__user=adjudicator).exists()
    with pytest.raises(ValidationError, match="already assigned"):
        project.assign()


def test_the_pool_must_hold_annotators_and_enough_of_them(challenge, organizer, participant, tmp_path, annotator):
    dataset = ingested_dataset(challenge, organizer, tmp_path)
    project = AnnotationProject.objects.create(dataset=dataset, title="P", readers_per_case=2, created_by=organizer)
    with pytest.raises(ValidationError, match="not an annotator"):
        project.add_reader(participant)
    project.add_reader(annotator)
    with pytest.raises(ValidationError, match="needs 2 readers but the pool has 1"):
        project.assign()
    assert not Assignment.objects.exists()


# ---- answers --------------------------------------------------------------------------------------

def test_answers_autosave_idempotently_and_a_reload_shows_the_saved_state(project, readers):
    reader = readers[0]
    assignment = Assignment.objects.filter(reader__user=reader).order_by("position").first()
    api = api_for(reader)
    body = {"answers": {"pneumonia": "yes", "severity": 3.5, "opacity": [a_box(assignment)], "note": "faint"}}
    url = f"/api/v1/annotation-assignments/{assignment.pk}/answers/"
    first = api.put(url, body, format="json")
    second = api.put(url, body, format="json")
    assert first.status_code == second.status_code == 200
    assert first.json()["answers"] == second.json()["answers"] == body["answers"]
    assert assignment.answers.count() == 4
    reloaded = api.get(f"/api/v1/annotation-assignments/{assignment.pk}/").json()
    assert reloaded["answers"] == body["answers"] and reloaded["submitted"] is False
    # A later save without a label clears it: the stored state is exactly the last PUT.
    api.put(url, {"answers": {"pneumonia": "no"}, "submit": True}, format="json")
    reloaded = api.get(f"/api/v1/annotation-assignments/{assignment.pk}/").json()
    assert reloaded["answers"] == {"pneumonia": "no"} and reloaded["submitted"] is True
    assert reloaded["images"] and reloaded["dicomweb_root"] == f"/datasets/{project.dataset_id}/dicomweb"


def test_bad_answers_are_named_and_nothing_is_stored(project, readers):
    reader = readers[0]
    assignment, other = Assignment.objects.filter(reader__user=reader).order_by("position")[:2]
    api = api_for(reader)
    url = f"/api/v1/annotation-assignments/{assignment.pk}/answers/"
    api.put(url, {"answers": {"pneumonia": "yes"}}, format="json")
    bad = {"pneumonia": "maybe", "severity": 11, "opacity": [a_box(other), a_box(assignment, width=0), "box", a_box(assignment, x=-3)],
           "note": "x" * 6000, "size": 1}
    response = api.put(url, {"answers": bad}, format="json")
    assert response.status_code == 400
    problems = response.json()["answers"]
    assert "label 'size': not a label of this project" in problems
    assert "label 'pneumonia': choose one of no, yes" in problems
    assert "label 'severity': 11 is outside [0.0, 10.0]" in problems
    assert "label 'opacity', mark 0: 'instance' must be the SOP Instance UID of an image of this case" in problems
    assert "label 'opacity', mark 1: width and height must be positive" in problems
    assert "label 'opacity', mark 2: give an object" in problems
    assert "label 'opacity', mark 3: x and y are image pixels, from 0" in problems
    assert "label 'note': give text of at most 5000 characters" in problems
    assert assignment.answers_by_key() == {"pneumonia": "yes"}  # the earlier save is intact


# ---- adjudication and agreement -------------------------------------------------------------------

def read_everything(project, readers, disagree_on):
    for reader in readers:
        api = api_for(reader)
        for assignment in Assignment.objects.filter(reader__user=reader):
            disagree = reader == readers[1] and assignment.case.case_id in disagree_on
            # The second reader's box overlaps the first's (IoU 0.71: fused), or lies elsewhere.
            box = a_box(assignment, x=40, y=40, width=20, height=20) if disagree else a_box(
                assignment, x=10 + 5 * (reader == readers[1]))
            answers = {"pneumonia": "no" if disagree else "yes", "opacity": [box]}
            response = api.put(f"/api/v1/annotation-assignments/{assignment.pk}/answers/",
                               {"answers": answers, "submit": True}, format="json")
            assert response.status_code == 200, response.content


def test_cases_without_consensus_go_to_the_adjudicator_who_decides(project, readers, adjudicator):
    case_ids = sorted(project.dataset.cases.values_list("case_id", flat=True))
    read_everything(project, readers, disagree_on={case_ids[0]})
    api = api_for(adjudicator)
    url = f"/api/v1/annotation-projects/{project.pk}/adjudication/"
    rows = {row["case_id"]: row for row in api.get(url).json()}
    assert set(rows) == {case_ids[0]}  # the others have a majority and fused boxes
    assert rows[case_ids[0]]["undecided"] == ["pneumonia", "opacity"]
    assert set(rows[case_ids[0]]["readers"]) == {reader.username for reader in readers}
    consensus = {row["case"].case_id: row for row in consensus_table(project)}
    fused = consensus[case_ids[1]]["values"]["opacity"]
    assert len(fused) == 1 and fused[0]["x"] == pytest.approx(12.5) and fused[0]["width"] == pytest.approx(30)
    chosen = rows[case_ids[0]]["readers"][readers[1].username]["opacity"]
    response = api.put(url, {"case_id": case_ids[0], "answers": {"pneumonia": "no", "opacity": chosen}}, format="json")
    assert response.status_code == 200
    assert case_ids[0] not in {row["case_id"] for row in response.json()}
    bad = api.put(url, {"case_id": case_ids[1], "answers": {"pneumonia": "perhaps"}}, format="json")
    assert Adjudication.objects.filter(project=project).count() == 2
    assert bad.status_code == 400 and "choose one of" in str(bad.json())
    assert api.put(url, {"case_id": "2.25.1", "answers": {}}, format="json").status_code == 404


def test_agreement_numbers_matrix_and_workload(project, readers, organizer):
    case_ids = sorted(project.dataset.cases.values_list("case_id", flat=True))
    read_everything(project, readers, disagree_on=set(case_ids[:2]))
    summary = api_for(organizer).get(f"/api/v1/annotation-projects/{project.pk}/agreement/").json()
    pneumonia = next(row for row in summary["per_label"] if row["label"] == "pneumonia")
    assert (pneumonia["cases"], pneumonia["unanimous"], pneumonia["share"]) == (
        len(case_ids), len(case_ids) - 2, (len(case_ids) - 2) / len(case_ids))
    assert summary["readers"] == [reader.username for reader in sorted(readers, key=lambda r: r.username)]
    assert summary["matrix"][0][0] is None and summary["matrix"][0][1] == pytest.approx((len(case_ids) - 2) / len(case_ids))
    assert [row["submitted"] for row in summary["workload"]] == [len(case_ids)] * 2
    # Cohen's kappa and Krippendorff's alpha come from the curation library (checked there against
    # statsmodels and krippendorff): two readers, yes/no, disagreeing on two cases of four.
    assert summary["cohen_kappa"]["pneumonia"][0][1] == pytest.approx(0.0)
    assert pneumonia_alpha(summary) == pytest.approx(-0.1666667, abs=1e-6)


def pneumonia_alpha(summary):
    return next(row for row in summary["per_label"] if row["label"] == "pneumonia")["krippendorff_alpha"]


# ---- who may see what -----------------------------------------------------------------------------

@pytest.fixture
def standing_users(challenge, organizer, participant, teammate, outsider, readers, adjudicator):
    challenge.register(participant)
    challenge.register(teammate)
    Team.create_for(challenge, participant, "Team Paul").add_member(teammate)
    other = make_user("olga")
    challenge.register(other)
    Team.create_for(challenge, other, "Other team")
    co_organizer = make_user("cora")
    ChallengeRole.objects.create(challenge=challenge, user=co_organizer, role=Role.ORGANIZER)
    return {"anonymous": None, "outsider": outsider, "other team": other, "team member": participant,
            "annotator": readers[0], "other reader": readers[1], "adjudicator": adjudicator,
            # an annotator of the challenge who is not in this project
            "annotator elsewhere": annotator_of(challenge, "abel"),
            "organizer": organizer, "co-organizer": co_organizer, "staff": make_user("stan", is_staff=True)}


def test_permission_matrix(client, project, readers, standing_users):
    own = Assignment.objects.filter(reader__user=readers[0]).order_by("position").first()
    pk = project.pk
    case_id = own.case.case_id
    # Who may use each page and endpoint (anonymous: 302 to log in on pages, 401/403 on the API);
    # everyone else gets 403.
    organizers = {"organizer", "co-organizer", "staff"}
    members = organizers | {"annotator", "other reader", "adjudicator"}
    pages = {
        f"/annotations/{pk}/": (members, 200),
        f"/annotations/{pk}/next/": ({"annotator", "other reader"}, 302),
        f"/annotations/read/{own.pk}/": ({"annotator"}, 200),
        f"/annotations/{pk}/adjudication/": (organizers | {"adjudicator"}, 200),
        f"/annotations/{pk}/agreement/": (organizers, 200),
        f"/annotations/datasets/{project.dataset_id}/new/": (organizers, 200),
        "/annotations/": (set(standing_users) - {"anonymous"}, 200),
    }
    api = {
        f"/api/v1/annotation-projects/{pk}/": members,
        f"/api/v1/annotation-projects/{pk}/queue/": {"annotator", "other reader"},
        f"/api/v1/annotation-projects/{pk}/next/": {"annotator", "other reader"},
        f"/api/v1/annotation-projects/{pk}/adjudication/": organizers | {"adjudicator"},
        f"/api/v1/annotation-projects/{pk}/agreement/": organizers,
        f"/api/v1/annotation-assignments/{own.pk}/": {"annotator"},
    }
    for name, user in standing_users.items():
        client.logout()
        api_client = APIClient()
        if user:
            client.login(username=user.username, password=PASSWORD)
            api_client.force_authenticate(user)
        for url, (allowed, ok) in pages.items():
            response = client.get(url)
            expected = 302 if user is None else (ok if name in allowed else 403)
            assert response.status_code == expected, (name, url, response.status_code)
            if user is None:
                assert response["Location"].startswith("/accounts/login/")
        for url, allowed in api.items():
            status = api_client.get(url).status_code
            if user is None:
                assert status in (401, 403), (name, url)
            elif name in allowed:
                assert status == 200, (name, url, status)
            else:
                assert status in (403, 404), (name, url, status)
        put = api_client.put(f"/api/v1/annotation-assignments/{own.pk}/answers/", {"answers": {}}, format="json")
        assert (put.status_code == 200) == (name == "annotator"), (name, put.status_code)
        decide = api_client.put(f"/api/v1/annotation-projects/{pk}/adjudication/",
                                {"case_id": case_id, "answers": {}}, format="json")
        assert (decide.status_code == 200) == (name in organizers | {"adjudicator"}), (name, decide.status_code)
        assign = api_client.post(f"/api/v1/annotation-projects/{pk}/assign/")
        assert assign.status_code == (400 if name in organizers else 403 if user else assign.status_code), name
    # The readers' own queue: never another reader's cases.
    queue = api_for(readers[1]).get(f"/api/v1/annotation-projects/{pk}/queue/").json()
    assert own.pk not in {entry["id"] for entry in queue}
    assert api_for(readers[0]).get(f"/api/v1/annotation-projects/{pk}/queue/").json()[0]["id"] == own.pk


def test_the_projects_list_shows_only_ones_own(project, readers, outsider, organizer, adjudicator):
    def listed(user):
        return api_for(user).get("/api/v1/annotation-projects/").json()["results"]

    for user in (readers[0], adjudicator, organizer):
        assert [row["id"] for row in listed(user)] == [project.pk]
    assert listed(outsider) == []
    instructions = listed(organizer)[0]["instructions_html"]
    assert "<script>" not in instructions and "<strong>every</strong>" in instructions


def test_the_schema_documents_the_annotation_api(client):
    schema = client.get("/api/schema/").content.decode()
    for path in ("/api/v1/annotation-projects/{id}/queue/", "/api/v1/annotation-assignments/{id}/answers/",
                 "/api/v1/annotation-projects/{id}/adjudication/", "/api/v1/annotation-projects/{id}/agreement/"):
        assert path in schema, path
