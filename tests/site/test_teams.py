"""Registration rules, teams (size, leave, remove, rename, merge), co-organizers and deleting
only what nothing depends on."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from mica.challenges.models import Challenge, Team
from mica.submissions.models import Submission

from .conftest import PASSWORD, make_user, upload

pytestmark = pytest.mark.django_db


def test_registration_approved_by_an_organizer(client, challenge, participant, organizer):
    challenge.registration = Challenge.Registration.APPROVAL
    challenge.save()
    role = challenge.register(participant)
    assert role.approved_at is None and not challenge.is_participant(participant)
    with pytest.raises(ValidationError, match="Register"):
        Team.create_for(challenge, participant, "Early")
    client.login(username=organizer.username, password=PASSWORD)
    client.post(f"/challenges/{challenge.slug}/participants/{participant.pk}/approve/", {"decision": "approve"})
    assert challenge.is_participant(participant)


def test_registration_limited_to_email_domains(challenge):
    challenge.registration = Challenge.Registration.DOMAINS
    challenge.allowed_email_domains = "uni-a.edu, @Hospital-B.org"
    challenge.save()
    with pytest.raises(ValidationError, match="domains"):
        challenge.register(make_user("eve"))  # eve@example.org
    insider = make_user("ida")
    insider.email = "ida@hospital-b.org"
    insider.save()
    assert challenge.register(insider).approved_at is not None


def test_organizers_cannot_take_part_in_their_own_challenge(challenge, organizer, co_organizer, staff):
    for user in (organizer, co_organizer, staff):
        with pytest.raises(ValidationError, match="Organizers cannot take part"):
            challenge.register(user)


def test_a_draft_takes_no_registration(challenge, participant):
    challenge.state = Challenge.State.DRAFT
    challenge.save()
    with pytest.raises(ValidationError, match="not published"):
        challenge.register(participant)


def test_the_team_size_limit_holds(challenge, team):
    challenge.team_size_limit = 2  # the team already has two members
    challenge.save()
    newcomer = make_user("nina")
    challenge.register(newcomer)
    with pytest.raises(ValidationError, match="at most 2 members"):
        team.add_member(newcomer)


def test_members_rename_remove_and_leave(client, challenge, team, participant, teammate):
    client.login(username=participant.username, password=PASSWORD)
    url = f"/challenges/{challenge.slug}/teams/{team.pk}/"
    client.post(url, {"action": "rename", "name": "Pleura"})
    team.refresh_from_db()
    assert team.name == "Pleura"
    client.post(url, {"action": "remove", "user": teammate.pk})
    assert not team.has_member(teammate)
    client.post(url, {"action": "leave"})
    assert not Team.objects.filter(pk=team.pk).exists()  # the last member left a team that never submitted


def test_the_last_member_of_a_team_that_submitted_stays(phase, team, participant, teammate, predictions):
    Submission.create(phase=phase, user=participant, uploaded_file=upload("p.csv", predictions))
    team.remove_member(teammate)
    with pytest.raises(ValidationError, match="last member"):
        team.remove_member(participant)


def test_teams_merge_before_the_deadline_within_the_limits(challenge, phase, team, participant, rival, predictions):
    other = challenge.team_of(rival)
    with pytest.raises(ValidationError, match="cannot merge"):
        team.merge_into(other)
    challenge.team_merge_deadline = timezone.now() + timedelta(days=1)
    challenge.save()
    phase.daily_limit, phase.concurrent_limit = 1, 5
    phase.save()
    Submission.create(phase=phase, user=participant, uploaded_file=upload("p.csv", predictions))
    Submission.create(phase=phase, user=rival, uploaded_file=upload("p.csv", predictions))
    with pytest.raises(ValidationError, match="over its daily limit of 1"):
        team.merge_into(other)
    phase.daily_limit = 2
    phase.save()
    merged = team.merge_into(other)
    assert merged.has_member(participant) and merged.has_member(rival)
    assert Submission.objects.filter(team=merged).count() == 2
    assert not Team.objects.filter(pk=team.pk).exists()


def test_co_organizers_are_added_and_removed_by_the_creator(client, challenge, organizer, co_organizer, outsider,
                                                           participant, team):
    client.login(username=co_organizer.username, password=PASSWORD)
    client.post(f"/challenges/{challenge.slug}/organizers/", {"username": outsider.username})
    assert challenge.is_organizer(outsider)
    response = client.post(f"/challenges/{challenge.slug}/organizers/", {"username": participant.username})
    assert "cannot compete" in str(response.context["form"].errors)
    assert client.post(f"/challenges/{challenge.slug}/organizers/{outsider.pk}/remove/").status_code == 403
    client.login(username=organizer.username, password=PASSWORD)
    client.post(f"/challenges/{challenge.slug}/organizers/{outsider.pk}/remove/")
    assert not challenge.is_organizer(outsider)


def test_only_what_nothing_depends_on_is_deleted(client, challenge, phase, team, participant, organizer,
                                                 co_organizer, predictions):
    Submission.create(phase=phase, user=participant, uploaded_file=upload("p.csv", predictions))
    client.login(username=co_organizer.username, password=PASSWORD)
    assert client.post(f"/challenges/{challenge.slug}/delete/").status_code == 403  # the creator deletes it
    client.login(username=organizer.username, password=PASSWORD)
    for url in (f"/challenges/phases/{phase.pk}/delete/", f"/challenges/{challenge.slug}/test-sets/{phase.test_set.pk}/delete/",
                f"/challenges/{challenge.slug}/delete/"):
        client.post(url)
    assert Challenge.objects.filter(pk=challenge.pk).exists()
    assert challenge.phases.exists() and challenge.test_sets.exists()
    Submission.objects.all().delete()
    team.delete()
    client.post(f"/challenges/phases/{phase.pk}/delete/")
    client.post(f"/challenges/{challenge.slug}/test-sets/{phase.test_set.pk}/delete/")
    client.post(f"/challenges/{challenge.slug}/delete/")
    assert not Challenge.objects.filter(pk=challenge.pk).exists()


def test_a_sanity_check_phase_must_be_passed_first(challenge, phase, team, participant, predictions):
    from .conftest import run_evaluations

    final = type(phase).objects.create(challenge=challenge, name="Final", test_set=phase.test_set, parent=phase,
                                       primary_metric="auc", starts_at=phase.starts_at, ends_at=phase.ends_at)
    assert "sanity-check phase" in final.submission_problem(team)
    run_evaluations(Submission.create(phase=phase, user=participant, uploaded_file=upload("p.csv", predictions)))
    assert final.submission_problem(team) is None
