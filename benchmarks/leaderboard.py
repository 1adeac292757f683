"""The leaderboard under a large phase, and re-scoring a phase against the bare evaluator.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mica python benchmarks/leaderboard.py
    python benchmarks/leaderboard.py --teams 100 --submissions 5000 --rescore 50   # quick

Builds, in a throw-away database (``test_<name>`` of DATABASE_URL's, dropped at the end), a
phase with N teams and M scored submissions (two evaluations each: public and private), then:

1. the public and private leaderboard pages: server time (median of several requests, through
   Django's test client, so no network) and the number of SQL queries, at M and at M/10, to show
   that the query count does not grow with the number of submissions;
2. re-scoring: K submissions' evaluations run through the site's own task body, against the
   same files scored by ``evaluator.score`` in a plain loop.

Prints the machine's load average before and after: the figures mean little on a busy machine.
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

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402
from django.contrib.auth.models import User  # noqa: E402
from django.core.files.base import ContentFile  # noqa: E402
from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, setup_test_environment  # noqa: E402
from django.utils import timezone  # noqa: E402

import evaluator  # noqa: E402


def build(n_teams, n_submissions, n_cases, seed=0):
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
                                 ends_at=now + timedelta(days=1), daily_limit=10**6, concurrent_limit=10**6)
    users = User.objects.bulk_create(User(username=f"user{i}") for i in range(n_teams))
    ChallengeRole.objects.bulk_create(ChallengeRole(challenge=challenge, user=u, role=Role.PARTICIPANT) for u in users)
    teams = Team.objects.bulk_create(Team(challenge=challenge, name=f"Team {i:04d}", created_by=u, join_code=f"code{i}")
                                     for i, u in enumerate(users))
    TeamMembership.objects.bulk_create(TeamMembership(challenge=challenge, team=t, user=u) for t, u in zip(teams, users))
    # Every submission points at one stored file: the leaderboard never reads files.
    stored = Submission(phase=phase, team=teams[0], submitted_by=users[0])
    stored.file.save("p.csv", ContentFile(b"case_id,score\n"), save=False)
    owners = rng.integers(0, n_teams, n_submissions)
    submissions = Submission.objects.bulk_create(
        Submission(phase=phase, team=teams[k], submitted_by=users[k], file=stored.file.name, original_filename="p.csv",
                   status=Submission.Status.ACCEPTED, created_at=now - timedelta(minutes=int(i)))
        for i, k in enumerate(owners)
    )
    scores = rng.uniform(0.5, 0.95, (n_submissions, 2))
    Evaluation.objects.bulk_create(
        Evaluation(submission=s, split=split, truth_version=version, status=Evaluation.Status.SUCCEEDED,
                   primary_score=float(scores[i, j]),
                   metrics={"auc": float(scores[i, j]), "auc_ci": [float(scores[i, j]) - 0.05, float(scores[i, j]) + 0.05],
                            "log_loss": 0.5},
                   result={"metrics": {}})
        for i, s in enumerate(submissions) for j, split in enumerate(("public", "private"))
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # what autovacuum does after a bulk load, so the planner knows the sizes
    return phase, organizer, case_ids, labels


def clear():
    from mica.challenges.models import Challenge, Phase
    from mica.evaluations.models import Evaluation
    from mica.submissions.models import Submission

    for model in (Evaluation, Submission, Phase, Challenge):
        model.objects.all().delete()
    User.objects.all().delete()


def page_figures(client, url, repeats):
    client.get(url)  # warm caches and the template
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, response.status_code
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    return statistics.median(times), len(queries)


def rescore_figures(phase, organizer, case_ids, labels, n, seed=0):
    """n real submissions re-scored on a new truth version through the site's task body, against
    evaluator.score on the same files in a loop."""
    from mica.challenges.models import TruthVersion
    from mica.evaluations.models import Evaluation, Rescore
    from mica.evaluations.tasks import run_evaluation, run_rescore
    from mica.submissions.models import Submission

    rng = np.random.default_rng(seed)
    team = phase.challenge.teams.first()
    files = []
    for i in range(n):
        scores = np.clip(labels * 0.3 + rng.uniform(0, 0.7, len(labels)), 0, 1).round(4)
        content = "case_id,score\n" + "".join(f"{c},{s}\n" for c, s in zip(case_ids, scores))
        submission = Submission(phase=phase, team=team, submitted_by=organizer, original_filename=f"{i}.csv",
                                status=Submission.Status.ACCEPTED)
        submission.file.save("p.csv", ContentFile(content.encode()), save=True)
        files.append(submission)
    Submission.objects.exclude(pk__in=[s.pk for s in files]).update(status=Submission.Status.INVALID)
    truth = "case_id,label\n" + "".join(f"{c},{y}\n" for c, y in zip(case_ids, 1 - labels))
    version = TruthVersion.store(phase.test_set, SimpleUploadedFile("t2.csv", truth.encode()), user=organizer)
    start = time.perf_counter()
    rescore = Rescore.start(version, organizer)
    run_rescore(rescore.pk)
    for pk in Evaluation.objects.filter(truth_version=version).values_list("pk", flat=True):
        run_evaluation(pk)
    site = time.perf_counter() - start
    done = Evaluation.objects.filter(truth_version=version, status="succeeded").count()
    assert done == 2 * n, done
    parts = {split: phase.test_set.case_ids(split) for split in ("public", "private")}
    start = time.perf_counter()
    for submission in files:
        for split in ("public", "private"):
            evaluator.score("classification", version.path, submission.file.path, {}, case_ids=parts[split])
    bare = time.perf_counter() - start
    return site, bare, 2 * n


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teams", type=int, default=1000)
    parser.add_argument("--submissions", type=int, default=50_000)
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--rescore", type=int, default=200, help="submissions re-scored (two evaluations each)")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()

    setup_test_environment()
    print(f"load average before: {os.getloadavg()}, cores: {os.cpu_count()}")
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0)
    try:
        rows = []
        for n_submissions in (args.submissions // 10, args.submissions):
            phase, organizer, case_ids, labels = build(args.teams, n_submissions, args.cases)
            participant = Client()
            participant.force_login(User.objects.get(username="user0"))
            organizer_client = Client()
            organizer_client.force_login(organizer)
            public = page_figures(participant, f"/leaderboards/phases/{phase.pk}/", args.repeats)
            private = page_figures(organizer_client, f"/leaderboards/phases/{phase.pk}/private/", args.repeats)
            api = page_figures(participant, f"/api/v1/leaderboards/{phase.pk}/", args.repeats)
            rows.append((n_submissions, public, private, api))
            if n_submissions != args.submissions:
                clear()
        print(f"\nLeaderboard of {args.teams} teams (median of {args.repeats} requests, server time, no network)")
        print(f"{'submissions':>12} {'public page':>14} {'queries':>8} {'private page':>14} {'queries':>8} {'API':>10} {'queries':>8}")
        for n, (pt, pq), (vt, vq), (at, aq) in rows:
            print(f"{n:>12} {pt * 1000:>11.1f} ms {pq:>8} {vt * 1000:>11.1f} ms {vq:>8} {at * 1000:>7.1f} ms {aq:>8}")
        site, bare, n = rescore_figures(phase, organizer, case_ids, labels, args.rescore)
        print(f"\nRe-scoring {n} evaluations of {args.cases} cases on a new truth version")
        print(f"  through the site (Rescore job + evaluation tasks, in process): {site:.2f} s, {n / site:.1f} evaluations/s")
        print(f"  evaluator.score in a loop on the same files:                  {bare:.2f} s, {n / bare:.1f} evaluations/s")
        print(f"  site / bare: {site / bare:.2f}x")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
