"""Bundles over the API: export a challenge (organizers), create one from a bundle."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from mica.challenges.models import Challenge

from .access import check_importer, exportable_challenge
from .importing import import_bundle
from .reading import BundleError
from .views import bundle_response


class ImportSerializer(serializers.Serializer):
    bundle = serializers.FileField()
    slug = serializers.SlugField(required=False)
    task_type = serializers.ChoiceField(choices=Challenge.TaskType.choices, required=False)


class ImportResultSerializer(serializers.Serializer):
    challenge = serializers.CharField(help_text="The new (draft) challenge's slug.")
    unmapped = serializers.ListField(child=serializers.CharField(),
                                     help_text="What the bundle had that was not imported, one line each.")


class BundleImportView(APIView):
    """Create a draft challenge from a bundle: Mica's (challenge.yaml) or Codabench's
    (competition.yaml, with `task_type`). 400 lists every problem, naming file and key; nothing
    is created then."""

    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(request={"multipart/form-data": ImportSerializer}, responses={201: ImportResultSerializer})
    def post(self, request):
        check_importer(request.user)
        body = ImportSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        try:
            result = import_bundle(data["bundle"], user=request.user, slug=data.get("slug"),
                                   task_type=data.get("task_type"))
        except BundleError as error:
            raise ValidationError({"bundle": error.problems}) from None
        return Response({"challenge": result.challenge.slug, "unmapped": result.unmapped}, status=201)


class BundleExportView(APIView):
    """The challenge as a bundle (organizers); `?truth=1` adds its test sets' truth and split."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(parameters=[OpenApiParameter("truth", bool, description="1: include the truth.")],
                   responses={(200, "application/zip"): OpenApiTypes.BINARY})
    def get(self, request, slug):
        challenge = exportable_challenge(request.user, slug)
        return bundle_response(challenge, with_truth=request.query_params.get("truth") == "1")
