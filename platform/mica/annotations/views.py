"""Pages of annotation projects: setup, the reader's queue and viewer, adjudication, agreement."""

from csp.decorators import csp_update
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.shortcuts import redirect, render
from rest_framework.generics import get_object_or_404  # a malformed id is a 404, not a 500

from mica.core.markdown import render_markdown
from mica.datasets.case_views import organized_dataset

from . import access
from .agreement import agreement_summary
from .api import AssignmentSerializer, LabelSerializer
from .forms import HandoverForm, LabelForm, ProjectForm, ProposalForm, SplitForm
from .models import CaseSplit, TruthHandover, consensus_table
from .proposals import load_proposals, proposal_changes


@login_required
def project_list(request):
    return render(request, "annotations/list.html", {"projects": access.visible_projects(request.user)})


@login_required
def create(request, dataset_pk):
    dataset = organized_dataset(request, dataset_pk)
    form = ProjectForm(request.POST or None, challenge=dataset.challenge)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            form.instance.dataset = dataset
            form.instance.created_by = request.user
            project = form.save()
            for user in form.cleaned_data["readers"]:
                project.add_reader(user)
            for user in form.cleaned_data["adjudicators"]:
                project.add_reader(user, is_adjudicator=True)
        return redirect(project)
    return render(request, "annotations/create.html", {"dataset": dataset, "form": form})


@login_required
def project(request, pk):
    project = access.project_for(request.user, pk)
    is_organizer = project.is_organizer(request.user)
    label_form = LabelForm(request.POST or None, prefix="label")
    if request.method == "POST":
        if not is_organizer:
            raise PermissionDenied("Only the organizers of this challenge can change the project.")
        if "assign" in request.POST:
            try:
                count = project.assign()
            except ValidationError as error:
                messages.error(request, " ".join(error.messages))
            else:
                messages.success(request, f"{count} reads assigned.")
            return redirect(project)
        if project.assigned_at:
            messages.error(request, "Labels cannot change once the cases are assigned.")
            return redirect(project)
        label_form.instance.project = project
        if label_form.is_valid():
            label_form.save()
            return redirect(project)
    reader = project.reader_of(request.user)
    context = {
        "project": project,
        "is_organizer": is_organizer,
        "reader": reader,
        "can_adjudicate": project.can_adjudicate(request.user),
        "instructions": render_markdown(project.instructions),
        "labels": [(label, render_markdown(label.definition)) for label in project.labels.all()],
        "readers": project.readers.select_related("user"),
        "queue": reader.queue() if reader and not reader.is_adjudicator else [],
        "label_form": label_form,
        "n_cases": project.dataset.cases.count(),
    }
    return render(request, "annotations/project.html", context)


@login_required
def next_case(request, pk):
    project = access.project_for(request.user, pk)
    reader = project.reader_of(request.user)
    if reader is None or reader.is_adjudicator:
        raise PermissionDenied("You have no queue in this project.")
    assignment = reader.next_assignment()
    if assignment is None:
        messages.success(request, "Your queue is done: thank you.")
        return redirect(project)
    return redirect(assignment)


# The viewer compiles its image decoders from WebAssembly; nothing else is loosened.
viewer_csp = csp_update({"script-src": ["'wasm-unsafe-eval'"]})


@login_required
@viewer_csp
def read(request, pk):
    assignment = access.own_assignment(request.user, pk)
    project = assignment.project
    state = {
        "assignment": AssignmentSerializer(assignment).data,
        "labels": LabelSerializer(project.labels.all(), many=True).data,
        "answersUrl": f"/api/v1/annotation-assignments/{assignment.pk}/answers/",
        "nextUrl": f"/annotations/{project.pk}/next/",
    }
    return render(request, "annotations/read.html", {
        "assignment": assignment, "project": project, "state": state,
        "has_masks": project.labels.filter(kind="masks").exists(),
    })


@login_required
def adjudication(request, pk):
    project = access.adjudicated_project(request.user, pk)
    rows = [row for row in consensus_table(project) if row["undecided"]]
    return render(request, "annotations/adjudication.html", {"project": project, "rows": rows})


@login_required
@viewer_csp
def adjudicate_case(request, pk, case_id):
    project = access.adjudicated_project(request.user, pk)
    row = next((row for row in consensus_table(project) if row["case"].case_id == case_id), None)
    if row is None:
        get_object_or_404(project.dataset.cases, case_id=case_id)
        raise PermissionDenied("This case is not fully read yet.")
    case = row["case"]
    state = {
        "caseId": case.case_id,
        "images": [{"study_uid": i.series.study.study_uid, "series_uid": i.series.series_uid,
                    "sop_instance_uid": i.uid} for i in case.instances.filter(kind="dicom").select_related("series__study")],
        "dicomwebRoot": f"/datasets/{project.dataset_id}/dicomweb",
        "labels": LabelSerializer(project.labels.exclude(kind="text"), many=True).data,
        "readers": {reader.user.username: answers for reader, answers in row["by_reader"].items()},
        "values": row["values"],
        "adjudicationUrl": f"/api/v1/annotation-projects/{project.pk}/adjudication/",
        "doneUrl": f"/annotations/{project.pk}/adjudication/",
    }
    return render(request, "annotations/adjudicate.html", {"project": project, "case": case,
                                                           "state": state})


@login_required
def agreement(request, pk):
    project = access.organized_project(request.user, pk)
    form = ProposalForm(request.POST or None, request.FILES or None, project=project)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            proposal_set = load_proposals(project, data["label"], data["file"], user=request.user, name=data["name"],
                                          min_confidence=data["min_confidence"])
        except ValidationError as error:
            messages.error(request, "; ".join(error.messages))
        else:
            messages.success(request, f"Proposals of {proposal_set.name} loaded for {proposal_set.proposals.count()} cases.")
            return redirect("annotations:agreement", project.pk)
    return render(request, "annotations/agreement.html", {
        "project": project, "summary": agreement_summary(project), "proposals": proposal_changes(project),
        "proposal_form": form})


@login_required
def truth(request, pk):
    """The organizer's hand-over: split the cases into training and test, then hand a label's
    consensus to a test set as a new truth version (or a new test set)."""
    project = access.organized_project(request.user, pk)
    split = getattr(project, "split", None)
    split_form = SplitForm(request.POST if "split" in request.POST else None, project=project)
    handover_form = HandoverForm(request.POST if "hand_over" in request.POST else None, project=project)
    if request.method == "POST":
        try:
            if "split" in request.POST and split_form.is_valid():
                split = CaseSplit.make(project, user=request.user, **split_form.cleaned_data)
                messages.success(request, "Cases split: {train} for training, {test} for testing.".format(**split.counts()))
                return redirect("annotations:truth", project.pk)
            if "hand_over" in request.POST and handover_form.is_valid():
                handover = TruthHandover.hand_over(project, user=request.user, **handover_form.cleaned_data)
                version = handover.version
                messages.success(request, f"{version.test_set.name}: truth version {version.number} stored "
                                          f"({handover.n_cases} cases); every accepted submission is being re-scored.")
                return redirect("annotations:truth", project.pk)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
    return render(request, "annotations/truth.html", {
        "project": project, "split": split, "split_form": split_form, "handover_form": handover_form,
        "handovers": project.handovers.select_related("label", "version__test_set", "created_by"),
        "n_read": project.fully_read_count(), "n_cases": project.dataset.cases.count(),
    })
