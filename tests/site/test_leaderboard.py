"""Leaderboards: public and private parts, which submissions count, baselines, disqualification,
visibility, the reveal and rounding."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from sklearn.metrics import roc_auc_score

from mica.challenges.models import Split, Team
from mica.leaderboards.ranking import leaderboard
from mica.submissions.models import Submission

from .conftest import PASSWORD, csv_bytes, make_scores, make_truth, make_user, run_evaluations, split_labels, upload

pytestmark = pytest.mark.django_db


def scored(phase, user, truth, signal=1.0, seed=1, baseline=False, comment=""):
    case_ids, labels = truth
    content = csv_bytes(["case_id", "score"], zip(case_ids, make_scores(labels, seed=seed, signal=signal)))
    submission = Submission.create(phase=phase, user=user, uploaded_file=upload("p.csv", content),
                                   baseline=baseline, comment=comment)
    evaluations = run_evaluations(submission)
    return submission, evaluations["public"].primary_score, evaluations["private"].primary_score


@pytest.fixture
def truth():
    return make_truth(400)  # AUCs on 200 cases a part seldom tie by chance


@pytest.fixture(autouse=True)
def generous_limits(phase):
    phase.concurrent_limit, phase.daily_limit = 50, 50
    phase.save()


@pytest.fixture
def rival(challenge):
    user = make_user("rival")
    challenge.register(user)
    return Team.create_for(challenge, user, "Rivals"), user


def test_one_row_per_team_best_public_first(client, phase, team, participant, rival, truth):
    _, weak, _ = scored(phase, participant, truth, signal=0.2)
    strong_submission, strong, _ = scored(phase, participant, truth, signal=3.0)
    _, rivals, _ = scored(phase, rival[1], truth, signal=1.0)
    rows = leaderboard(phase)
    assert [(r.rank, r.team) for r in rows] == [(1, "Team Paul"), (2, "Rivals")]
    assert rows[0].score == strong > rivals > weak
    assert rows[0].n_scored == 2
    public = strong_submission.public_evaluation()
    assert rows[0].interval == [public.intervals["auc"]["low"], public.intervals["auc"]["high"]]
    assert rows[0].interval[0] <= rows[0].score <= rows[0].interval[1]
    assert set(rows[0].metrics) == {"auc", "log_loss"}

    page = client.get(reverse("leaderboards:phase", args=[phase.pk])).content.decode()
    assert f"{float(f'{strong:.4g}'):.4f}" in page  # rounded to 4 significant digits for the public


def test_the_public_part_is_scored_on_its_cases_only(phase, team, participant, truth):
    _, public, private = scored(phase, participant, truth, signal=1.0)
    scores = make_scores(truth[1])
    for split, value in ((Split.PUBLIC, public), (Split.PRIVATE, private)):
        _, labels, kept = split_labels(phase, truth, split)
        assert value == pytest.approx(roc_auc_score(labels, scores[kept]), abs=1e-9)


def test_latest_submission_rule(phase, team, participant, truth):
    phase.selection = "latest"
    phase.save()
    scored(phase, participant, truth, signal=3.0)
    _, latest, _ = scored(phase, participant, truth, signal=0.2)
    assert [r.score for r in leaderboard(phase)] == [latest]


def test_ties_share_the_best_rank(phase, team, participant, rival, truth):
    _, a, _ = scored(phase, participant, truth)
    _, b, _ = scored(phase, rival[1], truth)
    assert a == b
    assert [r.rank for r in leaderboard(phase)] == [1, 1]


def test_the_private_board_ranks_the_submission_chosen_by_public_score(phase, team, participant, truth):
    """'best' never lets a team pick its submission by the private part."""
    runs = [scored(phase, participant, truth, signal=1.0, seed=seed) for seed in range(2, 8)]
    best_public = max(runs, key=lambda run: run[1])
    rows = leaderboard(phase, Split.PRIVATE)
    assert [r.score for r in rows] == [best_public[2]]
    assert rows[0].submission_uuid == str(best_public[0].uuid)


def test_selected_submissions_decide_the_final_ranking(phase, team, participant, truth):
    phase.selection, phase.max_selected = "selected", 2
    phase.save()
    runs = [scored(phase, participant, truth, signal=1.0, seed=seed) for seed in range(2, 8)]
    # Selected by the team: the best private score among them counts.
    chosen = runs[:2]
    for submission, _, _ in chosen:
        submission.set_selected(True, participant)
    with pytest.raises(Exception, match="selected 2"):
        runs[2][0].set_selected(True, participant)
    assert [r.score for r in leaderboard(phase, Split.PRIVATE)] == [max(run[2] for run in chosen)]
    # None selected: the two best by public score are chosen automatically.
    Submission.objects.update(selected=False)
    auto = sorted(runs, key=lambda run: -run[1])[:2]
    assert [r.score for r in leaderboard(phase, Split.PRIVATE)] == [max(run[2] for run in auto)]


def test_baselines_are_shown_marked_and_unranked(phase, team, participant, organizer, truth):
    _, team_score, _ = scored(phase, participant, truth, signal=0.5)
    _, baseline_score, _ = scored(phase, organizer, truth, signal=3.0, baseline=True, comment="ResNet baseline")
    rows = leaderboard(phase)
    assert [(r.rank, r.team, r.is_baseline) for r in rows] == [(1, "Team Paul", False), (None, "ResNet baseline", True)]
    assert baseline_score > team_score  # shown, but it does not take rank 1


def test_a_disqualified_team_leaves_the_board(phase, team, participant, rival, truth):
    scored(phase, participant, truth, signal=3.0)
    scored(phase, rival[1], truth)
    team.disqualify("Used the test labels.")
    assert [r.team for r in leaderboard(phase)] == ["Rivals"]
    assert [r.team for r in leaderboard(phase, Split.PRIVATE)] == ["Rivals"]


@pytest.mark.parametrize("visibility, who_sees", [
    ("public", {"anonymous", "outsider", "participant", "organizer"}),
    ("participants", {"participant", "organizer"}),
    ("hidden", {"organizer"}),
])
def test_visibility(client, phase, team, participant, outsider, organizer, visibility, who_sees):
    phase.visibility = visibility
    phase.save()
    users = {"anonymous": None, "outsider": outsider, "participant": participant, "organizer": organizer}
    for name, user in users.items():
        client.logout()
        if user:
            client.login(username=user.username, password=PASSWORD)
        status = client.get(reverse("leaderboards:phase", args=[phase.pk])).status_code
        api_status = client.get(f"/api/v1/leaderboards/{phase.pk}/").status_code
        assert (status == 200) == (name in who_sees), (name, status)
        assert (api_status == 200) == (name in who_sees), (name, api_status)


def test_the_private_board_exists_only_for_organizers_until_revealed(client, phase, team, participant, organizer, truth):
    scored(phase, participant, truth)
    url, api_url = reverse("leaderboards:private", args=[phase.pk]), f"/api/v1/leaderboards/{phase.pk}/private/"
    client.login(username=participant.username, password=PASSWORD)
    assert client.get(url).status_code == 404 and client.get(api_url).status_code == 404
    client.login(username=organizer.username, password=PASSWORD)
    assert client.get(url).status_code == 200
    client.post(reverse("challenges:reveal_private", args=[phase.pk]))
    phase.refresh_from_db()
    assert phase.private_revealed_at is None  # the phase has not ended
    phase.ends_at = timezone.now() - timedelta(seconds=1)
    phase.save()
    client.post(reverse("challenges:reveal_private", args=[phase.pk]))
    phase.refresh_from_db()
    assert phase.private_revealed_at is not None
    client.login(username=participant.username, password=PASSWORD)
    assert client.get(url).status_code == 200
    assert client.get(api_url).json()[0]["team"] == "Team Paul"


def test_a_blind_phase_shows_no_score_while_it_runs(client, phase, team, participant, truth):
    phase.blind = True
    phase.save()
    submission, _, _ = scored(phase, participant, truth)
    client.login(username=participant.username, password=PASSWORD)
    assert client.get(reverse("leaderboards:phase", args=[phase.pk])).status_code == 403
    body = client.get(f"/api/v1/submissions/{submission.uuid}/").json()
    assert body["status"] == "succeeded" and body["metrics"] is None


def test_a_changed_primary_metric_reranks(phase, team, participant, rival, truth):
    scored(phase, participant, truth, signal=3.0)
    scored(phase, rival[1], truth, signal=0.3)
    phase.primary_metric = "log_loss"
    phase.save()
    phase.refresh_primary_scores()
    rows = leaderboard(phase)
    assert rows[0].team == "Team Paul" and rows[0].score == rows[0].metrics["log_loss"] < rows[1].score


def test_pages_read_the_stored_board_and_a_change_refreshes_it(client, phase, team, participant, rival, truth):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from mica.leaderboards.models import LeaderboardSnapshot
    from mica.leaderboards.tasks import refresh_leaderboards

    scored(phase, participant, truth, signal=3.0)
    url = reverse("leaderboards:phase", args=[phase.pk])
    assert "Team Paul" in client.get(url).content.decode()
    with CaptureQueriesContext(connection) as few:
        client.get(url)
    for seed in range(3):
        scored(phase, rival[1], truth, signal=0.5, seed=seed)
    with CaptureQueriesContext(connection) as more:
        page = client.get(url).content.decode()
    assert len(more) == len(few)  # a page view reads the snapshot, whatever the number of submissions
    team.disqualify("Shared an account.")
    assert LeaderboardSnapshot.objects.filter(phase=phase, stale=True).count() == 2
    assert "Team Paul" in client.get(url).content.decode()  # until the worker refreshes it
    refresh_leaderboards(phase.pk)
    page = client.get(url).content.decode()
    assert "Team Paul" not in page and "Rivals" in page
    assert not LeaderboardSnapshot.objects.filter(phase=phase, stale=True).exists()


def test_organizers_see_teams_that_send_near_constant_probe_files(client, phase, team, participant, rival, organizer,
                                                                  truth):
    """The attack of issue 20: probabilities all near 0.5, each case nudged by a tiny power of two,
    so that one log loss gives every label away. Three such files flag the team; honest files do not."""
    case_ids, labels = truth
    for attempt in range(3):
        probe = [0.5 + (2.0 ** -(i % 30 + 10)) * (attempt + 1) for i in range(len(case_ids))]
        run_evaluations(Submission.create(phase=phase, user=participant,
                                          uploaded_file=upload("probe.csv", csv_bytes(["case_id", "score"], zip(case_ids, probe)))))
    for seed in range(3):
        scored(phase, rival[1], truth, seed=seed)
    assert [(row["team"], row["files"]) for row in phase.challenge.probe_suspects()] == [("Team Paul", 3)]
    client.login(username=organizer.username, password=PASSWORD)
    page = client.get(f"/challenges/{phase.challenge.slug}/dashboard/").content.decode()
    assert "Possible label probing" in page and "Team Paul" in page
    from rest_framework.test import APIClient

    api = APIClient()
    api.force_authenticate(organizer)
    assert api.get(f"/api/v1/challenges/{phase.challenge.slug}/dashboard/").json()["probes"][0]["files"] == 3
