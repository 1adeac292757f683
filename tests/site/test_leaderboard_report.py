"""The challenge report (built by a worker: page + PDF, built again after a corrected truth), and
who may see every new leaderboard page: the standing users, before and after the private
leaderboard is revealed."""

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils.html import escape
from django.utils import timezone

from mica.challenges.models import Team
from mica.evaluations.models import Evaluation, Rescore
from mica.evaluations.tasks import run_evaluation, run_rescore
from mica.leaderboards.models import PhaseReport
from mica.leaderboards.tasks import build_report, draw_leaderboard_plots, refresh_leaderboards
from mica.submissions.models import Submission

from .conftest import PASSWORD, csv_bytes, make_scores, make_truth, make_user, run_evaluations, upload

pytestmark = pytest.mark.django_db

USERS = ["anonymous", "outsider", "rival", "participant", "annotator", "organizer", "co_organizer", "staff"]
ORGANIZERS = {"organizer", "co_organizer", "staff"}
LOGIN = 302


@pytest.fixture
def truth():
    return make_truth(80)


@pytest.fixture
def people(outsider, rival, participant, annotator, organizer, co_organizer, staff, team):
    return {"anonymous": None, "outsider": outsider, "rival": rival, "participant": participant,
            "annotator": annotator, "organizer": organizer, "co_organizer": co_organizer, "staff": staff}


def submit(phase, user, truth, *, signal, seed):
    case_ids, labels = truth
    submission = Submission.create(phase=phase, user=user, uploaded_file=upload("p.csv", csv_bytes(
        ["case_id", "score"], zip(case_ids, make_scores(labels, seed=seed, signal=signal)))))
    run_evaluations(submission)
    return submission


@pytest.fixture
def scored(phase, challenge, team, participant, truth):
    """Three teams scored on both parts."""
    submit(phase, participant, truth, signal=2.5, seed=1)
    for name, signal, seed in (("Second", 2.0, 2), ("Third", 0.3, 3)):
        user = make_user(name.lower())
        challenge.register(user)
        Team.create_for(challenge, user, name)
        submit(phase, user, truth, signal=signal, seed=seed)
    draw_leaderboard_plots(phase.pk)
    return phase


def built_report(phase, user):
    report = PhaseReport.request(phase, user)
    build_report(report.pk)
    report.refresh_from_db()
    return report


# -- the report ---------------------------------------------------------------------------------
def test_one_click_builds_the_report_page_and_pdf(client, scored, organizer):
    phase = scored
    client.login(username=organizer.username, password=PASSWORD)
    answer = client.post(reverse("leaderboards:request_report", args=[phase.pk]))
    assert answer.status_code == 302
    report = PhaseReport.objects.get()
    assert report.status == PhaseReport.Status.QUEUED
    assert PhaseReport.request(phase, organizer) == report  # a second click while it waits queues nothing
    page = client.get(reverse("leaderboards:report", args=[phase.pk])).content.decode()
    assert 'data-status="queued"' in page

    build_report(report.pk)
    report.refresh_from_db()
    assert report.status == PhaseReport.Status.DONE, report.status_reason
    content = report.content
    assert content["split"] == "private"
    sections = dict(content["design"])
    assert dict(sections["Ranking"])["Method"] == phase.get_ranking_method_display()
    assert dict(sections["Participation"])["Teams ranked"] == "3"
    assert {"roc", "cases", "history", "podium", "heatmap", "blob", "significance", "robustness"} <= set(content["plots"])
    # The AUC has no per-case values: it ranks by itself ("mean") and by DeLong tests ("significance").
    assert content["plots"]["robustness"]["columns"] == ["team", "mean", "significance"]
    assert content["per_case"]["columns"] == ["team", "case", "metric", "value"] and content["per_case"]["rows"]

    pdf = client.get(reverse("leaderboards:report_pdf", args=[phase.pk]))
    assert pdf["Content-Type"] == "application/pdf"
    assert b"".join(pdf.streaming_content).startswith(b"%PDF")
    page = client.get(reverse("leaderboards:report", args=[phase.pk])).content.decode()
    for drawn in content["plots"].values():
        assert escape(drawn["summary"]) in page
    svg = client.get(reverse("leaderboards:report_plot", args=[phase.pk, "podium"]))
    assert svg["Content-Type"].startswith("image/svg+xml")


def test_a_corrected_truth_builds_the_report_again_once_rescored(scored, organizer, truth):
    phase = scored
    first = built_report(phase, organizer)
    case_ids, labels = truth
    corrected = labels.copy()
    corrected[2:6] = 1 - corrected[2:6]
    phase.test_set.correct_truth(SimpleUploadedFile("truth.csv", csv_bytes(["case_id", "pneumonia"], zip(
        case_ids, corrected))), user=organizer, note="Four labels fixed.")
    version = phase.test_set.latest_version
    run_rescore(Rescore.objects.get(truth_version=version).pk)
    pending = list(Evaluation.objects.filter(truth_version=version))
    for evaluation in pending[:-1]:
        run_evaluation(evaluation.pk)
    refresh_leaderboards(phase.pk)
    assert PhaseReport.objects.count() == 1  # the re-score has not finished
    run_evaluation(pending[-1].pk)
    refresh_leaderboards(phase.pk)
    again = PhaseReport.objects.exclude(pk=first.pk).get()
    assert again.status == PhaseReport.Status.QUEUED
    build_report(again.pk)
    again.refresh_from_db()
    assert again.status == PhaseReport.Status.DONE and again.truth_version == version


# -- who sees what ------------------------------------------------------------------------------
def expect(allowed, *, denied=403, anonymous=LOGIN):
    return {user: 200 if user in allowed else (anonymous if user == "anonymous" else denied) for user in USERS}


def urls(phase):
    pk = phase.pk
    everyone = expect(set(USERS), anonymous=200)
    private = expect(ORGANIZERS, denied=404, anonymous=404)
    organizers = expect(ORGANIZERS)
    return {
        f"/leaderboards/phases/{pk}/significance/": everyone,
        f"/leaderboards/phases/{pk}/plots/history.svg": everyone,
        f"/leaderboards/phases/{pk}/leaderboard.csv": everyone,
        f"/leaderboards/phases/{pk}/leaderboard.json": everyone,
        f"/leaderboards/phases/{pk}/private/significance/": private,
        f"/leaderboards/phases/{pk}/private/plots/history.svg": private,
        f"/leaderboards/phases/{pk}/private/leaderboard.csv": private,
        f"/leaderboards/phases/{pk}/private/leaderboard.json": private,
        f"/leaderboards/phases/{pk}/per-case.csv": organizers,
        f"/leaderboards/phases/{pk}/private/per-case.csv": organizers,
        f"/leaderboards/phases/{pk}/report/": organizers,
        f"/leaderboards/phases/{pk}/report/report.pdf": organizers,
        f"/leaderboards/phases/{pk}/report/plots/history.svg": organizers,
    }


def check(people, phase, expected_urls):
    """Every user in turn, each with a client of their own; one seeded phase for them all."""
    for who in USERS:
        client = Client()
        if people[who]:
            client.login(username=people[who].username, password=PASSWORD)
        for url, expected in expected_urls.items():
            status = client.get(url).status_code
            assert status == expected[who], f"{who} GET {url}: {status}, expected {expected[who]}"
        reports = PhaseReport.objects.count()
        status = client.post(f"/leaderboards/phases/{phase.pk}/report/build/").status_code
        assert status == (302 if who in ORGANIZERS or who == "anonymous" else 403), f"{who} POST report/build: {status}"
        assert PhaseReport.objects.count() == reports + (who == "organizer")  # then one waits: no second one


def test_who_sees_the_new_pages_before_the_reveal(people, scored, organizer):
    built_report(scored, organizer)
    check(people, scored, urls(scored))


def test_the_private_statistics_once_revealed(people, scored, organizer):
    built_report(scored, organizer)
    scored.ends_at = timezone.now() - timedelta(minutes=1)
    scored.starts_at = scored.ends_at - timedelta(days=2)
    scored.save()
    scored.reveal_private()
    refresh_leaderboards(scored.pk)
    draw_leaderboard_plots(scored.pk)
    revealed = {url: ({u: 200 for u in USERS} if "/private/" in url and "per-case" not in url else expected)
                for url, expected in urls(scored).items()}
    check(people, scored, revealed)


def test_a_participants_only_board_keeps_its_statistics_from_others(client, people, scored):
    scored.visibility = scored.Visibility.PARTICIPANTS
    scored.save()
    refresh_leaderboards(scored.pk)
    draw_leaderboard_plots(scored.pk)
    for who in ("outsider", "participant"):
        client = Client()
        client.login(username=people[who].username, password=PASSWORD)
        for url in (f"/leaderboards/phases/{scored.pk}/significance/",
                    f"/leaderboards/phases/{scored.pk}/plots/history.svg",
                    f"/leaderboards/phases/{scored.pk}/leaderboard.csv"):
            assert client.get(url).status_code == (200 if who == "participant" else 403), (who, url)
