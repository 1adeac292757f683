"""The consensus becomes a versioned ground truth handed to a test set; the cases are split into
training and test by patient; the training cases download with their labels.

Two readers box the same cases, an adjudicator decides the case they disagree on, the organizer
splits the cases and hands the consensus over: the new test set's truth holds the fused boxes and
the decision; a later decision handed over again is version 2, and the submissions are re-scored.

Bad inputs tried: a hand-over before any split, a label of the wrong kind for the task, a one-choice
label without its positive option, a test set of another challenge, cases still undecided, a test
set whose cases are not in the dataset, splitting twice, a stratifying label of another project.
"""

import csv
import io
import zipfile
from datetime import timedelta

import numpy as np
import pydicom
import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from PIL import Image
from rest_framework.test import APIClient

from mica.annotations.models import (AnnotationProject, Assignment, CaseSplit, Label, SplitPart, TruthHandover,
                                     consensus_table)
from mica.annotations.api import decide
from mica.challenges.models import Challenge, Phase, TestSet
from mica.evaluations.models import Rescore
from mica.evaluations.tasks import run_evaluation, run_rescore
from mica.submissions.models import Submission

from .conftest import PASSWORD, run_evaluations, upload
from .imaging import ingested_dataset
from .test_annotations import adjudicator, annotator_of, api_for, readers, standing_users  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


@pytest.fixture
def boxes_project(challenge, organizer, readers, adjudicator, tmp_path):  # noqa: F811
    challenge.task_type = Challenge.TaskType.DETECTION
    challenge.save()
    dataset = ingested_dataset(challenge, organizer, tmp_path, case_level="instance")
    project = AnnotationProject.objects.create(dataset=dataset, title="Opacities", readers_per_case=2,
                                               created_by=organizer, seed=3)
    Label.objects.create(project=project, key="pneumonia", title="Pneumonia", kind="choice", options=["no", "yes"])
    Label.objects.create(project=project, key="opacity", title="Opacity", kind="boxes")
    for reader in readers:
        project.add_reader(reader)
    project.add_reader(adjudicator, is_adjudicator=True)
    project.assign()
    return project


def box_on(case, x, y=12, width=30, height=20):
    return {"instance": case.instances.first().uid, "frame": 1, "x": x, "y": y, "width": width, "height": height}


def read_all(project, readers, disagree_on):  # noqa: F811
    """Reader 1 boxes (10, 12, 30, 20), reader 2 the same shifted by 5 px (IoU 0.71: fused at
    x = 12.5), except on `disagree_on`, where reader 2's box lies elsewhere; pneumonia on every other case."""
    yes = pneumonia_cases(project)
    for index, reader in enumerate(readers):
        for assignment in Assignment.objects.filter(project=project, reader__user=reader):
            case = assignment.case
            box = box_on(case, 60, 60) if index == 1 and case.case_id == disagree_on else box_on(case, 10 + 5 * index)
            answer = "yes" if case.case_id in yes else "no"
            assignment.save_answers({"pneumonia": answer, "opacity": [box]}, submit=True)


def pneumonia_cases(project):
    return set(sorted(project.dataset.cases.values_list("case_id", flat=True))[::2])


def truth_rows(version):
    with version.file.open("rb") as handle:
        return list(csv.DictReader(io.StringIO(handle.read().decode())))


def test_the_consensus_becomes_a_test_set_then_a_new_version_that_rescores(
        boxes_project, readers, adjudicator, organizer, participant, team):  # noqa: F811
    project = boxes_project
    opacity = project.labels.get(key="opacity")
    case_ids = sorted(project.dataset.cases.values_list("case_id", flat=True))
    with pytest.raises(ValidationError, match="Split the cases into training and test first"):
        TruthHandover.hand_over(project, opacity, user=organizer, name="Boxes")
    # Three patients: one with four images (CT slices and a cine), two with one radiograph each.
    split = CaseSplit.make(project, test_fraction=0.8, private_fraction=0.5, user=organizer, seed=11)
    with pytest.raises(ValidationError, match="already split"):
        CaseSplit.make(project, test_fraction=0.5, private_fraction=0.5, user=organizer)
    patients = dict(project.dataset.cases.values_list("case_id", "patient_pseudonym"))
    test_cases = split.case_ids(SplitPart.TEST)
    train_cases = split.case_ids(SplitPart.TRAIN)
    assert sorted(test_cases + train_cases) == case_ids and (len(test_cases), len(train_cases)) == (5, 1)
    assert not {patients[c] for c in test_cases} & {patients[c] for c in train_cases}  # by patient
    disputed = test_cases[0]
    read_all(project, readers, disputed)
    undecided = [row["case"].case_id for row in consensus_table(project) if row["undecided"]]
    assert undecided == [disputed]

    with pytest.raises(ValidationError, match=r"1 waiting for adjudication \(e\.g\. '" + disputed.replace(".", r"\.")):
        TruthHandover.hand_over(project, opacity, user=organizer, name="Boxes")
    with pytest.raises(ValidationError, match="makes a classification truth, but this challenge's task is detection"):
        TruthHandover.hand_over(project, project.labels.get(key="pneumonia"), user=organizer, name="Boxes")
    taken = next(row for row in consensus_table(project) if row["case"].case_id == disputed)["by_reader"]
    second_readers_box = next(answers["opacity"] for reader, answers in taken.items() if reader.user == readers[1])
    decide(project, adjudicator, disputed, {"opacity": second_readers_box})

    handover = TruthHandover.hand_over(project, opacity, user=organizer, name="Consensus boxes")
    test_set = handover.version.test_set
    assert (test_set.name, handover.version.number, handover.n_cases) == ("Consensus boxes", 1, len(test_cases))
    assert sorted(test_set.case_ids()) == test_cases and test_set.split_seed == 11 and test_set.split_grouped
    rows = {row["patientId"]: row for row in truth_rows(handover.version)}
    assert rows[disputed]["x"] == "60" and rows[disputed]["Target"] == "1"
    fused = next(case for case in test_cases if case != disputed)
    assert (rows[fused]["x"], rows[fused]["width"]) == ("12.5", "30")  # the fused box of the two readers

    now = timezone.now()
    phase = Phase.objects.create(challenge=project.challenge, name="Boxes", test_set=test_set, primary_metric="map",
                                 starts_at=now - timedelta(days=1), ends_at=now + timedelta(days=9))
    predictions = "patientId,PredictionString\n" + "".join(
        f"{case},0.9 {row['x'] or 0} {row['y'] or 0} {row['width'] or 1} {row['height'] or 1}\n"
        for case, row in rows.items())
    submission = Submission.create(phase=phase, user=participant, uploaded_file=upload("p.csv", predictions.encode()))
    from mica.submissions.tasks import validate_submission

    validate_submission(submission.pk)
    first = run_evaluations(submission)
    assert all(evaluation.primary_score == pytest.approx(1.0) for evaluation in first.values())

    # The adjudicator changes their mind: handed over again, it is version 2 and everything is re-scored.
    first_readers_box = next(answers["opacity"] for reader, answers in taken.items() if reader.user == readers[0])
    decide(project, adjudicator, disputed, {"opacity": first_readers_box})
    again = TruthHandover.hand_over(project, opacity, user=organizer, test_set=test_set, note="Case re-adjudicated.")
    assert again.version.number == 2 and again.version.note == "Case re-adjudicated."
    assert {row["patientId"]: row for row in truth_rows(again.version)}[disputed]["x"] == "10"
    rescore = Rescore.objects.get(truth_version=again.version)
    run_rescore(rescore.pk)
    for evaluation in again.version.evaluations.all():
        run_evaluation(evaluation.pk)
    rescored = {evaluation.split: evaluation for evaluation in again.version.evaluations.all()}
    part_of_disputed = test_set.cases.get(case_id=disputed).split
    assert rescored[part_of_disputed].primary_score < 1.0  # the prediction now misses the re-decided box


def test_the_hand_over_refuses_what_does_not_fit(boxes_project, readers, organizer, challenge):  # noqa: F811
    project = boxes_project
    read_all(project, readers, disagree_on=None)
    opacity = project.labels.get(key="opacity")
    classification = TestSet.objects.get(challenge=challenge)  # the fixture's 40 cases, none of this dataset
    with pytest.raises(ValidationError, match=r"40 case\(s\) of the test set are not in this project's dataset"):
        TruthHandover.hand_over(project, opacity, user=organizer, test_set=classification)
    other = Challenge.objects.create(slug="other", title="Other", task_type="detection", created_by=organizer)
    foreign = TestSet(challenge=other, name="x")
    foreign.save()
    with pytest.raises(ValidationError, match="another challenge"):
        TruthHandover.hand_over(project, opacity, user=organizer, test_set=foreign)
    challenge.task_type = "classification"
    challenge.save()
    with pytest.raises(ValidationError, match="Choose which option of 'pneumonia' is positive"):
        TruthHandover.hand_over(project, project.labels.get(key="pneumonia"), user=organizer, name="x")
    other_project = AnnotationProject.objects.create(dataset=project.dataset, title="B", created_by=organizer)
    foreign_label = Label.objects.create(project=other_project, key="x", title="X", kind="choice", options=["a", "b"])
    with pytest.raises(ValidationError, match="Stratify by a choice or number label of this project"):
        CaseSplit.make(project, test_fraction=0.5, private_fraction=0.5, user=organizer, stratified_by=foreign_label)
    assert not TruthHandover.objects.exists() and not CaseSplit.objects.exists()


def test_a_classification_hand_over_on_the_page_and_the_training_download(
        client, boxes_project, readers, organizer, challenge, tmp_path):  # noqa: F811
    project = boxes_project
    challenge.task_type = "classification"
    challenge.save()
    read_all(project, readers, disagree_on=None)
    client.login(username=organizer.username, password=PASSWORD)
    url = f"/annotations/{project.pk}/truth/"
    assert "Split the cases" in client.get(url).content.decode()
    pneumonia = project.labels.get(key="pneumonia")
    response = client.post(url, {"split": "", "test_fraction": "0.8", "private_fraction": "0.5", "seed": "11"},
                           follow=True)
    assert "Cases split: 1 for training, 5 for testing." in response.content.decode()
    split = CaseSplit.objects.get(project=project)
    assert split.stratified_by is None and split.seed == 11
    response = client.post(url, {"hand_over": "", "label": pneumonia.pk, "positive": "yes", "name": "Read by two"},
                           follow=True)
    page = response.content.decode()
    assert "Read by two: truth version 1 stored (5 cases)" in page, page
    version = TestSet.objects.get(name="Read by two").latest_version
    yes = pneumonia_cases(project)
    assert truth_rows(version) == [{"case_id": c, "pneumonia": str(int(c in yes))} for c in split.case_ids(SplitPart.TEST)]

    # The training download: labels in the evaluator's format, then each training case's images.
    for image_format in ("dicom", "png"):
        files = list(split.training_files(pneumonia, image_format=image_format, positive="yes"))
        assert files[0].name == "labels.csv"
        assert files[0].open().read().decode() == "case_id,pneumonia\n" + "".join(
            f"{c},{int(c in yes)}\n" for c in split.case_ids(SplitPart.TRAIN))
        images = files[1:]
        assert {f.name.split("/")[1] for f in images} == set(split.case_ids(SplitPart.TRAIN))
        for item in images:
            with item.open() as handle:
                content = handle.read()
            if image_format == "dicom":
                assert item.name.endswith(".dcm") and pydicom.dcmread(io.BytesIO(content)).PatientID.startswith("MICA-")
            else:
                assert item.name.endswith(".png") and Image.open(io.BytesIO(content)).format == "PNG"
    handed_over = [item.name for item in split.handed_over_training_files(image_format="png")]
    assert handed_over == [item.name for item in split.training_files(pneumonia, image_format="png", positive="yes")]
    with pytest.raises(ValueError, match="image_format must be one of dicom, png"):
        list(split.training_files(pneumonia, image_format="jpeg", positive="yes"))


def test_a_stratified_split_is_the_evaluators_split_of_the_consensus_by_patient(
        boxes_project, readers, organizer):  # noqa: F811
    import evaluator

    project = boxes_project
    read_all(project, readers, disagree_on=None)
    pneumonia = project.labels.get(key="pneumonia")
    split = CaseSplit.make(project, test_fraction=0.5, private_fraction=0.5, user=organizer, stratified_by=pneumonia)
    patients = dict(project.dataset.cases.values_list("case_id", "patient_pseudonym"))
    yes = pneumonia_cases(project)
    expected = evaluator.split_cases(list(patients), strata={c: repr("yes" if c in yes else "no") for c in patients},
                                     groups=patients, private_fraction=0.5, seed=split.seed)
    assert split.parts == {c: "test" if part == "private" else "train" for c, part in expected.items()}
    assert 0 <= split.seed < 2**31 and split.stratified_by == pneumonia


def test_masks_are_stapled_and_handed_over_as_pngs(challenge, organizer, readers, tmp_path):  # noqa: F811
    from mica.annotations.curation_calls import mask_from_runs, runs_of

    challenge.task_type = "segmentation"
    challenge.save()
    dataset = ingested_dataset(challenge, organizer, tmp_path, case_level="instance")
    for case in dataset.cases.all():  # one truth holds 2-D masks or 3-D ones: keep the single-frame images
        if int(pydicom.dcmread(case.instances.first().file.path, stop_before_pixels=True).get("NumberOfFrames", 1)) > 1:
            case.delete()
    project = AnnotationProject.objects.create(dataset=dataset, title="Lungs", readers_per_case=2, created_by=organizer)
    label = Label.objects.create(project=project, key="lung", title="Lung", kind="masks")
    for reader in readers:
        project.add_reader(reader)
    project.assign()
    for index, reader in enumerate(readers):
        for assignment in Assignment.objects.filter(project=project, reader__user=reader):
            frame = assignment.case.instances.first()
            header = pydicom.dcmread(frame.file.path, stop_before_pixels=True)
            mask = np.zeros((header.Rows, header.Columns), bool)
            mask[5:15, 5 + index:20 + index] = True
            assert np.array_equal(mask_from_runs({"rows": header.Rows, "columns": header.Columns,
                                                  "rle": runs_of(mask)}), mask)
            assignment.save_answers({"lung": [{"instance": frame.uid, "frame": 1, "rows": int(header.Rows),
                                               "columns": int(header.Columns), "rle": runs_of(mask)}]}, submit=True)
    split = CaseSplit.make(project, test_fraction=0.8, private_fraction=0.5, user=organizer, seed=11)
    handover = TruthHandover.hand_over(project, label, user=organizer, name="Lungs")
    with zipfile.ZipFile(handover.version.file.path) as archive:
        names = sorted(archive.namelist())
        assert names == sorted(f"{case}.png" for case in split.case_ids(SplitPart.TEST))
        saved = np.asarray(Image.open(io.BytesIO(archive.read(names[0]))))
    # Both readers marked rows 5–14; columns 6–19 by both, 5 and 20 by one each: STAPLE keeps the
    # pixels both marked (each reader equally reliable: a one-reader pixel has probability 0.5 or less).
    expected = np.zeros_like(saved)
    expected[5:15, 6:20] = 1
    assert np.array_equal(saved, expected)


def test_permissions_of_the_truth_page_and_endpoints(client, boxes_project, standing_users):  # noqa: F811
    project = boxes_project
    organizers = {"organizer", "co-organizer", "staff"}
    for name, user in standing_users.items():
        client.logout()
        api = APIClient()
        if user:
            client.login(username=user.username, password=PASSWORD)
            api.force_authenticate(user)
        page = client.get(f"/annotations/{project.pk}/truth/")
        expected = 302 if user is None else 200 if name in organizers else 403
        assert page.status_code == expected, (name, page.status_code)
        for url in (f"/api/v1/annotation-projects/{project.pk}/split/",
                    f"/api/v1/annotation-projects/{project.pk}/handovers/"):
            status = api.get(url).status_code
            if user is None:
                assert status in (401, 403), (name, url)
            elif name in organizers:
                assert status in (200, 404) and (status == 200) == url.endswith("handovers/"), (name, url, status)
            else:
                assert status in (403, 404), (name, url, status)
            posted = api.post(url, {}, format="json").status_code
            assert posted == (400 if name in organizers else 401 if user is None else posted), (name, url, posted)
            if name not in organizers:
                assert posted in (401, 403, 404), (name, url, posted)
    assert not CaseSplit.objects.exists() and not TruthHandover.objects.exists()
