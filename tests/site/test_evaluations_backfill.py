"""Backfilling old evaluations: those stored before results kept intervals, per-case labels and
scores, and FROC curves are scored again in place by a worker (Backfill, leased work), asked for
by the `backfill_evaluations` command or an organizer's button; running it again re-scores
only what still lacks them."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from mica.challenges.models import Split
from mica.evaluations.models import Backfill, Evaluation
from mica.evaluations.tasks import run_backfill
from mica.leaderboards.models import LeaderboardSnapshot
from mica.submissions.models import Submission

from .conftest import PASSWORD, csv_bytes, make_scores, run_evaluations, upload
from .test_leaderboard_froc import detection_board  # noqa: F401  (a fixture)
from .test_leaderboard_report import USERS, people  # noqa: F401  (a fixture)

pytestmark = pytest.mark.django_db


def backfill(*args):
    out = StringIO()
    call_command("backfill_evaluations", *map(str, args), stdout=out)
    return out.getvalue()


def stored_the_old_way(evaluation, *, intervals=True, labels=True, froc_curve=True):
    """The evaluation as results were stored before they kept these details."""
    result = dict(evaluation.result)
    if labels:
        result["per_case"] = [{key: value for key, value in row.items() if not key.startswith(("label", "score"))}
                              for row in result["per_case"]]
    if froc_curve:
        result.pop("froc_curve", None)
    Evaluation.objects.filter(pk=evaluation.pk).update(result=result, **({"intervals": None} if intervals else {}))


@pytest.fixture
def scored(phase, team, participant, truth):
    case_ids, labels = truth
    submission = Submission.create(phase=phase, user=participant, uploaded_file=upload("p.csv", csv_bytes(
        ["case_id", "score"], zip(case_ids, make_scores(labels, seed=1)))))
    return run_evaluations(submission)


def test_an_evaluation_stored_without_intervals_and_labels_gets_them(phase, scored):
    public = scored["public"]
    kept = {"intervals": public.intervals, "per_case": public.result["per_case"], "metrics": public.metrics}
    stored_the_old_way(public)
    assert Evaluation.lacking_details(phase) == [public.pk]

    said = backfill(phase.pk)
    job = Backfill.objects.get()
    assert f"backfill {job.pk} (queued) re-scores 1 evaluations" in said
    assert backfill(phase.pk) == said  # asked again while it waits: the same job
    assert Backfill.objects.count() == 1

    run_backfill(job.pk)
    job.refresh_from_db()
    assert job.status == Backfill.Status.DONE and job.done == job.total == 1, job.status_reason
    public.refresh_from_db()
    assert public.intervals == kept["intervals"] and public.result["per_case"] == kept["per_case"]
    assert public.metrics == kept["metrics"] and public.status == Evaluation.Status.SUCCEEDED
    assert LeaderboardSnapshot.objects.filter(phase=phase, stale=True).count() == 2  # the boards are refreshed

    assert Evaluation.lacking_details(phase) == []
    assert "every evaluation has its intervals and curves" in backfill(phase.pk)
    assert Backfill.objects.count() == 1  # nothing more to do: nothing queued
    run_backfill(job.pk)  # a redelivered message: the job has ended
    job.refresh_from_db()
    assert job.done == 1


def test_a_second_run_rescores_only_what_still_lacks(phase, scored):
    stored_the_old_way(scored["public"])
    first = Backfill.request(phase)
    run_backfill(first.pk)
    stored_the_old_way(scored["private"], labels=False)
    second = Backfill.request(phase)
    assert second.pk != first.pk and second.total == 1
    run_backfill(second.pk)
    second.refresh_from_db()
    assert second.done == 1 and Evaluation.lacking_details(phase) == []


def test_a_detection_result_without_its_froc_curve_gets_it(detection_board):
    phase = detection_board
    old = Evaluation.objects.get(split=Split.PUBLIC, submission__team__name="Team poor")
    curve = old.result["froc_curve"]
    stored_the_old_way(old, intervals=False, labels=False)
    assert Evaluation.lacking_details(phase) == [old.pk]
    run_backfill(Backfill.request(phase).pk)
    old.refresh_from_db()
    assert old.result["froc_curve"] == curve


def test_the_command_names_what_is_wrong(phase):
    with pytest.raises(CommandError, match="Give phase ids, or --all"):
        backfill()
    with pytest.raises(CommandError, match="No phase has the id 999999"):
        backfill(phase.pk, 999999)


def test_only_organizers_ask_for_a_backfill_from_the_statistics_page(people, phase, scored):
    stored_the_old_way(scored["public"])
    url = f"/leaderboards/phases/{phase.pk}/backfill/"
    for who in USERS:
        client = Client()
        if people[who]:
            client.login(username=people[who].username, password=PASSWORD)
        page = client.get(f"/leaderboards/phases/{phase.pk}/significance/").content.decode()
        answer = client.post(url)
        if who in {"organizer", "co_organizer", "staff"}:
            assert 'id="backfill"' in page, who
            assert answer.status_code == 302 and answer["Location"].endswith(f"/phases/{phase.pk}/significance/")
        else:
            assert 'id="backfill"' not in page, who
            assert answer.status_code == (302 if who == "anonymous" else 403), f"{who}: {answer.status_code}"
            if who == "anonymous":
                assert "/accounts/login/" in answer["Location"]
    job = Backfill.objects.get()  # three organizers asked: one job
    assert job.created_by == people["organizer"] and job.total == 1
    run_backfill(job.pk)
    client = Client()
    client.login(username=people["organizer"].username, password=PASSWORD)
    page = client.get(f"/leaderboards/phases/{phase.pk}/significance/").content.decode()
    assert 'data-status="done"' in page and "1 of 1 scored again" in page
    answer = client.post(url, follow=True).content.decode()
    assert "Every evaluation of this phase has its intervals" in answer and Backfill.objects.count() == 1
