"""Data releases over the API: list, create (organizers), download (with Range), the log."""

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import mixins, permissions, serializers, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from mica.challenges.access import organized_challenge

from .access import downloadable_challenge, release_for, releases_for
from .models import DataRelease, DownloadRecord
from .streaming import archive_response


class ReleaseSerializer(serializers.ModelSerializer):
    challenge = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    archive_url = serializers.SerializerMethodField()

    class Meta:
        model = DataRelease
        fields = ["id", "challenge", "name", "kind", "image_format", "status", "status_reason", "n_cases", "size",
                  "created_at", "archive_url"]

    def get_archive_url(self, release) -> str:
        return self.context["request"].build_absolute_uri(release.get_absolute_url())


class ReleaseCreateSerializer(serializers.Serializer):
    challenge = serializers.SlugField()
    name = serializers.CharField(max_length=100)
    kind = serializers.ChoiceField(choices=DataRelease.Kind.choices)
    dataset = serializers.IntegerField()
    test_set = serializers.IntegerField(required=False)
    labels = serializers.FileField(required=False)
    image_format = serializers.ChoiceField(choices=DataRelease.ImageFormat.choices, default=DataRelease.ImageFormat.DICOM)


class DownloadRecordSerializer(serializers.ModelSerializer):
    user = serializers.CharField(source="user.username")

    class Meta:
        model = DownloadRecord
        fields = ["user", "started_at", "range_start", "range_end", "bytes_sent", "completed"]


class DataReleaseViewSet(mixins.RetrieveModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """A challenge's data: one zip per release, for participants who accepted the terms."""

    serializer_class = ReleaseSerializer
    permission_classes = [permissions.IsAuthenticated]
    pagination_class = None
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    queryset = DataRelease.objects.none()

    def get_object(self):
        return release_for(self.request.user, self.kwargs["pk"])

    @extend_schema(parameters=[OpenApiParameter("challenge", str, required=True, description="The challenge's slug.")],
                   responses={200: ReleaseSerializer(many=True),
                              400: OpenApiResponse(description="No ?challenge= given."),
                              404: OpenApiResponse(description="No such challenge (or not visible to you).")})
    def list(self, request):
        slug = request.query_params.get("challenge")
        if slug is None:
            raise ValidationError({"challenge": "Name the challenge: ?challenge=<slug>."})
        challenge = downloadable_challenge(request.user, slug)
        return Response(self.get_serializer(releases_for(request.user, challenge), many=True).data)

    @extend_schema(request={"multipart/form-data": ReleaseCreateSerializer},
                   responses={201: ReleaseSerializer, 404: OpenApiResponse(description="No such challenge.")})
    def create(self, request):
        body = ReleaseCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        challenge = organized_challenge(request.user, data["challenge"])
        dataset = challenge.datasets.filter(pk=data["dataset"]).first()
        if dataset is None:
            raise ValidationError({"dataset": "No dataset of this challenge has this id."})
        test_set = None
        if "test_set" in data:
            test_set = challenge.test_sets.filter(pk=data["test_set"]).first()
            if test_set is None:
                raise ValidationError({"test_set": "No test set of this challenge has this id."})
        try:
            release = DataRelease.create(challenge=challenge, dataset=dataset, name=data["name"], kind=data["kind"],
                                         user=request.user, test_set=test_set, labels=data.get("labels"),
                                         image_format=data["image_format"])
        except DjangoValidationError as error:
            raise ValidationError(error.message_dict) from error
        return Response(self.get_serializer(release).data, status=201)

    def perform_destroy(self, release):
        """Organizers delete a release, its files and its download log."""
        organized_challenge(self.request.user, release.challenge.slug)
        release.delete_with_files()

    @extend_schema(responses={(200, "application/zip"): OpenApiTypes.BINARY,
                              (206, "application/zip"): OpenApiTypes.BINARY,
                              416: OpenApiResponse(description="The range asked lies past the archive's end.")})
    @action(detail=True, methods=["get"])
    def archive(self, request, pk=None):
        """The archive, streamed; `Range: bytes=N-` resumes a download (206), `If-Range` with the
        ETag makes sure the bytes resumed belong to the same archive."""
        return archive_response(request, self.get_object())

    @extend_schema(responses={200: DownloadRecordSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def downloads(self, request, pk=None):
        """Who downloaded this release, when and how many bytes (organizers)."""
        release = self.get_object()
        organized_challenge(request.user, release.challenge.slug)
        records = release.downloads.select_related("user")
        return Response(DownloadRecordSerializer(records, many=True).data)
