"""Refreshes of a board are coalesced and throttled through its BoardRefresh row: one at a time
across worker processes, one more afterwards for whatever arrived meanwhile (not one per scored
evaluation), the next no sooner than the board's pause; and the last result is always on the
board in the end. The page and the API say when the board was last computed."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.http import parse_http_date
from rest_framework.test import APIClient

from mica.challenges.models import Split, Team
from mica.evaluations.models import Evaluation
from mica.leaderboards.models import BoardRefresh, LeaderboardSnapshot, leaderboards_changed
from mica.leaderboards.tasks import refresh_leaderboards
from mica.submissions.models import Submission

from .conftest import csv_bytes, make_scores, make_user, run_evaluations, upload
from .workers import Worker, flush_broker, wait_for


def submit(phase, user, truth, signal, seed):
    case_ids, labels = truth
    return Submission.create(phase=phase, user=user, uploaded_file=upload("p.csv", csv_bytes(
        ["case_id", "score"], zip(case_ids, make_scores(labels, seed=seed, signal=signal)))))


def new_team(challenge, name):
    user = make_user(name.lower())
    challenge.register(user)
    Team.create_for(challenge, user, name)
    return user


def sent(callbacks):
    """How many refresh messages the captured on-commit callbacks would send."""
    return sum(1 for callback in callbacks if callback.__qualname__.startswith("BoardRefresh.send"))


@pytest.mark.django_db
def test_requests_coalesce_while_a_refresh_waits_or_runs(phase, team, participant, truth,
                                                         django_capture_on_commit_callbacks):
    run_evaluations(submit(phase, participant, truth, 1.0, 1))
    LeaderboardSnapshot.rows_for(phase, Split.PUBLIC)  # the board has been shown
    with django_capture_on_commit_callbacks() as callbacks:
        for _ in range(5):
            leaderboards_changed(phase)
    assert sent(callbacks) == 1  # five evaluations ending while it waits: one refresh
    assert LeaderboardSnapshot.objects.filter(phase=phase, stale=True).count() == 2

    before = BoardRefresh.objects.get(phase=phase).refreshes
    running = BoardRefresh.claim(phase)
    assert running is not None and not LeaderboardSnapshot.objects.filter(phase=phase, stale=True).exists()
    assert BoardRefresh.claim(phase) is None  # a second worker does not run the same board
    with django_capture_on_commit_callbacks() as callbacks:
        for _ in range(3):
            leaderboards_changed(phase)
    assert sent(callbacks) == 0  # the running refresh sends the next one when it ends
    BoardRefresh.objects.filter(pk=running.pk).update(duration=0.0)
    with django_capture_on_commit_callbacks() as callbacks:
        assert running.finish()
    assert sent(callbacks) == 1  # exactly one more refresh for the three requests
    row = BoardRefresh.objects.get(phase=phase)
    assert row.refreshes == before + 1 and row.claimed_by == "" and row.due_at is not None


@pytest.mark.django_db
def test_the_next_refresh_waits_for_the_boards_pause(phase, team, participant, truth, settings,
                                                     django_capture_on_commit_callbacks):
    settings.MICA_BOARD_REFRESH_SECONDS = 30
    run_evaluations(submit(phase, participant, truth, 1.0, 1))
    LeaderboardSnapshot.rows_for(phase, Split.PUBLIC)
    started = timezone.now()
    BoardRefresh.objects.filter(phase=phase).update(started_at=started, duration=50.0, due_at=None)  # a slow board
    leaderboards_changed(phase)
    assert BoardRefresh.objects.get(phase=phase).due_at == pytest.approx(started + timedelta(seconds=30),
                                                                         abs=timedelta(seconds=2))
    BoardRefresh.objects.filter(phase=phase).update(duration=0.05, due_at=None)  # a quick one: half a second
    leaderboards_changed(phase)
    assert BoardRefresh.objects.get(phase=phase).due_at == pytest.approx(started + timedelta(seconds=0.5),
                                                                         abs=timedelta(seconds=2))
    BoardRefresh.objects.filter(phase=phase).update(started_at=started - timedelta(hours=1), due_at=None)
    before = timezone.now()
    leaderboards_changed(phase)
    assert before <= BoardRefresh.objects.get(phase=phase).due_at <= timezone.now()  # idle long enough: at once


@pytest.mark.django_db
def test_the_sweep_takes_back_the_board_of_a_dead_worker_and_resends_a_lost_message(
        phase, team, participant, truth, django_capture_on_commit_callbacks):
    run_evaluations(submit(phase, participant, truth, 1.0, 1))
    leaderboards_changed(phase)
    dead = BoardRefresh.claim(phase)
    BoardRefresh.objects.filter(pk=dead.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks() as callbacks:
        BoardRefresh.sweep()
    assert sent(callbacks) == 1
    assert not dead.finish()  # the dead worker's late end writes nothing
    assert LeaderboardSnapshot.objects.filter(phase=phase, stale=True).count() == 2

    BoardRefresh.objects.filter(phase=phase).update(due_at=timezone.now() - timedelta(minutes=10))  # lost
    with django_capture_on_commit_callbacks() as callbacks:
        BoardRefresh.sweep()
        BoardRefresh.sweep()
    assert sent(callbacks) == 1
    refresh_leaderboards(phase.pk)
    assert not LeaderboardSnapshot.objects.filter(phase=phase, stale=True).exists()
    with django_capture_on_commit_callbacks() as callbacks:
        BoardRefresh.sweep()
    assert sent(callbacks) == 0


@pytest.mark.django_db
def test_the_page_and_the_api_say_when_the_board_was_computed(client, phase, team, participant, truth):
    run_evaluations(submit(phase, participant, truth, 1.0, 1))
    url = reverse("leaderboards:phase", args=[phase.pk])
    client.get(url)
    refresh_leaderboards(phase.pk)
    computed_at = LeaderboardSnapshot.objects.get(phase=phase, split=Split.PUBLIC).computed_at
    page = client.get(url).content.decode()
    assert f'datetime="{computed_at.isoformat()}"' in page and "newer results are being ranked" not in page
    answer = APIClient().get(f"/api/v1/leaderboards/{phase.pk}/")
    assert parse_http_date(answer["Last-Modified"]) == int(computed_at.timestamp())
    assert answer["Mica-Refresh-Pending"] == "false"

    leaderboards_changed(phase)
    assert "newer results are being ranked" in client.get(url).content.decode()
    assert APIClient().get(f"/api/v1/leaderboards/{phase.pk}/")["Mica-Refresh-Pending"] == "true"
    exported = client.get(reverse("leaderboards:export_json", args=[phase.pk])).json()
    assert exported["refresh_pending"] is True and exported["computed_at"] == computed_at.isoformat()


@pytest.mark.django_db
def test_failing_refreshes_are_given_up_told_and_tried_again_on_the_next_change(
        client, phase, team, participant, truth, organizer, co_organizer, settings, monkeypatch,
        django_capture_on_commit_callbacks):
    # Two attempts: one whose worker dies (its lease runs out), one that raises. The third claim
    # gives up: the organizers are told once, the board says so, the sweep leaves it alone.
    from mica.notifications.models import Kind, Notification

    settings.MICA_MAX_ATTEMPTS = 2
    run_evaluations(submit(phase, participant, truth, 1.0, 1))
    url = reverse("leaderboards:phase", args=[phase.pk])
    client.get(url)
    refresh_leaderboards(phase.pk)
    leaderboards_changed(phase)
    dead = BoardRefresh.claim(phase)
    BoardRefresh.objects.filter(pk=dead.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks() as callbacks:
        BoardRefresh.sweep()
    assert sent(callbacks) == 1 and BoardRefresh.objects.get(phase=phase).attempts == 1

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the ranking")

    monkeypatch.setattr("mica.leaderboards.statistics.board_statistics", broken)
    with django_capture_on_commit_callbacks() as callbacks:
        refresh_leaderboards(phase.pk)  # raises inside, caught: the board stays stale, retried
    row = BoardRefresh.objects.get(phase=phase)
    assert sent(callbacks) == 1 and (row.attempts, row.claimed_by, row.failed_at) == (2, "", None)
    assert LeaderboardSnapshot.objects.filter(phase=phase, stale=True).count() == 2
    assert not Notification.objects.filter(kind=Kind.WORK_FAILED).exists()

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        refresh_leaderboards(phase.pk)  # the attempts are used: given up, nothing computed
    assert sent(callbacks) == 0 and BoardRefresh.objects.get(phase=phase).failed_at is not None
    told = Notification.objects.filter(kind=Kind.WORK_FAILED)
    assert {n.user for n in told} == {organizer, co_organizer} and told[0].url == url
    assert "is not refreshed" in told[0].subject and "last 2 refreshes failed" in told[0].body
    assert "newer results could not be ranked" in client.get(url).content.decode()
    answer = APIClient().get(f"/api/v1/leaderboards/{phase.pk}/")
    assert (answer["Mica-Refresh-Failed"], answer["Mica-Refresh-Pending"]) == ("true", "true")
    with django_capture_on_commit_callbacks() as callbacks:
        BoardRefresh.sweep()  # stale boards, no message on its way: not this one
    assert sent(callbacks) == 0

    # A new change tries again; failing, it tells nobody twice; once fixed, the board is whole.
    with django_capture_on_commit_callbacks() as callbacks:
        leaderboards_changed(phase)
    assert sent(callbacks) == 1
    refresh_leaderboards(phase.pk)
    assert told.count() == 2 and BoardRefresh.objects.get(phase=phase).failed_at is not None
    monkeypatch.undo()
    leaderboards_changed(phase)
    refresh_leaderboards(phase.pk)
    row = BoardRefresh.objects.get(phase=phase)
    assert (row.attempts, row.failed_at) == (0, None)
    assert "could not be ranked" not in client.get(url).content.decode()
    assert APIClient().get(f"/api/v1/leaderboards/{phase.pk}/")["Mica-Refresh-Failed"] == "false"


REFRESH_LINE = re.compile(r"board refresh of phase (\d+) ran ([\d.]+)-([\d.]+) by")


@pytest.mark.django_db(transaction=True)
@pytest.mark.worker
def test_many_evaluations_ending_together_cause_few_refreshes_and_the_last_is_on_the_board(
        tmp_path, phase, challenge, truth):
    flush_broker()
    phase.concurrent_limit = phase.daily_limit = 50
    phase.save()
    users = [new_team(challenge, f"Team{i:02d}") for i in range(10)]
    submit(phase, users[0], truth, 1.0, 0)
    LeaderboardSnapshot.rows_for(phase, Split.PUBLIC)  # shown: every change now asks for a refresh
    for i, user in enumerate(users[1:], start=1):
        submit(phase, user, truth, 1.0 + i / 10, i)
    evaluations = Evaluation.objects.filter(submission__phase=phase).count()
    assert evaluations == 2 * len(users)
    # Two worker processes, each on every queue: they score and refresh side by side.
    workers = [Worker(tmp_path / f"worker{i}.log", MICA_BOARD_REFRESH_SECONDS="2") for i in range(2)]
    try:
        wait_for(lambda: not Evaluation.objects.filter(submission__phase=phase, status__in=Evaluation.UNFINISHED)
                 .exists(), 180, what="scoring")
        wait_for(lambda: not LeaderboardSnapshot.objects.filter(phase=phase, stale=True).exists()
                 and BoardRefresh.objects.filter(phase=phase, due_at=None, claimed_by="").exists(), 60,
                 what="the last refresh")
    finally:
        for worker in workers:
            worker.stop()
    logs = "".join(worker.output() for worker in workers)
    assert not Evaluation.objects.filter(submission__phase=phase).exclude(status="succeeded").exists(), logs[-3000:]
    rows, freshness = LeaderboardSnapshot.rows_for(phase, Split.PUBLIC)
    assert {row.team for row in rows} == {f"Team{i:02d}" for i in range(10)}  # the last scored one too
    assert not freshness.pending
    ran = sorted((float(start), float(end)) for pk, start, end in REFRESH_LINE.findall(logs) if int(pk) == phase.pk)
    refreshes = BoardRefresh.objects.get(phase=phase).refreshes
    assert len(ran) == refreshes and 1 <= refreshes < evaluations / 2, ran
    for (_, end), (start, _) in zip(ran, ran[1:]):
        assert start >= end, f"two refreshes of one board overlapped: {ran}"
