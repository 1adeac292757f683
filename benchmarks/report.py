"""The statistics of a large leaderboard and its challenge report: time of the worker's steps.

    python benchmarks/report.py                         # 100 teams, 400 cases, 3 runs
    python benchmarks/report.py --teams 30 --repeats 1  # quick

Builds, in a throw-away database (``test_<name>`` of DATABASE_URL's, dropped at the end), a
binary-classification phase with N teams, each with one submission really scored by
``evaluator.score`` on both parts (seeded; not timed), then times, as the ``cpu`` worker runs
them in process:

1. a board refresh: both boards' rows and ``evaluator.compare`` (the phase's method, pairwise
   tests, rank stability, robustness);
2. the drawing of both boards' plots (matplotlib → SVG), the task that follows a refresh;
3. the challenge report: its content (compare again, podium, heatmap, blob, significance map,
   robustness, per-case excerpt) and the PDF (WeasyPrint).

Each figure is the median of --repeats runs; the load average is printed before and after.
Bounded: every plot draws at most the best 20 teams, so the drawing does not grow with N.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "platform"), str(ROOT)]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
os.environ.setdefault("MICA_VAR_DIR", tempfile.mkdtemp(prefix="mica-bench-"))
os.environ.setdefault("MICA_RANKING_RESAMPLES", "1000")  # the site's default (the test settings use fewer)

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.files.base import ContentFile  # noqa: E402
from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402

import evaluator  # noqa: E402


def build(n_teams, n_cases, seed=0):
    from mica.challenges.models import Challenge, ChallengeRole, Phase, Role, Team, TeamMembership, TestSet
    from mica.evaluations.models import Evaluation
    from mica.submissions.models import Submission

    rng = np.random.default_rng(seed)
    organizer = User.objects.create_user("organizer", password="x")
    challenge = Challenge.objects.create(slug="bench", title="Bench", task_type="classification",
                                         state=Challenge.State.PUBLISHED, created_by=organizer)
    challenge.add_organizer(organizer)
    case_ids = [f"case-{i:06d}" for i in range(n_cases)]
    labels = rng.integers(0, 2, n_cases)
    labels[:2] = [0, 1]
    truth = "case_id,label\n" + "".join(f"{c},{y}\n" for c, y in zip(case_ids, labels))
    test_set = TestSet.create_from_upload(challenge, "Hidden", SimpleUploadedFile("t.csv", truth.encode()),
                                          user=organizer, seed=1)
    version = test_set.latest_version
    now = timezone.now()
    phase = Phase.objects.create(challenge=challenge, name="Final", test_set=test_set, primary_metric="auc",
                                 secondary_metrics=["log_loss"], starts_at=now - timedelta(days=30),
                                 ends_at=now + timedelta(days=1))
    users = User.objects.bulk_create(User(username=f"user{i}") for i in range(n_teams))
    ChallengeRole.objects.bulk_create(ChallengeRole(challenge=challenge, user=u, role=Role.PARTICIPANT) for u in users)
    teams = Team.objects.bulk_create(Team(challenge=challenge, name=f"Team {i:03d}", created_by=u, join_code=f"code{i}")
                                     for i, u in enumerate(users))
    TeamMembership.objects.bulk_create(TeamMembership(challenge=challenge, team=t, user=u) for t, u in zip(teams, users))
    parts = {split: test_set.case_ids(split) for split in ("public", "private")}
    for i, (team, user) in enumerate(zip(teams, users)):
        signal = rng.uniform(0.2, 2.5)
        scores = 1 / (1 + np.exp(-(signal * (labels - 0.5) * 2 + rng.normal(0, 1, n_cases))))
        submission = Submission(phase=phase, team=team, submitted_by=user, original_filename="p.csv",
                                status=Submission.Status.ACCEPTED)
        content = "case_id,score\n" + "".join(f"{c},{s:.5f}\n" for c, s in zip(case_ids, scores))
        submission.file.save("p.csv", ContentFile(content.encode()), save=True)
        for split, ids in parts.items():
            result = evaluator.score("classification", version.path, submission.file.path, case_ids=ids,
                                     n_resamples=200)
            Evaluation.objects.create(submission=submission, split=split, truth_version=version,
                                      status=Evaluation.Status.SUCCEEDED, result=result, metrics=result["metrics"],
                                      intervals=result.get("intervals"), primary_score=result["metrics"]["auc"])
    return phase, organizer


def timed(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teams", type=int, default=100)
    parser.add_argument("--cases", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    setup_test_environment()
    print(f"load average before: {os.getloadavg()}, cores: {os.cpu_count()}")
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0)
    try:
        from mica.leaderboards.models import LeaderboardSnapshot, PhaseReport

        start = time.perf_counter()
        phase, organizer = build(args.teams, args.cases)
        print(f"seeded {args.teams} teams × 2 parts of {args.cases // 2} cases in {time.perf_counter() - start:.1f} s")
        refresh, refresh_runs = timed(lambda: LeaderboardSnapshot.refresh(phase), args.repeats)

        def draw():
            LeaderboardSnapshot.objects.filter(phase=phase).update(plots_drawn_at=None)
            LeaderboardSnapshot.draw(phase)

        drawing, drawing_runs = timed(draw, args.repeats)

        def report():
            row = PhaseReport.objects.create(phase=phase, truth_version=phase.test_set.latest_version,
                                             requested_by=organizer)
            assert row.claim()
            row.build()
            row.refresh_from_db()
            assert row.status == PhaseReport.Status.DONE, row.status_reason
            return row

        built, report_runs = timed(report, args.repeats)
        last = PhaseReport.objects.filter(status=PhaseReport.Status.DONE).first()
        print(f"\n{args.teams} teams, {args.cases} cases, {settings.MICA_RANKING_RESAMPLES} bootstrap samples "
              f"(median of {args.repeats}; runs in s)")
        print(f"  board refresh (both parts: rows, compare):        {refresh:7.2f} s  {[round(t, 2) for t in refresh_runs]}")
        print(f"  board plots (both parts: 5 plots each, SVG):      {drawing:7.2f} s  {[round(t, 2) for t in drawing_runs]}")
        print(f"  challenge report (content + PDF):                  {built:7.2f} s  {[round(t, 2) for t in report_runs]}")
        print(f"  report: {len(last.content['plots'])} plots, PDF {last.pdf.size / 1024:.0f} KiB")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
