from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404

from .models import Challenge


def organized_challenge(request, slug):
    """The challenge, or PermissionDenied unless the user organizes it."""
    challenge = get_object_or_404(Challenge, slug=slug)
    if not challenge.is_organizer(request.user):
        raise PermissionDenied("Only the organizers of this challenge can do this.")
    return challenge
