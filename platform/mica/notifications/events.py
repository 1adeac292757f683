"""What other apps call at the one place where an event happens (inside its transaction).

Each function decides who is told and what they read; the rows go out with the event's commit.
"""

from django.urls import reverse

from .models import Kind, notify, participants_of


def _team_members(team):
    return [membership.user for membership in team.memberships.select_related("user")] if team else []


def evaluation_moved(evaluation, to_status):
    """The public scoring of a submission ended: its team is told. The private scoring tells
    the team nothing (its timing would say something about the private part)."""
    if evaluation.split != "public" or to_status not in ("succeeded", "failed"):
        return
    submission = evaluation.submission
    phase = submission.phase
    name = submission.original_filename
    if to_status == "succeeded":
        kind, subject = Kind.SUBMISSION_SCORED, f"{phase.challenge.title}: {name} was scored"
        body = f"Your submission {name} to {phase.name} was scored on the public part of the test set."
    else:
        kind, subject = Kind.SUBMISSION_FAILED, f"{phase.challenge.title}: scoring {name} failed"
        body = f"Scoring your submission {name} to {phase.name} failed: {evaluation.status_reason}"
    notify(_team_members(submission.team), kind, subject, body, url=submission.get_absolute_url(),
           challenge=phase.challenge)


def submission_moved(submission, to_status, reason):
    """A submission found invalid, or whose validation broke, after it was received."""
    if to_status not in ("invalid", "failed"):
        return
    phase = submission.phase
    name = submission.original_filename
    notify(_team_members(submission.team), Kind.SUBMISSION_FAILED, f"{phase.challenge.title}: {name} was not accepted",
           f"Your submission {name} to {phase.name} was not accepted: {reason}", url=submission.get_absolute_url(),
           challenge=phase.challenge)


def registration_approved(role):
    challenge = role.challenge
    notify([role.user], Kind.REGISTRATION_APPROVED, f"{challenge.title}: your registration is approved",
           f"An organizer approved your registration for {challenge.title}. Create or join a team to submit.",
           url=challenge.get_absolute_url(), challenge=challenge)


def private_revealed(phase):
    challenge = phase.challenge
    notify(participants_of(challenge), Kind.PRIVATE_REVEALED, f"{challenge.title}: final results of {phase.name}",
           f"The organizers revealed the private leaderboard of {phase.name}.",
           url=reverse("leaderboards:private", args=[phase.pk]), challenge=challenge)
