"""REST API of annotation projects: the reader's queue and answers, assignment, adjudication, agreement."""

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied, ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from mica.core.markdown import render_markdown

from . import access
from .agreement import agreement_summary
from .forms import HandoverForm, ProposalForm, SplitForm
from .models import (Adjudication, AnnotationProject, Assignment, CaseSplit, Label, Proposal, TruthHandover,
                     consensus_table)
from .proposals import load_proposals, proposal_changes


class LabelSerializer(serializers.ModelSerializer):
    definition_html = serializers.SerializerMethodField()

    class Meta:
        model = Label
        fields = ["key", "title", "kind", "options", "minimum", "maximum", "definition_html"]

    def get_definition_html(self, label) -> str:
        return render_markdown(label.definition)


class ProjectSerializer(serializers.ModelSerializer):
    instructions_html = serializers.SerializerMethodField()
    labels = LabelSerializer(many=True, read_only=True)

    class Meta:
        model = AnnotationProject
        fields = ["id", "title", "dataset", "instructions_html", "readers_per_case", "reread_share", "assigned_at",
                  "labels"]

    def get_instructions_html(self, project) -> str:
        return render_markdown(project.instructions)


class ImageSerializer(serializers.Serializer):
    study_uid = serializers.CharField(source="series.study.study_uid")
    series_uid = serializers.CharField(source="series.series_uid")
    sop_instance_uid = serializers.CharField(source="uid")


class AssignmentSerializer(serializers.ModelSerializer):
    case_id = serializers.CharField(source="case.case_id")
    submitted = serializers.SerializerMethodField()
    answers = serializers.SerializerMethodField()
    proposals = serializers.SerializerMethodField()
    images = serializers.SerializerMethodField()
    dicomweb_root = serializers.SerializerMethodField()

    class Meta:
        model = Assignment
        fields = ["id", "project", "case_id", "position", "is_reread", "submitted", "updated_at", "answers",
                  "proposals", "images", "dicomweb_root"]

    def get_submitted(self, assignment) -> bool:
        return assignment.submitted_at is not None

    def get_answers(self, assignment) -> dict:
        return assignment.answers_by_key()

    def get_proposals(self, assignment) -> dict:
        """{label key: proposed marks} of a model, shown as the starting marks of a label not yet answered."""
        return {proposal.proposal_set.label.key: proposal.marks for proposal in Proposal.objects.filter(
            proposal_set__project=assignment.project_id, case=assignment.case_id).select_related("proposal_set__label")}

    @extend_schema(responses=ImageSerializer(many=True))
    def get_images(self, assignment) -> list:
        instances = assignment.case.instances.filter(kind="dicom").select_related("series__study")
        return ImageSerializer(instances, many=True).data

    def get_dicomweb_root(self, assignment) -> str:
        return reverse("datasets:dicomweb_studies", args=[assignment.project.dataset_id]).rsplit("/", 1)[0]


class QueueEntrySerializer(serializers.ModelSerializer):
    case_id = serializers.CharField(source="case.case_id")
    submitted = serializers.SerializerMethodField()

    class Meta:
        model = Assignment
        fields = ["id", "case_id", "position", "is_reread", "submitted"]

    def get_submitted(self, assignment) -> bool:
        return assignment.submitted_at is not None


class AnswersSerializer(serializers.Serializer):
    answers = serializers.DictField(help_text="Label key → value; labels left out are cleared.")
    submit = serializers.BooleanField(default=False, help_text="Mark the case as read (it stays editable).")


class AdjudicationSerializer(serializers.Serializer):
    case_id = serializers.CharField()
    answers = serializers.DictField(help_text="Label key → the decided value.")


class SplitSerializer(serializers.ModelSerializer):
    stratified_by = serializers.SlugRelatedField(slug_field="key", read_only=True)
    counts = serializers.DictField(child=serializers.IntegerField(), read_only=True)

    class Meta:
        model = CaseSplit
        fields = ["test_fraction", "private_fraction", "stratified_by", "seed", "counts", "parts", "created_at"]


class HandoverSerializer(serializers.ModelSerializer):
    label = serializers.SlugRelatedField(slug_field="key", read_only=True)
    test_set = serializers.IntegerField(source="version.test_set_id")
    version = serializers.IntegerField(source="version.number")
    created_by = serializers.CharField(source="created_by.username")

    class Meta:
        model = TruthHandover
        fields = ["id", "label", "positive", "test_set", "version", "n_cases", "created_by", "created_at"]


def _form_or_400(form):
    if not form.is_valid():
        raise ValidationError(form.errors)
    return form.cleaned_data


def _django_errors(call):
    """Runs call(); the model layer's refusals become the API's 403 and 400."""
    try:
        return call()
    except DjangoPermissionDenied as error:
        raise PermissionDenied(str(error)) from error
    except DjangoValidationError as error:
        raise ValidationError({"detail": error.messages}) from error


class AnnotationProjectViewSet(viewsets.ReadOnlyModelViewSet):
    """Annotation projects you organize or read in."""

    queryset = AnnotationProject.objects.none()  # for the schema; requests use get_queryset
    serializer_class = ProjectSerializer
    permission_classes = [permissions.IsAuthenticated]

    def get_queryset(self):
        return access.visible_projects(self.request.user).prefetch_related("labels")

    @extend_schema(request=None, responses={201: None})
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        """Deal the cases to the readers (organizers; once)."""
        project = _django_errors(lambda: access.organized_project(request.user, pk))
        count = _django_errors(project.assign)
        return Response({"assignments": count}, status=status.HTTP_201_CREATED)

    @extend_schema(responses=QueueEntrySerializer(many=True))
    @action(detail=True)
    def queue(self, request, pk=None):
        """Your own queue (readers only see theirs)."""
        project = _django_errors(lambda: access.project_for(request.user, pk))
        reader = project.reader_of(request.user)
        if reader is None or reader.is_adjudicator:
            raise PermissionDenied("You have no queue in this project.")
        return Response(QueueEntrySerializer(reader.queue(), many=True).data)

    @extend_schema(responses={200: AssignmentSerializer, 204: None})
    @action(detail=True, url_path="next")
    def next_case(self, request, pk=None):
        """Your next unread case, or 204 when your queue is done."""
        project = _django_errors(lambda: access.project_for(request.user, pk))
        reader = project.reader_of(request.user)
        if reader is None or reader.is_adjudicator:
            raise PermissionDenied("You have no queue in this project.")
        assignment = reader.next_assignment()
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(AssignmentSerializer(assignment).data)

    @extend_schema(methods=["get"], responses=None)
    @extend_schema(methods=["put"], request=AdjudicationSerializer, responses=None)
    @action(detail=True, methods=["get", "put"])
    def adjudication(self, request, pk=None):
        """GET: the fully read cases without consensus, with every reader's answers.
        PUT: decide labels of one case (organizers and adjudicators)."""
        project = _django_errors(lambda: access.adjudicated_project(request.user, pk))
        if request.method == "PUT":
            body = AdjudicationSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            decide(project, request.user, body.validated_data["case_id"], body.validated_data["answers"])
        return Response([_adjudication_row(row) for row in consensus_table(project) if row["undecided"]])

    @extend_schema(methods=["get"], responses=SplitSerializer)
    @extend_schema(methods=["post"], request={"application/json": {"type": "object", "properties": {
        "test_fraction": {"type": "number"}, "private_fraction": {"type": "number"},
        "stratified_by": {"type": "integer", "description": "a label's id"}, "seed": {"type": "integer"}}}},
        responses={201: SplitSerializer})
    @action(detail=True, methods=["get", "post"])
    def split(self, request, pk=None):
        """GET: the recorded training/test split (404 before one is made). POST: make it, once (organizers)."""
        project = _django_errors(lambda: access.organized_project(request.user, pk))
        if request.method == "POST":
            data = _form_or_400(SplitForm(request.data, project=project))
            split = _django_errors(lambda: CaseSplit.make(project, user=request.user, **data))
            return Response(SplitSerializer(split).data, status=status.HTTP_201_CREATED)
        split = getattr(project, "split", None)
        if split is None:
            raise NotFound("The cases of this project are not split yet.")
        return Response(SplitSerializer(split).data)

    @extend_schema(methods=["get"], responses=HandoverSerializer(many=True))
    @extend_schema(methods=["post"], request={"application/json": {"type": "object", "properties": {
        "label": {"type": "integer", "description": "a label's id"}, "positive": {"type": "string"},
        "test_set": {"type": "integer", "description": "empty: a new test set from the split's test cases"},
        "name": {"type": "string"}, "note": {"type": "string"}}}}, responses={201: HandoverSerializer})
    @action(detail=True, methods=["get", "post"])
    def handovers(self, request, pk=None):
        """GET: the consensus truths handed over. POST: hand a label's consensus to a test set as a
        new truth version (re-scored), or to a new test set (organizers)."""
        project = _django_errors(lambda: access.organized_project(request.user, pk))
        if request.method == "POST":
            data = _form_or_400(HandoverForm(request.data, project=project))
            handover = _django_errors(lambda: TruthHandover.hand_over(project, user=request.user, **data))
            return Response(HandoverSerializer(handover).data, status=status.HTTP_201_CREATED)
        return Response(HandoverSerializer(project.handovers.select_related("label", "version", "created_by"),
                                           many=True).data)

    @extend_schema(request={"multipart/form-data": {"type": "object", "properties": {
        "label": {"type": "integer"}, "name": {"type": "string"}, "min_confidence": {"type": "number"},
        "file": {"type": "string", "format": "binary"}}}}, responses={201: None})
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser])
    def proposals(self, request, pk=None):
        """Load a model's proposals for a boxes or masks label (organizers; before any reader answers it)."""
        project = _django_errors(lambda: access.organized_project(request.user, pk))
        data = _form_or_400(ProposalForm(request.data, request.FILES, project=project))
        proposal_set = _django_errors(lambda: load_proposals(project, data["label"], data["file"], user=request.user,
                                                             name=data["name"], min_confidence=data["min_confidence"]))
        return Response({"label": data["label"].key, "cases": proposal_set.proposals.count()},
                        status=status.HTTP_201_CREATED)

    @extend_schema(responses=None)
    @action(detail=True)
    def agreement(self, request, pk=None):
        """Agreement per label, reader-by-reader agreement and workload (organizers)."""
        project = _django_errors(lambda: access.organized_project(request.user, pk))
        summary = agreement_summary(project)
        return Response({
            "per_label": [{"label": row["label"].key, "cases": row["cases"], "unanimous": row["unanimous"],
                           "share": row["share"], "krippendorff_alpha": row["alpha"], "alpha_level": row["alpha_level"]}
                          for row in summary["per_label"]],
            "cohen_kappa": {item["label"].key: [shares for _, shares in item["rows"]] for item in summary["kappas"]},
            "readers": [reader.user.username for reader in summary["readers"]],
            "matrix": [shares for _, shares in summary["matrix"]],
            "workload": [{**row, "reader": row["reader"].user.username} for row in summary["workload"]],
            "proposals": [{"label": item["label"].key, "model": item["set"].name, "per_reader": item["readers"],
                           "per_case": item["cases"]} for item in proposal_changes(project)],
        })


def _adjudication_row(row):
    return {"case_id": row["case"].case_id, "undecided": row["undecided"], "values": row["values"],
            "readers": {reader.user.username: answers for reader, answers in row["by_reader"].items()}}


@transaction.atomic
def decide(project, user, case_id, answers):
    """Stores the adjudicator's values for labels of a case; ValidationError naming each problem."""
    case = project.dataset.cases.filter(case_id=case_id).first()
    if case is None:
        raise NotFound("No such case in this project's dataset.")
    labels = {label.key: label for label in project.labels.all()}
    uids = set(case.instances.values_list("uid", flat=True))
    problems = []
    for key, value in answers.items():
        if key not in labels:
            problems.append(f"label {str(key)[:50]!r}: not a label of this project")
            continue
        try:
            clean = labels[key].validate(value, uids)
        except ValueError as error:
            problems.extend(error.args)
            continue
        Adjudication.objects.update_or_create(project=project, case=case, label=labels[key],
                                              defaults={"value": clean, "decided_by": user})
    if problems:
        transaction.set_rollback(True)
        raise ValidationError({"answers": problems})


class AssignmentViewSet(viewsets.GenericViewSet):
    """One case of your queue: its images (DICOMweb) and your answers."""

    queryset = Assignment.objects.none()  # for the schema; requests use access.own_assignment
    serializer_class = AssignmentSerializer
    permission_classes = [permissions.IsAuthenticated]

    def retrieve(self, request, pk=None):
        assignment = _django_errors(lambda: access.own_assignment(request.user, pk))
        return Response(AssignmentSerializer(assignment).data)

    @extend_schema(request=AnswersSerializer, responses=AssignmentSerializer)
    @action(detail=True, methods=["put"])
    def answers(self, request, pk=None):
        """Replace your answers (autosave: the same PUT twice stores the same state)."""
        assignment = _django_errors(lambda: access.own_assignment(request.user, pk))
        body = AnswersSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            assignment.save_answers(body.validated_data["answers"], submit=body.validated_data["submit"])
        except ValueError as error:
            raise ValidationError({"answers": error.args[0]}) from error
        assignment.refresh_from_db()
        return Response(AssignmentSerializer(assignment).data)
