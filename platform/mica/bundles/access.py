"""Who exports and who imports bundles (pages, API and nothing else call these)."""

from django.core.exceptions import PermissionDenied

from mica.challenges.access import organized_challenge


def exportable_challenge(user, slug):
    """Its organizers (and staff) export a challenge, with or without its truth."""
    return organized_challenge(user, slug)


def check_importer(user):
    """Importing creates a challenge: the users the staff approved as organizers."""
    if not user.has_perm("challenges.add_challenge"):
        raise PermissionDenied("Creating challenges is open to organizers the site's staff has approved.")
