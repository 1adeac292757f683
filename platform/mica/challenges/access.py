"""One access function per kind of object, called by pages and the API alike.

Each returns the object or raises Http404 (the object is not visible to the user at all) or
PermissionDenied (visible, but the action is not theirs).
"""

from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import Http404
from rest_framework.generics import get_object_or_404  # a malformed id is a 404, not a 500

from .models import Challenge, ChallengeRole, Phase, Role, Team


def visible_challenges(user):
    """Published challenges, and the drafts the user organizes (staff see every draft)."""
    challenges = Challenge.objects.all()
    if user.is_authenticated and user.is_staff:
        return challenges
    published = Q(state=Challenge.State.PUBLISHED)
    if user.is_authenticated:
        organized = ChallengeRole.objects.filter(user=user, role=Role.ORGANIZER).values("challenge_id")
        return challenges.filter(published | Q(pk__in=organized))
    return challenges.filter(published)


def challenge_for(user, slug):
    return get_object_or_404(visible_challenges(user), slug=slug)


def organized_challenge(user, slug):
    """The challenge, or PermissionDenied unless the user organizes it."""
    challenge = challenge_for(user, slug)
    if not challenge.is_organizer(user):
        raise PermissionDenied("Only the organizers of this challenge can do this.")
    return challenge


def phase_for(user, pk):
    phase = get_object_or_404(Phase.objects.select_related("challenge", "test_set"), pk=pk)
    phase.challenge.remember_roles()  # loaded for this request: its roles do not change during it
    if not phase.challenge.can_be_seen_by(user):
        raise Http404("No such phase.")
    return phase


def organized_phase(user, pk):
    phase = phase_for(user, pk)
    if not phase.challenge.is_organizer(user):
        raise PermissionDenied("Only the organizers of this challenge can do this.")
    return phase


def case_list_phase(user, pk):
    """The phase whose case ids the user may download: its participants and organizers."""
    phase = phase_for(user, pk)
    challenge = phase.challenge
    if not (challenge.is_organizer(user) or challenge.is_participant(user)):
        raise PermissionDenied("Register for the challenge to download its case list.")
    return phase


def leaderboard_phase(user, pk):
    phase = phase_for(user, pk)
    if not phase.leaderboard_visible_to(user):
        raise PermissionDenied("The organizers have not made this leaderboard visible to you.")
    return phase


def team_for(user, slug, pk):
    """A team page: its members and the organizers."""
    challenge = challenge_for(user, slug)
    team = get_object_or_404(Team.objects.select_related("challenge"), challenge=challenge, pk=pk)
    if not (team.has_member(user) or challenge.is_organizer(user)):
        raise PermissionDenied("Only the team's members and the organizers can see this team.")
    return team


def check_team_member(user, team):
    """Members change their team (rename, leave, remove, merge); organizers only see it."""
    if not team.has_member(user):
        raise PermissionDenied("Only the team's members change the team.")
    return team


def check_team_judge(user, team):
    """Organizers disqualify and reinstate a team; its members never do."""
    if not team.challenge.is_organizer(user):
        raise PermissionDenied("Only organizers disqualify teams.")
    return team


def private_leaderboard_phase(user, pk):
    """The private leaderboard: organizers, and after the reveal whoever sees the public one.
    Anyone else gets 404, the same answer as for a phase that does not exist."""
    phase = phase_for(user, pk)
    if not phase.private_visible_to(user):
        raise Http404("No such leaderboard.")
    return phase
