"""Model-assisted reading: the organizer loads a model's boxes, readers accept, fix or reject them,
and the agreement page and API say how much they changed.

Bad inputs tried: a CSV with a wrong header, an unknown patientId, a PredictionString of 4 numbers,
a multi-image case, a choice label, proposals for a label readers already answered, a zip entry
that is not a case's PNG, a mask of the wrong size.
"""

import io
import zipfile

import numpy as np
import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from mica.annotations.models import Assignment, Label
from mica.annotations.proposals import load_proposals

from .conftest import PASSWORD
from .test_annotation_truth import boxes_project  # noqa: F401 (fixture)
from .test_annotations import adjudicator, api_for, readers, standing_users  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


def single_image_cases(project):
    return sorted(case.case_id for case in project.dataset.cases.all() if case.instances.count() == 1
                  and case.instances.first().file.size < 200_000 and _frames(case) == 1)


def _frames(case):
    import pydicom

    return int(pydicom.dcmread(case.instances.first().file.path, stop_before_pixels=True).get("NumberOfFrames", 1))


def csv_file(text, name="baseline.csv"):
    return SimpleUploadedFile(name, text.encode())


def test_readers_accept_fix_or_reject_proposals_and_the_changes_are_reported(
        client, boxes_project, readers, organizer):  # noqa: F811
    project = boxes_project
    opacity = project.labels.get(key="opacity")
    first, second = single_image_cases(project)[:2]
    text = ("patientId,PredictionString\n"
            f"{first},0.9 10 10 40 30 0.2 100 100 5 5\n"  # the second box is under the 0.5 confidence
            f"{second},0.8 50 60 20 20\n")
    proposal_set = load_proposals(project, opacity, csv_file(text), user=organizer, name="Baseline v1")
    assert proposal_set.proposals.count() == 2
    mine = Assignment.objects.get(project=project, reader__user=readers[0], case__case_id=first)
    proposed = api_for(readers[0]).get(f"/api/v1/annotation-assignments/{mine.pk}/").json()["proposals"]["opacity"]
    assert [(m["x"], m["y"], m["width"], m["height"]) for m in proposed] == [(10, 10, 40, 30)]
    assert proposed[0]["proposal"].startswith(f"p{proposal_set.pk}-")

    def proposals_of(case_id):
        return project.proposal_sets.get().proposals.get(case__case_id=case_id).marks

    # Reader 1 keeps the first case's box and rejects the second case's; reader 2 moves the first
    # case's box by 10 px (IoU 0.5) and adds one, and keeps the second case's.
    moved = {**proposals_of(first)[0], "x": 20}
    added = {**{k: v for k, v in moved.items() if k != "proposal"}, "x": 150, "y": 150}
    answers = {(readers[0], first): proposals_of(first), (readers[0], second): [],
               (readers[1], first): [moved, added], (readers[1], second): proposals_of(second)}
    for (reader, case_id), marks in answers.items():
        assignment = Assignment.objects.get(project=project, reader__user=reader, case__case_id=case_id)
        response = api_for(reader).put(f"/api/v1/annotation-assignments/{assignment.pk}/answers/",
                                       {"answers": {"opacity": marks}, "submit": True}, format="json")
        assert response.status_code == 200, response.content
    report = api_for(organizer).get(f"/api/v1/annotation-projects/{project.pk}/agreement/").json()["proposals"]
    assert [(item["label"], item["model"]) for item in report] == [("opacity", "Baseline v1")]
    per_reader = {row["reader"]: row for row in report[0]["per_reader"]}
    assert per_reader[readers[0].username] | {} == {"reader": readers[0].username, "cases": 2, "accepted": 1,
                                                    "modified": 0, "rejected": 1, "added": 0, "mean_iou": None}
    second_reader = per_reader[readers[1].username]
    assert (second_reader["accepted"], second_reader["modified"], second_reader["rejected"], second_reader["added"]) == (
        1, 1, 0, 1)
    assert second_reader["mean_iou"] == pytest.approx(30 * 30 / (2 * 40 * 30 - 30 * 30))  # the 10-px shift
    per_case = {(row["case_id"], row["reader"]): row for row in report[0]["per_case"]}
    assert per_case[(first, readers[1].username)]["ious"] == [pytest.approx(0.6, abs=1e-4)]

    client.login(username=organizer.username, password=PASSWORD)
    page = client.get(f"/annotations/{project.pk}/agreement/").content.decode()
    assert "proposals of Baseline v1" in page and "0.600" in page
    with pytest.raises(ValidationError, match="Readers have already answered this label"):
        load_proposals(project, opacity, csv_file(text), user=organizer, name="Baseline v2")


def test_bad_proposal_files_are_named_and_store_nothing(boxes_project, organizer):  # noqa: F811
    project = boxes_project
    opacity = project.labels.get(key="opacity")
    cases = single_image_cases(project)
    multi = next(case.case_id for case in project.dataset.cases.all() if _frames(case) > 1)
    for text, expected in (
            ("case_id,score\nx,1\n", "wrong header"),
            ("patientId,PredictionString\n2.25.999,0.9 1 1 5 5\n", "unknown patientId"),
            (f"patientId,PredictionString\n{cases[0]},0.9 1 1 5\n", "expected groups of 5"),
            (f"patientId,PredictionString\n{multi},0.9 1 1 5 5\n", "proposals are for one-image cases")):
        with pytest.raises(ValidationError) as error:
            load_proposals(project, opacity, csv_file(text), user=organizer, name="Bad")
        assert expected in str(error.value), (expected, error.value)
    with pytest.raises(ValidationError, match="Proposals are for a boxes or masks label"):
        load_proposals(project, project.labels.get(key="pneumonia"), csv_file("x"), user=organizer, name="Bad")
    masks = Label.objects.create(project=project, key="lung", title="Lung", kind="masks")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        image = io.BytesIO()
        Image.fromarray(np.ones((3, 3), np.uint8)).save(image, format="PNG")
        archive.writestr(f"{cases[0]}.png", image.getvalue())
        archive.writestr("notes.txt", "x")
    with pytest.raises(ValidationError) as error:
        load_proposals(project, masks, SimpleUploadedFile("m.zip", buffer.getvalue()), user=organizer, name="Bad")
    assert "entry 'notes.txt': not <case_id>.png" in str(error.value)
    assert "a one-channel PNG of" in str(error.value) and "found L 3 × 3" in str(error.value)
    assert not project.proposal_sets.exists()


def test_only_organizers_load_proposals(boxes_project, standing_users):  # noqa: F811
    project = boxes_project
    opacity = project.labels.get(key="opacity")
    case = single_image_cases(project)[0]
    for name, user in standing_users.items():
        api = api_for(user) if user else None
        if api is None:
            from rest_framework.test import APIClient

            api = APIClient()
        response = api.post(f"/api/v1/annotation-projects/{project.pk}/proposals/", {
            "label": opacity.pk, "name": f"by {name}",
            "file": SimpleUploadedFile("b.csv", f"patientId,PredictionString\n{case},0.9 1 1 5 5\n".encode())},
            format="multipart")
        allowed = name in {"organizer", "co-organizer", "staff"}
        assert response.status_code == (201 if allowed else 401 if user is None else response.status_code), name
        if not allowed:
            assert response.status_code in (401, 403, 404), (name, response.status_code)
    assert project.proposal_sets.get().name == "by staff"  # each organizer's load replaced the last
