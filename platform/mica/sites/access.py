"""Who may see or act on a site: the functions pages call."""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework.generics import get_object_or_404  # a malformed id is a 404, not a 500

from .models import Site, SiteToken


def administered_site(user, pk):
    """A site: its admin and the challenge's organizers."""
    site = get_object_or_404(Site.objects.select_related("phase__challenge", "admin"), pk=pk)
    if not site.phase.challenge.can_be_seen_by(user) and user.pk != site.admin_id:
        raise Http404("No such site.")
    if not site.can_be_administered_by(user):
        raise PermissionDenied("Only the site's admin and the challenge's organizers can do this.")
    return site


def organized_site(user, pk):
    site = administered_site(user, pk)
    if not site.phase.challenge.is_organizer(user):
        raise PermissionDenied("Only the challenge's organizers can do this.")
    return site


def administered_token(user, pk):
    token = get_object_or_404(SiteToken.objects.select_related("site"), pk=pk)
    administered_site(user, token.site_id)
    return token
