from django.db.models import Count, Q
from drf_spectacular.utils import extend_schema
from rest_framework import permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from mica.challenges.models import Role

from .models import Dataset, QuarantinedFile, Upload


class QuarantinedFileSerializer(serializers.ModelSerializer):
    class Meta:
        model = QuarantinedFile
        fields = ["source", "reason"]


class UploadSerializer(serializers.ModelSerializer):
    # A count, not the list: an upload can quarantine 100,000 files. The list is paginated at
    # /api/v1/uploads/{uuid}/quarantined/.
    n_quarantined = serializers.IntegerField(read_only=True, help_text="How many files were quarantined.")

    class Meta:
        model = Upload
        fields = ["uuid", "dataset", "original_filename", "created_at", "status", "status_reason", "files_done",
                  "files_total", "action_counts", "n_quarantined"]
        read_only_fields = fields


class UploadCreateSerializer(serializers.Serializer):
    archive = serializers.FileField(help_text="A .zip of DICOM, PNG or JPEG files.")


class DatasetSerializer(serializers.ModelSerializer):
    challenge = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    n_instances = serializers.IntegerField(source="instances.count", read_only=True)

    class Meta:
        model = Dataset
        fields = ["id", "name", "challenge", "visible_to_participants", "n_instances", "created_at"]


class DatasetViewSet(viewsets.ReadOnlyModelViewSet):
    """Datasets you organize, and those opened to the participants of your challenges."""

    queryset = Dataset.objects.none()  # for the schema; requests use get_queryset
    serializer_class = DatasetSerializer
    permission_classes = [permissions.IsAuthenticated]

    def get_queryset(self):
        user = self.request.user
        organized = Q(challenge__roles__user=user, challenge__roles__role=Role.ORGANIZER)
        opened = Q(visible_to_participants=True, challenge__roles__user=user,
                   challenge__roles__role=Role.PARTICIPANT)
        return Dataset.objects.filter(organized | opened).distinct().select_related("challenge")

    @extend_schema(request={"multipart/form-data": UploadCreateSerializer}, responses={202: UploadSerializer})
    @action(detail=True, methods=["post"], parser_classes=[MultiPartParser, FormParser])
    def uploads(self, request, pk=None):
        """Upload a .zip of studies; it is anonymized by a worker (poll the returned upload)."""
        dataset = self.get_object()
        if not dataset.challenge.is_organizer(request.user):
            raise PermissionDenied("Only the organizers of this challenge can upload.")
        body = UploadCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            upload = Upload.receive(dataset=dataset, user=request.user, uploaded_file=body.validated_data["archive"])
        except ValueError as error:
            raise ValidationError({"archive": [str(error)]}) from error
        upload.n_quarantined = 0
        return Response(UploadSerializer(upload).data, status=status.HTTP_202_ACCEPTED)


class UploadViewSet(viewsets.ReadOnlyModelViewSet):
    """Uploads to the datasets you organize: status, progress and how many files were quarantined."""

    queryset = Upload.objects.none()  # for the schema; requests use get_queryset
    serializer_class = UploadSerializer
    permission_classes = [permissions.IsAuthenticated]
    lookup_field = "uuid"

    def get_queryset(self):
        return Upload.objects.filter(
            dataset__challenge__roles__user=self.request.user, dataset__challenge__roles__role=Role.ORGANIZER
        ).annotate(n_quarantined=Count("quarantined")).order_by("-created_at")

    @extend_schema(responses=QuarantinedFileSerializer(many=True))
    @action(detail=True, serializer_class=QuarantinedFileSerializer)
    def quarantined(self, request, uuid=None):
        """The files of this upload that were quarantined, with their reasons, a page at a time."""
        files = self.get_object().quarantined.all()
        page = self.paginate_queryset(files)
        return self.get_paginated_response(QuarantinedFileSerializer(page, many=True).data)
