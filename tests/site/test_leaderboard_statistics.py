"""Leaderboards that say whether the winner really won: every metric's 95% interval (by patient
where the test set knows patients), the phase's ranking method with significance bands, the
significance page and its plots, the exports, and the per-request memory of a user's roles.

Computed by the worker's steps (run here in-process, as `run_evaluations` does); a page view
only reads what they stored."""

import csv
import io
import json

import numpy as np
import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape
from rest_framework.test import APIClient

import evaluator
from mica.challenges.models import Case, Split, Team
from mica.evaluations.models import Evaluation
from mica.leaderboards.models import LeaderboardSnapshot, leaderboards_changed
from mica.leaderboards.tasks import draw_leaderboard_plots, refresh_leaderboards
from mica.submissions.models import Submission

from .conftest import PASSWORD, csv_bytes, make_scores, make_truth, make_user, run_evaluations, upload

pytestmark = pytest.mark.django_db


@pytest.fixture
def truth():
    return make_truth(120)


@pytest.fixture(autouse=True)
def generous_limits(phase):
    phase.concurrent_limit, phase.daily_limit = 50, 50
    phase.save()


def submit(phase, user, truth, *, signal=1.0, seed=1, scores=None):
    case_ids, labels = truth
    values = make_scores(labels, seed=seed, signal=signal) if scores is None else scores
    submission = Submission.create(phase=phase, user=user, uploaded_file=upload("p.csv", csv_bytes(
        ["case_id", "score"], zip(case_ids, values))))
    run_evaluations(submission)
    return submission


def team_of(challenge, name):
    user = make_user(name.lower().replace(" ", "-"))
    challenge.register(user)
    Team.create_for(challenge, user, name)
    return user


@pytest.fixture
def three_teams(challenge, phase, truth):
    """A strong team, a close second and a weak third."""
    strong, close, weak = (team_of(challenge, name) for name in ("Strong", "Close", "Weak"))
    submit(phase, strong, truth, signal=3.0, seed=1)
    submit(phase, close, truth, signal=2.8, seed=2)
    submit(phase, weak, truth, signal=0.1, seed=3)
    draw_leaderboard_plots(phase.pk)  # the worker's next step after a refresh
    return strong, close, weak


# -- intervals ----------------------------------------------------------------------------------
def test_every_metric_has_its_interval_stored_and_shown(client, phase, team, participant, truth):
    submission = submit(phase, participant, truth)
    public = submission.public_evaluation()
    assert set(public.intervals) >= {"auc", "log_loss"}
    for name in ("auc", "log_loss"):
        interval = public.intervals[name]
        assert interval["low"] <= public.metrics[name] <= interval["high"]
        assert interval["level"] == pytest.approx(0.95)
    row = LeaderboardSnapshot.rows_for(phase, Split.PUBLIC)[0][0]
    assert row.interval == [public.intervals["auc"]["low"], public.intervals["auc"]["high"]]
    assert set(row.intervals) == {"auc", "log_loss"}
    page = client.get(reverse("leaderboards:phase", args=[phase.pk])).content.decode()
    low = phase.shown_score(public.intervals["log_loss"]["low"])
    assert f"[{low:.4f}," in page  # the secondary metric's interval too, rounded for the public


def test_intervals_resample_patients_when_the_test_set_knows_them(phase, team, participant, truth):
    case_ids = phase.test_set.case_ids(Split.PUBLIC)
    patients = {case_id: f"patient-{i // 3}" for i, case_id in enumerate(case_ids)}  # three cases each
    for case in Case.objects.filter(test_set=phase.test_set, case_id__in=case_ids):
        case.patient = patients[case.case_id]
        case.save(update_fields=["patient"])
    submission = submit(phase, participant, truth)
    public = submission.public_evaluation()
    assert public.patient_groups() == patients
    n_resamples = settings.MICA_INTERVAL_RESAMPLES
    by_patient = evaluator.score("classification", public.truth_version.file.path, submission.file.path,
                                 case_ids=case_ids, groups=patients, n_resamples=n_resamples)
    by_case = evaluator.score("classification", public.truth_version.file.path, submission.file.path,
                              case_ids=case_ids, n_resamples=n_resamples)
    assert public.intervals["auc"] == by_patient["intervals"]["auc"]
    assert public.intervals["auc"] != by_case["intervals"]["auc"]


def test_a_degenerate_interval_is_shown_as_such(client, phase, team, participant, truth):
    _, labels = truth
    submit(phase, participant, truth, scores=labels * 0.8 + 0.1)  # perfect: every resample gives AUC 1
    row = LeaderboardSnapshot.rows_for(phase, Split.PUBLIC)[0][0]
    assert row.intervals["auc"]["degenerate"]
    page = client.get(reverse("leaderboards:phase", args=[phase.pk])).content.decode()
    assert "[1.0000, 1.0000]" in page and "degenerate" in page and 'title="Every bootstrap sample' in page


# -- ranking method and bands -------------------------------------------------------------------
def test_the_ranking_settings_are_the_organizers_through_the_api(phase, organizer, participant, team):
    api = APIClient()
    api.force_authenticate(organizer)
    url = f"/api/v1/phases/{phase.pk}/"
    answer = api.patch(url, {"ranking_method": "significance", "ranking_ties": "average", "ranking_alpha": 0.01},
                       format="json")
    assert answer.status_code == 200, answer.content
    assert (answer.json()["ranking_method"], answer.json()["ranking_ties"], answer.json()["ranking_alpha"]) == (
        "significance", "average", 0.01)
    # Bad inputs: an alpha out of (0, 0.5), an unknown method, an unknown tie rule.
    for bad, field in (({"ranking_alpha": 0.7}, "ranking_alpha"), ({"ranking_alpha": 0}, "ranking_alpha"),
                       ({"ranking_method": "vote"}, "ranking_method"), ({"ranking_ties": "first"}, "ranking_ties")):
        answer = api.patch(url, bad, format="json")
        assert answer.status_code == 400 and field in answer.json(), (bad, answer.content)
    api.force_authenticate(participant)
    assert api.patch(url, {"ranking_method": "mean"}, format="json").status_code == 403


def test_the_phase_form_has_the_ranking_settings(client, phase, organizer):
    client.login(username=organizer.username, password=PASSWORD)
    page = client.get(reverse("challenges:edit_phase", args=[phase.pk])).content.decode()
    assert 'name="ranking_method"' in page and 'name="ranking_ties"' in page and 'name="ranking_alpha"' in page


def test_the_worker_stores_the_comparison_and_bands(client, phase, three_teams):
    statistics = LeaderboardSnapshot.statistics_for(phase, Split.PUBLIC)
    comparison = statistics["comparison"]
    assert comparison["names"][-1] == "Weak"
    assert comparison["pairwise"]["significant"]["Strong"]["Weak"]
    assert not comparison["pairwise"]["significant"]["Strong"]["Close"]
    rows = LeaderboardSnapshot.rows_for(phase, Split.PUBLIC)[0]
    bands = {row.team: row.band for row in rows}
    assert bands["Strong"] == bands["Close"] == 1 and bands["Weak"] == 2
    page = client.get(reverse("leaderboards:phase", args=[phase.pk])).content.decode()
    assert 'class="band-start"' in page and "do not differ significantly" in page


def test_a_large_boards_matrices_keep_its_best_teams_and_its_bands_every_pair(client, phase, organizer,
                                                                              three_teams, monkeypatch):
    # Three teams stand for a board larger than PAIRWISE_TEAMS: the stored matrices hold the two
    # best; Weak's band still comes from its test against Close, which they no longer hold.
    monkeypatch.setattr("mica.leaderboards.statistics.PAIRWISE_TEAMS", 2)
    leaderboards_changed(phase)
    refresh_leaderboards(phase.pk)
    comparison = LeaderboardSnapshot.statistics_for(phase, Split.PUBLIC)["comparison"]
    assert comparison["names"] == ["Strong", "Close", "Weak"]
    for matrix in (comparison["pairwise"]["p_values"], comparison["pairwise"]["significant"]):
        assert set(matrix) == {"Strong", "Close"} and all(set(row) == {"Strong", "Close"} for row in matrix.values())
    assert comparison["pairwise"]["teams"] == 2 and comparison["bands"] == {"Strong": 1, "Close": 1, "Weak": 2}
    client.force_login(organizer)
    shown = client.get(f"/api/v1/leaderboards/{phase.pk}/statistics/").json()["comparison"]
    assert shown["pairwise_teams"] == 2 and set(shown["p_values"]) == {"Strong", "Close"}
    assert [team["team"] for team in shown["teams"]] == ["Strong", "Close", "Weak"]
    page = client.get(reverse("leaderboards:significance", args=[phase.pk]))
    assert page.status_code == 200 and "Weak" in page.content.decode()


def test_significance_ranking_gives_tied_teams_one_rank(phase, three_teams):
    phase.ranking_method, phase.ranking_ties = phase.RankingMethod.SIGNIFICANCE, phase.Ties.MIN
    phase.save()
    refresh_leaderboards(phase.pk)
    rows = LeaderboardSnapshot.rows_for(phase, Split.PUBLIC)[0]
    ranks = {row.team: row.rank for row in rows}
    comparison = LeaderboardSnapshot.statistics_for(phase, Split.PUBLIC)["comparison"]
    assert comparison["method"] == "significance"
    assert ranks == {name: comparison["ranks"][name] for name in ranks}
    assert ranks["Weak"] == 3 and ranks["Strong"] == ranks["Close"] == 1  # each beats Weak only


def test_a_significance_rankings_stability_keeps_to_its_time_and_the_page_says_so(client, phase, organizer,
                                                                                    three_teams, settings):
    # A budget every sample fits leaves the samples whole; one no sample fits leaves the floor.
    phase.ranking_method = phase.RankingMethod.SIGNIFICANCE
    phase.save()
    settings.MICA_SIGNIFICANCE_STABILITY_SECONDS = 3600
    refresh_leaderboards(phase.pk)
    statistics = LeaderboardSnapshot.statistics_for(phase, Split.PUBLIC)
    assert statistics["comparison"]["stability"]["n_resamples"] == settings.MICA_RANKING_RESAMPLES
    assert not any("bootstrap samples" in note for note in statistics["notes"])
    settings.MICA_SIGNIFICANCE_STABILITY_SECONDS = 1e-12  # as if each sample took hours
    leaderboards_changed(phase)
    refresh_leaderboards(phase.pk)
    statistics = LeaderboardSnapshot.statistics_for(phase, Split.PUBLIC)
    assert statistics["comparison"]["stability"]["n_resamples"] == 20
    note = (f"Rank stability from 20 bootstrap samples, not {settings.MICA_RANKING_RESAMPLES}: "
            "the significance ranking of 3 teams")
    assert any(n.startswith(note) for n in statistics["notes"])
    client.force_login(organizer)
    assert note in client.get(reverse("leaderboards:significance", args=[phase.pk])).content.decode()


def test_statistics_and_plots_are_never_computed_on_a_page_view(client, phase, three_teams):
    LeaderboardSnapshot.objects.filter(phase=phase).update(statistics=None, plots=None, plots_drawn_at=None)
    client.get(reverse("leaderboards:phase", args=[phase.pk]))
    page = client.get(reverse("leaderboards:significance", args=[phase.pk])).content.decode()
    assert "being computed" in page
    assert LeaderboardSnapshot.statistics_for(phase, Split.PUBLIC) is None
    assert client.get(reverse("leaderboards:plot", args=[phase.pk, "history"])).status_code == 404


def test_the_sweep_sends_a_drawing_whose_message_was_lost(phase, three_teams):
    from datetime import timedelta

    import redis
    from django.utils import timezone

    queue = redis.Redis.from_url(settings.CELERY_BROKER_URL)

    def drawings():
        messages = [json.loads(raw) for raw in queue.lrange("cpu", 0, -1)]
        return [m for m in messages if m["headers"]["task"].endswith(".draw_leaderboard_plots")
                and m["headers"]["argsrepr"] == f"[{phase.pk}]"]

    before = len(drawings())
    LeaderboardSnapshot.objects.filter(phase=phase).update(
        plots_drawn_at=None, computed_at=timezone.now() - timedelta(minutes=10))
    LeaderboardSnapshot.sweep()
    assert len(drawings()) == before + 1
    draw_leaderboard_plots(phase.pk)
    LeaderboardSnapshot.sweep()  # drawn: nothing more to send
    assert len(drawings()) == before + 1


# -- the significance page and its plots --------------------------------------------------------
def test_the_significance_page_shows_the_matrix_the_blob_plot_and_kendalls_tau(client, phase, organizer, three_teams):
    statistics = LeaderboardSnapshot.statistics_for(phase, Split.PUBLIC)
    client.login(username=organizer.username, password=PASSWORD)
    page = client.get(reverse("leaderboards:significance", args=[phase.pk])).content.decode()
    assert 'id="pairwise"' in page and 'class="significant"' in page
    tau = statistics["comparison"]["stability"]["kendall_tau"]["median"]
    assert f"{tau:.3f}" in page
    for name in ("blob", "significance", "roc", "cases", "history"):
        drawn = statistics["plots"][name]
        assert drawn["svg"].lstrip().startswith("<?xml") and "</svg>" in drawn["svg"]
        assert escape(drawn["summary"]) in page  # the one-line summary, readable without the image
        assert drawn["rows"], name
        svg = client.get(reverse("leaderboards:plot", args=[phase.pk, name]))
        assert svg.status_code == 200 and svg["Content-Type"].startswith("image/svg+xml")
    assert client.get(reverse("leaderboards:plot", args=[phase.pk, "nothing"])).status_code == 404


def test_case_level_plots_wait_for_the_end_of_the_phase(client, phase, three_teams):
    """A team's own ROC curve (or per-case dots) would give away the labels of the hidden cases."""
    from datetime import timedelta

    from django.utils import timezone

    statistics = LeaderboardSnapshot.statistics_for(phase, Split.PUBLIC)
    client.login(username="strong", password=PASSWORD)
    page = client.get(reverse("leaderboards:significance", args=[phase.pk])).content.decode()
    assert 'id="case-plots-held"' in page
    assert escape(statistics["plots"]["blob"]["summary"]) in page
    for name in ("roc", "cases"):
        assert escape(statistics["plots"][name]["summary"]) not in page
        assert client.get(reverse("leaderboards:plot", args=[phase.pk, name])).status_code == 404
    phase.ends_at = timezone.now() - timedelta(minutes=1)
    phase.save()
    assert client.get(reverse("leaderboards:plot", args=[phase.pk, "roc"])).status_code == 200
    assert 'id="case-plots-held"' not in client.get(reverse("leaderboards:significance", args=[phase.pk])).content.decode()


def test_the_plots_tables_hold_their_data(phase, three_teams, truth):
    plots = LeaderboardSnapshot.statistics_for(phase, Split.PUBLIC)["plots"]
    public = {e.submission.team.name: e for e in Evaluation.objects.filter(split=Split.PUBLIC).select_related("submission__team")}
    roc = {row[0]: row[1] for row in plots["roc"]["rows"]}
    assert roc == {name: pytest.approx(public[name].metrics["auc"], abs=1e-4) for name in roc}
    blob = {row[0]: row for row in plots["blob"]["rows"]}
    assert blob["Weak"][1] == 3  # median rank over the bootstrap samples
    history = [row for row in plots["history"]["rows"] if row[0] == "Strong"]
    assert history[-1][2] == pytest.approx(public["Strong"].primary_score, abs=1e-4)
    cases = {row[0]: row for row in plots["cases"]["rows"]}
    assert cases["Strong"][1] == len(phase.test_set.case_ids(Split.PUBLIC))


def test_a_team_name_is_text_in_a_plot_never_markup(phase, challenge, truth):
    user = team_of(challenge, "$\\alpha$ <script>alert(1)</script>")
    other = team_of(challenge, "Plain")
    submit(phase, user, truth, signal=2.0)
    submit(phase, other, truth, signal=1.0, seed=4)
    draw_leaderboard_plots(phase.pk)
    svg = LeaderboardSnapshot.statistics_for(phase, Split.PUBLIC)["plots"]["history"]["svg"]
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "$\\alpha$" not in svg.replace("\\$", "")


# -- exports ------------------------------------------------------------------------------------
def test_the_csv_and_json_exports_carry_the_intervals(client, phase, three_teams):
    answer = client.get(reverse("leaderboards:export_csv", args=[phase.pk]))
    assert answer["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.content.decode())))
    assert [row["team"] for row in rows][:1] == ["Strong"]
    assert {"rank", "band", "auc", "auc_low", "auc_high", "auc_degenerate", "log_loss_low"} <= set(rows[0])
    assert float(rows[0]["auc_low"]) <= float(rows[0]["auc"]) <= float(rows[0]["auc_high"])
    data = json.loads(client.get(reverse("leaderboards:export_json", args=[phase.pk])).content)
    assert data["ranking_method"] == "mean" and data["rows"][0]["intervals"]["auc"]["low"] == float(rows[0]["auc_low"])
    assert "submission_uuid" not in data["rows"][0]


def test_the_per_case_table_is_the_long_format_challenger_reads(client, phase, organizer, three_teams):
    client.login(username=organizer.username, password=PASSWORD)
    answer = client.get(reverse("leaderboards:per_case", args=[phase.pk]))
    rows = list(csv.reader(io.StringIO(answer.content.decode())))
    assert rows[0] == ["team", "submission", "case", "metric", "value"]
    n_cases = len(phase.test_set.case_ids(Split.PUBLIC))
    by_team = {}
    for team, _, case_id, metric, value in rows[1:]:
        by_team.setdefault((team, metric), []).append(float(value))
    assert len(by_team[("Strong", "log_loss")]) == n_cases
    public = Submission.objects.get(team__name="Strong").public_evaluation()
    assert np.mean(by_team[("Strong", "log_loss")]) == pytest.approx(public.metrics["log_loss"], rel=1e-6)


# -- roles asked once per request ---------------------------------------------------------------
def test_a_leaderboard_page_asks_for_the_users_roles_once(client, phase, team, participant, truth):
    submit(phase, participant, truth)
    client.login(username=participant.username, password=PASSWORD)
    client.get(reverse("leaderboards:phase", args=[phase.pk]))
    with CaptureQueriesContext(connection) as queries:
        assert client.get(reverse("leaderboards:phase", args=[phase.pk])).status_code == 200
    role_queries = [q["sql"] for q in queries.captured_queries if '"challenges_challengerole"' in q["sql"]]
    assert len(role_queries) == 1, role_queries
