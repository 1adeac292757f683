"""Evaluations for the organizers of a challenge: every scoring of every submission, with its
metrics. Anyone else gets 404, as for an evaluation that does not exist."""

from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.generics import get_object_or_404  # a malformed id is a 404, not a 500
from rest_framework.response import Response

from mica.challenges import access
from mica.submissions.api import EvaluationSerializer

from .models import Evaluation


class OrganizerEvaluationSerializer(EvaluationSerializer):
    submission = serializers.UUIDField(source="submission.uuid", read_only=True)
    team = serializers.CharField(source="submission.team.name", read_only=True, allow_null=True, default=None)

    class Meta(EvaluationSerializer.Meta):
        fields = ["submission", "team", *EvaluationSerializer.Meta.fields]


class PhaseFilterSerializer(serializers.Serializer):
    phase = serializers.IntegerField()


class EvaluationViewSet(viewsets.ReadOnlyModelViewSet):
    """The evaluations of one phase (`?phase=ID`), newest first: organizers of its challenge."""

    queryset = Evaluation.objects.none()  # for the schema; requests use the phase or get_object
    serializer_class = OrganizerEvaluationSerializer
    permission_classes = [permissions.IsAuthenticated]
    lookup_field = "uuid"

    def get_object(self):
        evaluation = get_object_or_404(
            Evaluation.objects.select_related("submission__phase__challenge", "submission__team", "truth_version"),
            uuid=self.kwargs["uuid"],
        )
        if not evaluation.submission.phase.challenge.is_organizer(self.request.user):
            raise Http404("No such evaluation.")
        return evaluation

    @extend_schema(
        parameters=[OpenApiParameter("phase", int, required=True, description="The phase's id.")],
        responses={200: OrganizerEvaluationSerializer(many=True),
                   400: OpenApiResponse(description="`phase` is missing or not a number.")},
    )
    def list(self, request):
        query = PhaseFilterSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        phase = access.phase_for(request.user, query.validated_data["phase"])
        if not phase.challenge.is_organizer(request.user):
            raise Http404("No such phase.")
        evaluations = (Evaluation.objects.filter(submission__phase=phase)
                       .select_related("submission__team", "truth_version"))
        page = self.paginate_queryset(evaluations)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    @extend_schema(request=None, responses={202: OrganizerEvaluationSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, uuid=None):
        """Cancel the evaluation while it is queued or being scored (400 once it has ended)."""
        evaluation = self.get_object()
        if not evaluation.cancel("Cancelled by an organizer."):
            raise ValidationError({"status": [f"The evaluation has ended ({evaluation.status}); nothing to cancel."]})
        return Response(self.get_serializer(evaluation).data, status=status.HTTP_202_ACCEPTED)
