"""Regression and detection challenges go through the same submission path as classification."""

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from sklearn.metrics import mean_absolute_error

from mica.challenges.models import Challenge, Phase, Team, TestSet
from mica.leaderboards.ranking import leaderboard
from mica.submissions.models import Submission

from .conftest import csv_bytes, make_user, run_evaluations, upload

pytestmark = pytest.mark.django_db


def open_phase(challenge, test_set, primary_metric):
    now = timezone.now()
    return Phase.objects.create(challenge=challenge, name="Final", test_set=test_set, primary_metric=primary_metric,
                                starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=1),
                                concurrent_limit=10)


def new_challenge(organizer, slug, task_type):
    return Challenge.objects.create(slug=slug, title=slug, task_type=task_type, created_by=organizer,
                                    state=Challenge.State.PUBLISHED)


def open_challenge(organizer, task_type, primary_metric, truth_header, truth_rows):
    """A challenge with no private part, so that the public part is the whole truth."""
    challenge = new_challenge(organizer, task_type, task_type)
    test_set = TestSet.create_from_upload(challenge, "Hidden", upload("truth.csv", csv_bytes(truth_header, truth_rows)),
                                          user=organizer, private_fraction=0)
    return open_phase(challenge, test_set, primary_metric)


def public_score(submission):
    public = run_evaluations(submission)["public"]
    assert public.status == "succeeded", public.status_reason
    return public


def team_member(challenge, name):
    user = make_user(name)
    challenge.register(user)
    Team.create_for(challenge, user, f"Team {name}")
    return user


def test_a_bone_age_challenge_ranks_the_lowest_mae_first(organizer):
    rng = np.random.default_rng(7)
    ages = rng.uniform(10, 220, 60).round(1)
    case_ids = [f"hand-{i}" for i in range(60)]
    phase = open_challenge(organizer, "regression", "mae", ["case_id", "value"], zip(case_ids, ages))
    assert phase.test_set.latest_version.predictions_header == "case_id,value"
    maes = {}
    for name, noise in (("close", 3.0), ("far", 20.0)):
        guesses = (ages + rng.normal(0, noise, 60)).round(2)
        submission = Submission.create(phase=phase, user=team_member(phase.challenge, name),
                                       uploaded_file=upload("p.csv", csv_bytes(["case_id", "value"], zip(case_ids, guesses))))
        maes[name] = mean_absolute_error(ages, guesses)
        assert public_score(submission).primary_score == pytest.approx(maes[name], abs=1e-9)
    assert [row.team for row in leaderboard(phase)] == ["Team close", "Team far"]


def test_a_pneumonia_detection_challenge_is_scored_by_map(organizer):
    truth = [["p1", 10, 10, 50, 50, 1], ["p2", "", "", "", "", 0], ["p3", 100, 100, 40, 60, 1]]
    phase = open_challenge(organizer, "detection", "map", ["patientId", "x", "y", "width", "height", "Target"], truth)
    assert phase.test_set.latest_version.predictions_header == "patientId,PredictionString"
    predictions = [["p1", "0.9 10 10 50 50"], ["p2", ""], ["p3", "0.8 300 300 10 10"]]
    submission = Submission.create(
        phase=phase, user=team_member(phase.challenge, "boxes"),
        uploaded_file=upload("p.csv", csv_bytes(["patientId", "PredictionString"], predictions)),
    )
    # p1 is a perfect hit (1), p3 a miss (0), p2 has neither truth nor predictions: left out.
    assert public_score(submission).primary_score == pytest.approx(0.5)


def test_a_bad_prediction_string_names_its_row(organizer):
    phase = open_challenge(organizer, "detection", "map", ["patientId", "x", "y", "width", "height", "Target"],
                           [["p1", 10, 10, 50, 50, 1]])
    with pytest.raises(ValidationError) as raised:
        Submission.create(phase=phase, user=team_member(phase.challenge, "bad"),
                          uploaded_file=upload("boxes.csv", b"patientId,PredictionString\np1,0.9 10 10 fifty 50\n"))
    assert "boxes.csv, row 2" in " ".join(raised.value.messages)
    assert not Submission.objects.exists()


def masks_zip(masks, folder=""):
    """A .zip of PNG masks: {case_id: 2-D array}."""
    import io
    import zipfile

    from PIL import Image

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for case_id, mask in masks.items():
            png = io.BytesIO()
            Image.fromarray(mask.astype(np.uint8)).save(png, format="PNG")
            archive.writestr(f"{folder}{case_id}.png", png.getvalue())
    return buffer.getvalue()


def square(size, top, left, side):
    mask = np.zeros((size, size), np.uint8)
    mask[top:top + side, left:left + side] = 1
    return mask


@pytest.fixture
def segmentation_phase(organizer):
    truth = {"lung-1": square(32, 4, 4, 10), "lung-2": square(32, 10, 10, 8)}
    challenge = new_challenge(organizer, "lungs", "segmentation")
    test_set = TestSet.create_from_upload(challenge, "Hidden", upload("truth.zip", masks_zip(truth, "truth/")),
                                          user=organizer, private_fraction=0)
    return open_phase(challenge, test_set, "dice")


def test_a_segmentation_challenge_takes_a_zip_of_masks(segmentation_phase):
    from mica.submissions.tasks import validate_submission

    phase = segmentation_phase
    assert phase.test_set.case_ids() == ["lung-1", "lung-2"]
    # lung-1 shifted by one pixel, lung-2 missing: Dice 0 for it.
    submission = Submission.create(phase=phase, user=team_member(phase.challenge, "seg"),
                                   uploaded_file=upload("mine.zip", masks_zip({"lung-1": square(32, 5, 4, 10)})))
    validate_submission(submission.pk)  # a .zip is checked by a worker, never in the request
    public = public_score(submission)
    overlap = 9 * 10
    expected_dice_1 = 2 * overlap / (100 + 100)
    assert public.result["missing_cases"] == 1
    assert public.primary_score == pytest.approx((expected_dice_1 + 0.0) / 2)


BAD_MASK_ZIPS = {
    "a mask of the wrong size": (lambda: masks_zip({"lung-1": np.zeros((16, 16))}), "mine.zip, entry 'lung-1.png'"),
    "an unknown case": (lambda: masks_zip({"kidney-9": square(32, 0, 0, 3)}), "kidney-9"),
    "not a zip": (lambda: b"plain text", "nor a .zip archive"),
    "a path escaping the folder": (lambda: _zip_with_entry("../../lung-1.png", b"x"), ".."),
}


def _zip_with_entry(name, content):
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, content)
    return buffer.getvalue()


@pytest.mark.parametrize("make_zip, expected", BAD_MASK_ZIPS.values(), ids=BAD_MASK_ZIPS.keys())
def test_a_bad_zip_of_masks_is_validated_by_a_worker_and_named(segmentation_phase, make_zip, expected):
    """A .zip is never unpacked in the web request: a worker reads it in place and names the
    entry at fault, and no file of it is ever written out."""
    from mica.submissions.tasks import validate_submission

    phase = segmentation_phase
    user = team_member(phase.challenge, "seg")
    folder = Path(phase.test_set.latest_version.file.path).parents[3] / "submissions"
    files_before = {p.name for p in folder.rglob("*") if p.is_file()}
    submission = Submission.create(phase=phase, user=user, uploaded_file=upload("mine.zip", make_zip()))
    assert submission.status == Submission.Status.RECEIVED and not submission.evaluations.exists()
    validate_submission(submission.pk)
    submission.refresh_from_db()
    assert submission.status == Submission.Status.INVALID
    problems = " ".join(submission.problems)
    assert expected in problems, problems
    assert str(folder) not in problems  # no server path in what the team reads
    files_after = {p.name for p in folder.rglob("*") if p.is_file()}
    assert files_after - files_before == {submission.file.name.rsplit("/", 1)[1]}  # the upload alone, nothing unpacked
    assert phase.remaining_submissions(challenge_team(phase, user)) == phase.daily_limit


def challenge_team(phase, user):
    return phase.challenge.team_of(user)
