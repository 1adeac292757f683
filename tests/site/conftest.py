"""Standing users and a binary-classification challenge with a hidden test set."""

import csv
import io
from datetime import timedelta

import numpy as np
import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from mica.challenges.models import Challenge, ChallengeRole, Phase, Role, Team, TestSet

PASSWORD = "a-long-test-password-42"


def make_user(username, **extra):
    return User.objects.create_user(username, f"{username}@example.org", PASSWORD, **extra)


def csv_bytes(header, rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def make_truth(n_cases, seed=0):
    """Case ids and 0/1 labels with both classes present."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n_cases)
    labels[0], labels[1] = 0, 1
    case_ids = [f"case-{i:05d}" for i in range(n_cases)]
    return case_ids, labels


def make_scores(labels, seed=1, signal=1.0):
    rng = np.random.default_rng(seed)
    return 1 / (1 + np.exp(-(signal * (labels - 0.5) * 2 + rng.normal(0, 1, len(labels)))))


@pytest.fixture
def organizer(db):
    return make_user("olivia")


@pytest.fixture
def participant(db):
    return make_user("paul")


@pytest.fixture
def teammate(db):
    return make_user("tara")


@pytest.fixture
def outsider(db):
    return make_user("oscar")


@pytest.fixture
def annotator(db):
    return make_user("anna")


@pytest.fixture
def staff(db):
    return make_user("stella", is_staff=True)


@pytest.fixture
def co_organizer(challenge):
    user = make_user("cora")
    challenge.add_organizer(user)
    return user


@pytest.fixture
def rival(challenge):
    """A member of another team of the same challenge."""
    user = make_user("rita")
    challenge.register(user)
    Team.create_for(challenge, user, "Rivals")
    return user


@pytest.fixture
def truth():
    return make_truth(40)


@pytest.fixture
def challenge(organizer, annotator, truth):
    challenge = Challenge.objects.create(
        slug="pneumonia",
        title="Pneumonia classification",
        description="Find **pneumonia** on chest X-rays.",
        terms="Do not try to identify patients.",
        task_type="classification",
        state=Challenge.State.PUBLISHED,
        created_by=organizer,
    )
    ChallengeRole.objects.create(challenge=challenge, user=organizer, role=Role.ORGANIZER)
    ChallengeRole.objects.create(challenge=challenge, user=annotator, role=Role.ANNOTATOR)
    case_ids, labels = truth
    truth_file = SimpleUploadedFile("truth.csv", csv_bytes(["case_id", "pneumonia"], zip(case_ids, labels)))
    TestSet.create_from_upload(challenge, "Hidden test set", truth_file, user=organizer, seed=7)
    return challenge


@pytest.fixture
def phase(challenge):
    now = timezone.now()
    return Phase.objects.create(
        challenge=challenge,
        name="Final",
        test_set=challenge.test_sets.get(),
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=30),
        primary_metric="auc",
        secondary_metrics=["log_loss"],
    )


@pytest.fixture
def team(challenge, participant, teammate):
    challenge.register(participant)
    challenge.register(teammate)
    team = Team.create_for(challenge, participant, "Team Paul")
    team.add_member(teammate)
    return team


@pytest.fixture
def predictions(truth):
    case_ids, labels = truth
    return csv_bytes(["case_id", "score"], zip(case_ids, make_scores(labels)))


def upload(name, content):
    return SimpleUploadedFile(name, content, content_type="text/csv")


def run_evaluations(submission):
    """Runs the submission's queued evaluations in this process (a real worker runs the same
    task in test_worker.py) and returns them by part: {"public": ..., "private": ...}."""
    from mica.evaluations.tasks import run_evaluation
    from mica.leaderboards.tasks import refresh_leaderboards

    for evaluation in submission.evaluations.all():
        run_evaluation(evaluation.pk)
    refresh_leaderboards(submission.phase_id)
    return {evaluation.split: evaluation for evaluation in submission.evaluations.all()}


def split_labels(phase, truth, split):
    """Case ids and labels of one part of the phase's test set, in truth order."""
    part = set(phase.test_set.case_ids(split))
    case_ids, labels = truth
    kept = [i for i, case_id in enumerate(case_ids) if case_id in part]
    return [case_ids[i] for i in kept], [int(labels[i]) for i in kept], kept
