"""Sites in the REST API (``/api/v1/``), for organizers' scripts: what the sites' pages show and do.

    GET, POST  phases/<phase>/sites/     a phase's sites; add one (organizers)
    GET, PATCH sites/<site>/             a site (its admin, organizers); edit it (organizers)
    GET, POST  sites/<site>/tokens/      its tokens, never their value; issue one, its value shown once
    POST       site-tokens/<token>/revoke/
    GET        sites/<site>/jobs/        its jobs with their status (paginated)
    GET        sites/<site>/audit/       what left the site, each accepted post as received (paginated)

Each view finds its object with the access function its page uses (mica.sites.access), and a
site is created or edited through the page's form, so the rules live in one place. The site
workers' own API (claim, heartbeat, image, result) is mica.sites.api, with a site token.
"""

from django.forms.models import model_to_dict
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from mica.challenges import access as challenge_access

from .access import administered_site, administered_token, organized_site
from .forms import SiteForm
from .models import Site, SiteAuditEntry, SiteJob, SiteToken


class SiteSerializer(serializers.ModelSerializer):
    admin = serializers.CharField(source="admin.username", read_only=True, help_text="The site admin's username.")
    created_by = serializers.CharField(source="created_by.username", read_only=True)
    metrics = serializers.ListField(child=serializers.CharField(), read_only=True,
                                    help_text="The metrics the site reports; the first ranks.")
    task = serializers.CharField(read_only=True)

    class Meta:
        model = Site
        fields = ["id", "phase", "name", "admin", "task", "metrics", "share_per_case", "created_by", "created_at"]
        read_only_fields = fields


class SiteEditSerializer(serializers.Serializer):
    """The fields of the page's site form; the form and the model check them."""

    name = serializers.CharField(max_length=100)
    admin = serializers.CharField(max_length=150, help_text="The username of the person who runs the site's worker.")
    metrics = serializers.ListField(child=serializers.CharField(max_length=50), allow_empty=False,
                                    help_text="Metrics of the challenge's task the site reports; the first ranks.")
    share_per_case = serializers.BooleanField(required=False, default=False,
                                              help_text="Per-case values may leave the site (anonymous).")


class SiteTokenSerializer(serializers.ModelSerializer):
    """A token as it is listed: its first characters only, never its value."""

    created_by = serializers.CharField(source="created_by.username", read_only=True)

    class Meta:
        model = SiteToken
        fields = ["id", "prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
        read_only_fields = fields


class IssuedTokenSerializer(SiteTokenSerializer):
    token = serializers.CharField(help_text="The token itself: shown in this answer only (Mica keeps its hash).")

    class Meta(SiteTokenSerializer.Meta):
        fields = [*SiteTokenSerializer.Meta.fields, "token"]


class SiteJobSerializer(serializers.ModelSerializer):
    algorithm = serializers.IntegerField(source="algorithm_id", read_only=True)
    algorithm_name = serializers.CharField(source="algorithm.name", read_only=True)
    team = serializers.CharField(source="algorithm.team.name", read_only=True)
    other_algorithm = serializers.IntegerField(source="other_algorithm_id", read_only=True, allow_null=True)
    result = serializers.JSONField(read_only=True, allow_null=True,
                                   help_text="What the site sent: its metrics and intervals, or a comparison's p-values.")

    class Meta:
        model = SiteJob
        fields = ["uuid", "kind", "status", "status_reason", "algorithm", "algorithm_name", "team", "other_algorithm",
                  "metric", "attempts", "created_at", "started_at", "completed_at", "result"]
        read_only_fields = fields


class SiteAuditEntrySerializer(serializers.ModelSerializer):
    job = serializers.UUIDField(source="job.uuid", read_only=True)
    body = serializers.JSONField(read_only=True, help_text="The post exactly as received.")

    class Meta:
        model = SiteAuditEntry
        fields = ["id", "job", "token_prefix", "summary", "body", "received_at"]
        read_only_fields = fields


def _saved_site(phase, data, user, instance=None):
    """Saves through the page's form; a PATCH keeps the fields it does not name."""
    if instance is not None:
        data = {**model_to_dict(instance, fields=["name", "share_per_case"]), "admin": instance.admin.username,
                "metrics": instance.metrics, **data}
    form = SiteForm({**data, "metrics": ", ".join(data["metrics"])}, instance=instance, phase=phase)
    if not form.is_valid():
        raise ValidationError(form.errors)
    site = form.save(commit=False)
    if site.pk is None:
        site.created_by = user
    site.save()
    return site


class PhaseSitesView(APIView):
    """A phase's sites (its challenge's organizers); POST adds one."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=SiteSerializer(many=True))
    def get(self, request, phase_pk):
        """The phase's sites."""
        phase = challenge_access.organized_phase(request.user, phase_pk)
        return Response(SiteSerializer(phase.sites.select_related("admin", "created_by", "phase__challenge"),
                                       many=True).data)

    @extend_schema(request=SiteEditSerializer, responses={201: SiteSerializer})
    def post(self, request, phase_pk):
        """Add a site to the phase; its admin then issues a token for its worker."""
        phase = challenge_access.organized_phase(request.user, phase_pk)
        body = SiteEditSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        site = _saved_site(phase, body.validated_data, request.user)
        return Response(SiteSerializer(site).data, status=status.HTTP_201_CREATED)


class SiteViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """A site: its admin and the challenge's organizers see it, its tokens, jobs and audit log;
    the organizers edit it."""

    queryset = Site.objects.none()  # for the schema; requests use get_object
    serializer_class = SiteSerializer
    permission_classes = [permissions.IsAuthenticated]

    def get_object(self):
        return administered_site(self.request.user, self.kwargs["pk"])

    @extend_schema(request=SiteEditSerializer, responses=SiteSerializer)
    def partial_update(self, request, pk=None):
        """Edit the site (organizers): its name, admin, metrics and per-case policy."""
        site = organized_site(request.user, pk)
        body = SiteEditSerializer(data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        return Response(SiteSerializer(_saved_site(site.phase, body.validated_data, request.user, site)).data)

    @extend_schema(methods=["get"], responses=SiteTokenSerializer(many=True))
    @extend_schema(methods=["post"], request=None, responses={201: IssuedTokenSerializer})
    @action(detail=True, methods=["get", "post"], pagination_class=None)
    def tokens(self, request, pk=None):
        """The site's tokens, by their first characters. POST issues one: its value is in that
        answer only, and never again (Mica keeps its hash)."""
        site = self.get_object()
        if request.method == "GET":
            return Response(SiteTokenSerializer(site.tokens.select_related("created_by"), many=True).data)
        token, raw = site.issue_token(request.user)
        return Response(IssuedTokenSerializer({**SiteTokenSerializer(token).data, "token": raw}).data,
                        status=status.HTTP_201_CREATED)

    @extend_schema(responses=SiteJobSerializer(many=True))
    @action(detail=True, methods=["get"])
    def jobs(self, request, pk=None):
        """The site's jobs, newest first, with their status and what the site sent back."""
        site = self.get_object()
        page = self.paginate_queryset(site.jobs.select_related("algorithm__team"))
        return self.get_paginated_response(SiteJobSerializer(page, many=True).data)

    @extend_schema(responses=SiteAuditEntrySerializer(many=True))
    @action(detail=True, methods=["get"])
    def audit(self, request, pk=None):
        """What left the site: every accepted post, exactly as received, newest first."""
        site = self.get_object()
        page = self.paginate_queryset(site.audit_entries.select_related("job"))
        return self.get_paginated_response(SiteAuditEntrySerializer(page, many=True).data)


class SiteTokenViewSet(viewsets.GenericViewSet):
    """A site's token: its admin and the organizers revoke it."""

    queryset = SiteToken.objects.none()
    serializer_class = SiteTokenSerializer
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses=SiteTokenSerializer)
    @action(detail=True, methods=["post"])
    def revoke(self, request, pk=None):
        """Revoke the token: a worker using it is refused from now on. Revoking again changes nothing."""
        token = administered_token(request.user, pk)
        token.revoke()
        return Response(SiteTokenSerializer(token).data)
