"""Who may see and download a challenge's data releases (pages and API call these)."""

from django.core.exceptions import PermissionDenied
from rest_framework.generics import get_object_or_404

from mica.challenges.access import challenge_for

from .models import DataRelease

REGISTER_FIRST = "Register for the challenge and accept its terms to download its data."


def downloadable_challenge(user, slug):
    """The challenge whose data the user may download: organizers, and participants who
    accepted the terms and were approved."""
    challenge = challenge_for(user, slug)
    if not (challenge.is_organizer(user) or challenge.is_participant(user)):
        raise PermissionDenied(REGISTER_FIRST)
    return challenge


def releases_for(user, challenge):
    """Organizers see every release with its status; participants the ready ones."""
    releases = challenge.data_releases.select_related("dataset", "test_set")
    return releases if challenge.is_organizer(user) else releases.filter(status=DataRelease.Status.READY)


def release_for(user, pk):
    release = get_object_or_404(DataRelease.objects.select_related("challenge"), pk=pk)
    challenge = downloadable_challenge(user, release.challenge.slug)
    return get_object_or_404(releases_for(user, challenge), pk=release.pk)

