"""Who may see a run or act on an algorithm: the functions pages and the API call."""

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework.generics import get_object_or_404  # a malformed id is a 404, not a 500

from mica.challenges.models import Phase, Role

from .models import Algorithm, InferenceRun


def run_for(user, uuid):
    """A run: the organizers, and the members of the team whose submission it is."""
    run = get_object_or_404(
        InferenceRun.objects.select_related("phase__challenge", "phase__test_set", "algorithm__team", "submission"),
        uuid=uuid)
    if not run.phase.challenge.can_be_seen_by(user):
        raise Http404("No such run.")
    if not run.can_be_read_by(user):
        raise PermissionDenied("Only the team and the organizers can see this run.")
    return run


def organized_algorithm(user, pk):
    algorithm = get_object_or_404(Algorithm.objects.select_related("challenge", "team", "image"), pk=pk)
    challenge = algorithm.challenge
    if not challenge.can_be_seen_by(user):
        raise Http404("No such algorithm.")
    if not challenge.is_organizer(user):
        raise PermissionDenied("Only the organizers of this challenge can do this.")
    return algorithm


def organized_phases(user):
    """Phases a re-run may target: those of every challenge the user organizes (staff: all)."""
    phases = Phase.objects.select_related("challenge", "test_set")
    if user.is_staff:
        return phases
    return phases.filter(challenge__roles__user=user, challenge__roles__role=Role.ORGANIZER,
                         challenge__roles__approved_at__isnull=False)
