"""Model-assisted reading: an organizer loads a model's proposals, readers accept, fix or reject
them, and how much they changed them is measured, so that the bias can be reported.

Proposals come in the evaluator's prediction formats: for a boxes label the detection CSV
`patientId,PredictionString` ("confidence x y width height ..."; boxes under the set's minimum
confidence are dropped), for a masks label a .zip of `<case_id>.png` (0 background, any other
value the mask) of the image's size. A case is one image for proposals. Each proposed mark gets
the id `p<set>-<case>-<n>`; the viewer keeps it on a mark the reader moves or reshapes, so a
reader's answer says, mark by mark, where it came from.

Per reader and case, against the proposals of the case:
accepted (the mark kept as proposed), modified (kept under its id but changed; its IoU with the
proposal is recorded), rejected (the id is gone from the answer), added (a mark without an id).
"""

import io
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from django.core.exceptions import ValidationError
from django.db import transaction

from .curation_calls import mask_from_runs, runs_of
from .models import Assignment, LabelKind, Proposal, ProposalSet

MAX_MASK_ENTRIES = 100_000
SAME_BOX_PIXELS = 0.5  # the viewer rounds marks to 0.1 px: closer than this is "as proposed"


@transaction.atomic
def load_proposals(project, label, uploaded_file, *, user, name, min_confidence=0.5):
    """Stores the proposals of one file; ValidationError lists the problems (row, entry) and then
    nothing is stored. Refused once a reader has answered the label (the comparison would be unfair)."""
    if label.project_id != project.pk or label.kind not in (LabelKind.BOXES, LabelKind.MASKS):
        raise ValidationError("Proposals are for a boxes or masks label of this project.")
    if Assignment.objects.filter(project=project, answers__label=label).exists():
        raise ValidationError("Readers have already answered this label: proposals can no longer change.")
    cases = {case.case_id: case for case in project.dataset.cases.all()}
    reader = _boxes if label.kind == LabelKind.BOXES else _masks
    marks_by_case = reader(uploaded_file, cases, min_confidence)
    ProposalSet.objects.filter(project=project, label=label).delete()
    proposal_set = ProposalSet.objects.create(project=project, label=label, name=name, min_confidence=min_confidence,
                                              created_by=user)
    for case_id, marks in marks_by_case.items():
        case = cases[case_id]
        for index, mark in enumerate(marks, start=1):
            mark["proposal"] = f"p{proposal_set.pk}-{case.pk}-{index}"
        Proposal.objects.create(proposal_set=proposal_set, case=case, marks=marks)
    return proposal_set


def _single_frame(case, problems, where):
    from .models import case_frames

    frames = case_frames(case)
    if len(frames) != 1:
        problems.append(f"{where}: the case has {len(frames)} images or frames; proposals are for one-image cases")
        return None
    return frames[0]


def _boxes(uploaded_file, cases, min_confidence):
    from evaluator import SubmissionInvalid
    from evaluator.tasks import detection  # the evaluator's own reader of detection predictions

    with tempfile.NamedTemporaryFile(suffix=".csv") as handle:
        for chunk in uploaded_file.chunks():
            handle.write(chunk)
        handle.flush()
        try:
            parsed = detection.read_predictions(
                handle.name, list(cases), detection.resolve_options(None, detection.DEFAULTS, "detection"),
                name=uploaded_file.name)
        except SubmissionInvalid as error:
            raise ValidationError([str(problem) for problem in error.problems]) from error
    problems, marks_by_case = [], {}
    for case_id, rows in parsed.items():
        frame = _single_frame(cases[case_id], problems, f"{uploaded_file.name}, patientId {case_id!r}")
        if frame is None:
            continue
        marks_by_case[case_id] = [
            {"instance": frame.instance, "frame": 1, "x": float(x), "y": float(y), "width": float(w), "height": float(h)}
            for confidence, x, y, w, h in rows.tolist() if confidence >= min_confidence and w > 0 and h > 0]
    if problems:
        raise ValidationError(problems)
    return marks_by_case


def _masks(uploaded_file, cases, min_confidence):
    from PIL import Image

    problems, marks_by_case = [], {}
    try:
        archive = zipfile.ZipFile(uploaded_file)
    except zipfile.BadZipFile as error:
        raise ValidationError(f"{uploaded_file.name}: not a .zip of <case_id>.png masks") from error
    with archive:
        entries = [info for info in archive.infolist() if not info.is_dir()
                   and not Path(info.filename).name.startswith(".") and "__MACOSX" not in info.filename]
        if len(entries) > MAX_MASK_ENTRIES:
            raise ValidationError(f"{uploaded_file.name}: {len(entries)} entries; at most {MAX_MASK_ENTRIES}")
        for info in entries:
            where = f"{uploaded_file.name}, entry {info.filename!r}"
            name = Path(info.filename).name
            if not name.endswith(".png") or name[:-4] not in cases:
                problems.append(f"{where}: not <case_id>.png of a case of this dataset")
                continue
            frame = _single_frame(cases[name[:-4]], problems, where)
            if frame is None:
                continue
            try:
                with archive.open(info) as handle:
                    image = Image.open(io.BytesIO(handle.read(frame.rows * frame.columns * 4 + 2**20)))
                    if image.size != (frame.columns, frame.rows) or image.mode not in ("1", "L", "P", "I;16", "I"):
                        problems.append(f"{where}: a one-channel PNG of {frame.columns} × {frame.rows} pixels "
                                        f"is expected, found {image.mode} {image.size[0]} × {image.size[1]}")
                        continue
                    mask = np.asarray(image) > 0
            except Exception as error:  # a corrupt entry: name it, quote nothing
                problems.append(f"{where}: not a readable PNG ({type(error).__name__})")
                continue
            marks_by_case[name[:-4]] = [{"instance": frame.instance, "frame": 1, "rows": frame.rows,
                                         "columns": frame.columns, "rle": runs_of(mask)}] if mask.any() else []
    if problems:
        raise ValidationError(problems)
    return marks_by_case


def compare(proposed, answered, kind):
    """{"accepted", "modified", "rejected", "added", "ious"}: a reader's marks against the proposals."""
    given = {mark.get("proposal"): mark for mark in answered if mark.get("proposal")}
    counts = {"accepted": 0, "modified": 0, "rejected": 0, "ious": []}
    for mark in proposed:
        kept = given.get(mark["proposal"])
        if kept is None:
            counts["rejected"] += 1
            continue
        overlap = _iou(mark, kept, kind)
        if overlap >= 1.0 or (kind == LabelKind.BOXES and _same_box(mark, kept)):
            counts["accepted"] += 1
        else:
            counts["modified"] += 1
            counts["ious"].append(round(overlap, 4))
    counts["added"] = sum(1 for mark in answered if not mark.get("proposal"))
    return counts


def _same_box(a, b):
    return all(abs(a[key] - b[key]) < SAME_BOX_PIXELS for key in ("x", "y", "width", "height")) and (
        a["instance"], a["frame"]) == (b["instance"], b["frame"])


def _iou(a, b, kind):
    if (a["instance"], a["frame"]) != (b["instance"], b["frame"]):
        return 0.0
    if kind == LabelKind.MASKS:
        first, second = mask_from_runs(a), mask_from_runs(b)
        if first.shape != second.shape:
            return 0.0
        union = np.logical_or(first, second).sum()
        return float(np.logical_and(first, second).sum() / union) if union else 1.0
    left, top = max(a["x"], b["x"]), max(a["y"], b["y"])
    right = min(a["x"] + a["width"], b["x"] + b["width"])
    bottom = min(a["y"] + a["height"], b["y"] + b["height"])
    inter = max(0.0, right - left) * max(0.0, bottom - top)
    union = a["width"] * a["height"] + b["width"] * b["height"] - inter
    return inter / union if union > 0 else 0.0


def proposal_changes(project):
    """How readers changed the proposals, for each label that has proposals: per case and reader,
    and per reader in total (first reads that were submitted)."""
    report = []
    for proposal_set in project.proposal_sets.select_related("label"):
        label = proposal_set.label
        proposed = {proposal.case_id: proposal.marks for proposal in proposal_set.proposals.all()}
        rows, totals = [], {}
        reads = (Assignment.objects.filter(project=project, is_reread=False, submitted_at__isnull=False,
                                           case_id__in=proposed)
                 .select_related("case", "reader__user").prefetch_related("answers__label").order_by("case__case_id"))
        for assignment in reads:
            answered = next((answer.value for answer in assignment.answers.all() if answer.label_id == label.pk), [])
            counts = compare(proposed[assignment.case_id], answered or [], label.kind)
            reader = assignment.reader.user.username
            rows.append({"case_id": assignment.case.case_id, "reader": reader, **counts})
            total = totals.setdefault(reader, {"reader": reader, "cases": 0, "accepted": 0, "modified": 0,
                                               "rejected": 0, "added": 0, "ious": []})
            total["cases"] += 1
            for key in ("accepted", "modified", "rejected", "added"):
                total[key] += counts[key]
            total["ious"].extend(counts["ious"])
        for total in totals.values():
            ious = total.pop("ious")
            total["mean_iou"] = float(np.mean(ious)) if ious else None
        report.append({"label": label, "set": proposal_set, "cases": rows, "readers": sorted(totals.values(),
                                                                                             key=lambda t: t["reader"])})
    return report
