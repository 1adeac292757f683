"""A project's consensus written as a ground truth in the evaluator's formats (with the curation
library's writers), for a test set's new truth version and for the participants' training labels.

| label kind | challenge task | file |
|---|---|---|
| one choice | classification | `case_id,<label key>`: 1 where the consensus is the chosen positive option |
| several choices | classification | `case_id,<option>...`: 1 where the consensus holds the option |
| number | regression | `case_id,value` |
| boxes | detection | RSNA `patientId,x,y,width,height,Target` (a case's boxes must lie on one image) |
| masks | segmentation | a .zip of `<case_id>.png` (one frame) or `<case_id>.nii.gz` (several, stacked) |
"""

import io
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile

import curation

from .curation_calls import mask_from_runs
from .models import LabelKind, case_frames, consensus_table

TASK_OF_KIND = {
    LabelKind.CHOICE: "classification", LabelKind.MULTIPLE_CHOICE: "classification",
    LabelKind.NUMBER: "regression", LabelKind.BOXES: "detection", LabelKind.MASKS: "segmentation",
}


def consensus_of(project, label):
    """{case_id: value} for every fully read case: the consensus or the adjudicator's decision,
    None where the label is still undecided (marks nobody drew are an empty list)."""
    values = {}
    for row in consensus_table(project):
        value = None if label.key in row["undecided"] else row["values"].get(label.key)
        if value is None and label.kind in (LabelKind.BOXES, LabelKind.MASKS) and label.key not in row["undecided"]:
            value = []
        values[row["case"].case_id] = value
    return values


def check_label_fits(project, label, positive=""):
    task = project.challenge.task_type
    expected = TASK_OF_KIND.get(label.kind)
    if expected != task:
        raise ValidationError(f"The label {label.key!r} ({label.get_kind_display().lower()}) makes a "
                              f"{expected or 'no'} truth, but this challenge's task is {task}.")
    if label.kind == LabelKind.CHOICE and positive not in label.options:
        raise ValidationError(f"Choose which option of {label.key!r} is positive (1): one of {', '.join(label.options)}.")


def truth_file(project, label, case_ids, *, positive="", require_all=True):
    """The consensus of `label` on `case_ids` as the evaluator's truth file of the challenge's task.

    With `require_all`, a case not yet fully read or still undecided is a ValidationError that counts
    them and names the first; otherwise such cases are left out. Returns (file, the cases written).
    """
    check_label_fits(project, label, positive)
    values = consensus_of(project, label)
    unread = [case_id for case_id in case_ids if case_id not in values]
    undecided = [case_id for case_id in case_ids if case_id in values and values[case_id] is None]
    if require_all and (unread or undecided):
        raise ValidationError("Every case needs a consensus first: " + "; ".join(part for part in [
            f"{len(unread)} not yet read by every reader (e.g. {unread[0]!r})" if unread else "",
            f"{len(undecided)} waiting for adjudication (e.g. {undecided[0]!r})" if undecided else "",
        ] if part) + ".")
    chosen = {case_id: values[case_id] for case_id in case_ids if values.get(case_id) is not None}
    if not chosen:
        raise ValidationError("No case has a consensus on this label yet.")
    cases = {case.case_id: case for case in project.dataset.cases.filter(case_id__in=chosen)}
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "truth"
        try:
            name = _write(label, chosen, cases, target, positive)
        except ValueError as error:  # the writers name the case
            raise ValidationError(f"The consensus of {label.key!r} cannot be written: {error}") from error
        content = _zipped(target) if target.is_dir() else target.read_bytes()
    return SimpleUploadedFile(name, content), sorted(chosen)


def _write(label, values, cases, target, positive):
    if label.kind == LabelKind.CHOICE:
        curation.write_classification_truth(target, values, positive=positive, column=label.key)
    elif label.kind == LabelKind.MULTIPLE_CHOICE:
        curation.write_multilabel_truth(target, values, columns=label.options)
    elif label.kind == LabelKind.NUMBER:
        curation.write_regression_truth(target, values)
    elif label.kind == LabelKind.BOXES:
        curation.write_detection_truth(target, {case_id: _boxes(case_id, marks) for case_id, marks in values.items()})
    else:
        masks, spacing = {}, {}
        for case_id, marks in values.items():
            masks[case_id], spacing[case_id] = _mask(cases[case_id], marks)
        curation.write_mask_truth(target, masks, spacing={c: s for c, s in spacing.items() if s is not None})
        return f"{label.key}-masks.zip"
    return f"{label.key}.csv"


def _boxes(case_id, marks):
    images = {(mark["instance"], mark["frame"]) for mark in marks}
    if len(images) > 1:
        raise ValueError(f"case {case_id!r}: boxes on {len(images)} images; a detection case is one image "
                         "(make the dataset's cases images)")
    return [[mark["x"], mark["y"], mark["width"], mark["height"]] for mark in marks]


def _mask(case, marks):
    """A case's masks as one array: 2-D for a single frame, else (columns, rows, frames) with the
    spacing of the first image, as NIfTI's axes run."""
    frames = case_frames(case)
    slices = []
    for frame in frames:
        mask = np.zeros((frame.rows, frame.columns), np.uint8)
        for mark in marks:
            if (mark["instance"], mark["frame"]) == (frame.instance, frame.frame):
                mask |= mask_from_runs(mark).astype(np.uint8)
        slices.append(mask)
    if len(slices) == 1:
        return slices[0], None
    if len({mask.shape for mask in slices}) > 1:
        raise ValueError(f"case {case.case_id!r}: its images differ in size and cannot make one volume")
    return np.stack(slices, axis=-1).transpose(1, 0, 2), frames[0].spacing


def _zipped(folder):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, path.name)
    return buffer.getvalue()
