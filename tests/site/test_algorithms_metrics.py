"""Organizers' metric containers: the container scores each part of the test set in the sandbox
(on the ``metrics`` queue), and its per-case values and aggregates are stored, ranked and
shown like a built-in metric's.

Bad inputs tried: undeclared, badly named, duplicated, built-in or direction-less metric names;
metrics.json missing, not JSON, with extra keys, an undeclared or missing metric, a case twice,
a case not to score, a missing case, a string, NaN-like or boolean value; a container that
crashes; attaching to a phase that has scores; a non-organizer sending one."""

import base64
import json

import numpy as np
import pytest
from rest_framework.test import APIClient

from mica.accounts.tokens import issue_token
from mica.algorithms.metric_containers import MetricsInvalid, parse_declaration, read_metrics
from mica.algorithms.models import MetricContainer
from mica.algorithms.tasks import score_with_metric_container
from mica.challenges.models import Phase
from mica.leaderboards.tasks import refresh_leaderboards
from mica.submissions.models import Submission

from .conftest import PASSWORD, make_scores, run_evaluations, split_labels, upload
from .containers import ABS_ERROR, CRASH, image_archive, writes_metrics

pytestmark = pytest.mark.django_db

TUS = {"HTTP_TUS_RESUMABLE": "1.0.0"}


def send_metric_container(user, phase, path, metrics):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {issue_token(user).key}")
    data = path.read_bytes()
    pairs = {"purpose": "metric-container", "phase": phase.pk, "metrics": metrics, "filename": path.name}
    created = client.post("/uploads/", HTTP_UPLOAD_LENGTH=str(len(data)), **TUS, HTTP_UPLOAD_METADATA=",".join(
        f"{key} {base64.b64encode(str(value).encode()).decode()}" for key, value in pairs.items()))
    if created.status_code != 201:
        return created
    return client.generic("PATCH", created["Location"], data, content_type="application/offset+octet-stream",
                          HTTP_UPLOAD_OFFSET="0", **TUS)


def score(submission):
    for evaluation in submission.evaluations.all():
        assert evaluation.task() is score_with_metric_container
        score_with_metric_container(evaluation.pk)
    refresh_leaderboards(submission.phase_id)
    return {evaluation.split: evaluation for evaluation in submission.evaluations.all()}


def test_a_metric_container_scores_like_a_built_in_metric(client, phase, team, participant, organizer, truth,
                                                          predictions, tmp_path):
    path, _ = image_archive(tmp_path / "metric.tar", ABS_ERROR)
    answer = send_metric_container(organizer, phase, path, "abs_error:lower")
    assert answer.status_code == 204, answer.content
    phase.refresh_from_db()
    assert phase.primary_metric == "abs_error" and phase.secondary_metrics == [] and not phase.higher_is_better
    assert phase.custom_metrics() == {"abs_error": False}

    submission = Submission.create(phase=phase, user=participant, uploaded_file=upload("p.csv", predictions))
    evaluations = score(submission)
    scores = make_scores(truth[1])
    for split, evaluation in evaluations.items():
        assert evaluation.status == "succeeded", evaluation.status_reason
        case_ids, labels, kept = split_labels(phase, truth, split)
        errors = np.abs(scores[kept] - np.array(labels))
        assert evaluation.metrics["abs_error"] == pytest.approx(errors.mean(), abs=1e-8)
        assert evaluation.primary_score == pytest.approx(errors.mean(), abs=1e-8)
        per_case = {row["case_id"]: row["abs_error"] for row in evaluation.result["per_case"]}
        assert list(per_case) == case_ids
        assert list(per_case.values()) == pytest.approx(list(errors), abs=1e-8)

    client.login(username=participant.username, password=PASSWORD)
    board = client.get(f"/leaderboards/phases/{phase.pk}/").content.decode()
    shown = phase.shown_score(evaluations["public"].primary_score)
    assert "abs_error" in board and f"{shown:.4f}" in board


def test_a_phase_form_offers_the_containers_metrics(client, phase, organizer, tmp_path):
    path, _ = image_archive(tmp_path / "metric.tar", ABS_ERROR)
    send_metric_container(organizer, phase, path, "abs_error:lower, hits:higher")
    client.login(username=organizer.username, password=PASSWORD)
    form = client.get(f"/challenges/phases/{phase.pk}/edit/").content.decode()
    assert 'value="hits"' in form
    page = client.get(f"/algorithms/phases/{phase.pk}/metric-container/").content.decode()
    assert "ranks the leaderboard" in page and "<code>hits</code>" in page


def test_a_container_that_fails_fails_the_evaluation_with_its_reason(phase, team, participant, organizer,
                                                                     predictions, tmp_path):
    path, _ = image_archive(tmp_path / "metric.tar", CRASH)
    send_metric_container(organizer, phase, path, "abs_error:lower")
    submission = Submission.create(phase=phase, user=participant, uploaded_file=upload("p.csv", predictions))
    public = score(submission)["public"]
    assert public.status == "failed"
    assert public.status_reason == "The organizers' metric container failed: The container exited with code 3."


def test_bad_output_fails_the_evaluation_naming_the_problem(phase, team, participant, organizer, predictions,
                                                            tmp_path):
    path, _ = image_archive(tmp_path / "metric.tar", writes_metrics('{"metrics": {"abs_error": 1}, "cases": []}'))
    send_metric_container(organizer, phase, path, "abs_error:lower")
    submission = Submission.create(phase=phase, user=participant, uploaded_file=upload("p.csv", predictions))
    public = score(submission)["public"]
    assert public.status == "failed"
    assert public.status_reason.startswith("The organizers' metric container wrote no valid scores: "
                                           'metrics.json "cases": ')
    assert "case(s) missing" in public.status_reason


CASES = ["a", "b"]
DECLARED = {"dice_x": True}


@pytest.mark.parametrize("content, words", [
    (None, "wrote no /output/metrics.json"),
    ("{not json", "is not JSON"),
    ({"metrics": {"dice_x": 1}, "cases": [], "extra": 1}, 'exactly the keys "metrics" and "cases"'),
    ({"metrics": {"dice_x": 1, "other": 2}, "cases": []}, "undeclared ['other']"),
    ({"metrics": {}, "cases": []}, "missing ['dice_x']"),
    ({"metrics": {"dice_x": "high"}, "cases": []}, '"metrics" \'dice_x\': "high" is not a finite number'),
    ({"metrics": {"dice_x": True}, "cases": []}, "true is not a finite number"),
    ({"metrics": {"dice_x": 1}, "cases": [{"case_id": "a"}, {"case_id": "a"}]}, "case 'a' appears twice"),
    ({"metrics": {"dice_x": 1}, "cases": [{"case_id": "z"}]}, "case 'z' is not one of the cases to score"),
    ({"metrics": {"dice_x": 1}, "cases": [{"case_id": "a", "foo": 1}, {"case_id": "b"}]}, "'foo' is not a declared"),
    ({"metrics": {"dice_x": 1}, "cases": [{"case_id": "a"}]}, "1 case(s) missing, e.g. 'b'"),
    ({"metrics": {"dice_x": 1}, "cases": [{"id": "a"}]}, '"cases"[0]: an object with a string case_id'),
])
def test_metrics_json_is_checked_strictly(tmp_path, content, words):
    if content is not None:
        (tmp_path / "metrics.json").write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(MetricsInvalid) as raised:
        read_metrics(tmp_path, CASES, DECLARED)
    assert words in str(raised.value)


def test_a_valid_metrics_json_becomes_an_evaluator_result(tmp_path):
    (tmp_path / "metrics.json").write_text(json.dumps(
        {"metrics": {"dice_x": 0.5}, "cases": [{"case_id": "b", "dice_x": None}, {"case_id": "a", "dice_x": 1}]}))
    result = read_metrics(tmp_path, CASES, DECLARED)
    assert result["metrics"] == {"dice_x": 0.5} and result["n_cases"] == 2
    assert result["per_case"] == [{"case_id": "b", "dice_x": None}, {"case_id": "a", "dice_x": 1}]


@pytest.mark.parametrize("text, words", [
    ("", "declare at least one metric"),
    ("Dice:higher", "'Dice' is not a metric name"),
    ("dice_x", "say whether higher or lower is better"),
    ("dice_x:up", "say whether higher or lower is better"),
    ("dice_x:higher, dice_x:lower", "'dice_x' is declared twice"),
    ("auc:higher", "'auc' is a built-in metric"),
])
def test_a_bad_declaration_is_refused(text, words):
    with pytest.raises(ValueError) as raised:
        parse_declaration(text)
    assert words in str(raised.value)


def test_sending_one_is_for_organizers_and_phases_without_scores(phase, team, participant, organizer, predictions,
                                                                 tmp_path):
    path, _ = image_archive(tmp_path / "metric.tar", ABS_ERROR)
    assert send_metric_container(participant, phase, path, "abs_error:lower").status_code == 403
    refused = send_metric_container(organizer, phase, path, "abs_error")
    assert refused.status_code == 400 and "higher or lower" in refused.json()["detail"]
    run_evaluations(Submission.create(phase=phase, user=participant, uploaded_file=upload("p.csv", predictions)))
    late = send_metric_container(organizer, phase, path, "abs_error:lower")
    assert late.status_code == 400 and "has evaluations already" in late.json()["detail"]
    assert not MetricContainer.objects.exists()
    assert Phase.objects.get(pk=phase.pk).primary_metric == "auc"
