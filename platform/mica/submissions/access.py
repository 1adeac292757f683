"""Who may read or act on a submission: the one function pages and the API call."""

from django.core.exceptions import PermissionDenied
from rest_framework.generics import get_object_or_404  # a malformed id is a 404, not a 500

from .models import Submission


def submission_for(user, uuid):
    submission = get_object_or_404(
        Submission.objects.select_related("phase__challenge", "phase__test_set", "team"), uuid=uuid
    )
    if not submission.can_be_read_by(user):
        raise PermissionDenied("Only the team and the organizers can see this submission.")
    return submission


def readable_submissions(user):
    """The submissions of the user's teams, and every submission of the challenges they organize."""
    from django.db.models import Q

    from mica.challenges.models import Role

    if not user.is_authenticated:
        return Submission.objects.none()
    submissions = Submission.objects.with_team_view()
    if user.is_staff:
        return submissions
    organized = Q(phase__challenge__roles__user=user, phase__challenge__roles__role=Role.ORGANIZER,
                  phase__challenge__roles__approved_at__isnull=False)
    return submissions.filter(Q(team__memberships__user=user) | organized).distinct()
