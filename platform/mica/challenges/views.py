from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST
from rest_framework.generics import get_object_or_404  # a malformed id is a 404, not a 500

from mica.core.csv_export import csv_response
from mica.notifications.events import registration_approved
from mica.submissions.models import Submission

from . import access
from .forms import (ChallengeForm, OrganizerForm, OrganizerRequestForm, PhaseForm, ReasonForm, RegistrationForm, TeamCreateForm,
                    TeamJoinForm, TeamMergeForm, TeamRenameForm, TestSetForm, TruthVersionForm)
from .models import Challenge, ChallengeRole, OrganizerRequest, Role, Team, TestSet


def form_page(request, form, *, title, submit, challenge=None, intro=""):
    return render(request, "core/form_page.html",
                  {"form": form, "title": title, "submit": submit, "challenge": challenge, "intro": intro})


def detail(request, slug):
    challenge = access.challenge_for(request.user, slug)
    is_organizer = challenge.is_organizer(request.user)
    team = challenge.team_of(request.user)
    context = {
        "challenge": challenge,
        "phases": challenge.phases.all(),
        "roles": challenge.role_of(request.user),
        "pending": request.user.is_authenticated and challenge.roles.filter(
            user=request.user, role=Role.PARTICIPANT, approved_at=None).exists(),
        "is_organizer": is_organizer,
        "team": team,
        "registration_form": RegistrationForm(),
        "team_create_form": TeamCreateForm(),
        "team_join_form": TeamJoinForm(),
        "datasets": [d for d in challenge.datasets.all() if d.can_be_viewed_by(request.user)],
    }
    if is_organizer:
        context["test_sets"] = challenge.test_sets.annotate(n_cases=Count("cases")).prefetch_related("versions")
    return render(request, "challenges/detail.html", context)


# -- challenges -----------------------------------------------------------------------------
@login_required
def create(request):
    if not request.user.has_perm("challenges.add_challenge"):
        messages.info(request, "Creating challenges is open to organizers the site's staff has approved. Ask below.")
        return redirect("challenges:request_organizer")
    form = ChallengeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            form.instance.created_by = request.user
            challenge = form.save()
            challenge.add_organizer(request.user)
        messages.success(request, "The challenge is a draft: only its organizers see it until you publish it.")
        return redirect(challenge)
    return form_page(request, form, title="New challenge", submit="Create draft")


@login_required
def request_organizer(request):
    pending = OrganizerRequest.objects.filter(user=request.user, decided_at=None).first()
    form = OrganizerRequestForm(request.POST or None)
    if request.method == "POST" and not pending and form.is_valid():
        OrganizerRequest.objects.create(user=request.user, motivation=form.cleaned_data["motivation"])
        messages.success(request, "Your request was sent to the site's staff.")
        return redirect("core:home")
    intro = ("Your request is waiting for the staff's answer." if pending
             else "Tell the site's staff which challenge you want to run and for whom.")
    return form_page(request, form, title="Ask to organize challenges", submit="Send request", intro=intro)


@login_required
def organizer_requests(request):
    if not request.user.is_staff:
        raise PermissionDenied("Only the site's staff decide on organizer requests.")
    if request.method == "POST":
        organizer_request = get_object_or_404(OrganizerRequest, pk=request.POST.get("request"), decided_at=None)
        organizer_request.decide(approve=request.POST.get("decision") == "approve", by=request.user)
        return redirect("challenges:organizer_requests")
    return render(request, "challenges/organizer_requests.html",
                  {"requests": OrganizerRequest.objects.select_related("user").order_by("decided_at", "-created_at")})


@login_required
def edit(request, slug):
    challenge = access.organized_challenge(request.user, slug)
    form = ChallengeForm(request.POST or None, instance=challenge)
    if request.method == "POST" and form.is_valid():
        challenge = form.save()
        messages.success(request, "Challenge saved.")
        return redirect(challenge)
    return form_page(request, form, title=f"Edit {challenge.title}", submit="Save", challenge=challenge)


@login_required
@require_POST
def delete(request, slug):
    challenge = access.organized_challenge(request.user, slug)
    if not challenge.is_owner(request.user):
        raise PermissionDenied("Only the organizer who created the challenge can delete it.")
    dependents = challenge.dependents()
    if dependents:
        messages.error(request, f"The challenge has {', '.join(dependents)}; it cannot be deleted.")
        return redirect(challenge)
    challenge.delete()
    messages.success(request, "Challenge deleted.")
    return redirect("core:home")


@login_required
@require_POST
def publish(request, slug):
    challenge = access.organized_challenge(request.user, slug)
    publish = request.POST.get("state") == Challenge.State.PUBLISHED
    challenge.set_state(Challenge.State.PUBLISHED if publish else Challenge.State.DRAFT)
    messages.success(request, "Published: everyone can see the challenge." if publish else "Back to draft.")
    return redirect(challenge)


@login_required
def organizers(request, slug):
    challenge = access.organized_challenge(request.user, slug)
    form = OrganizerForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = get_user_model().objects.filter(username=form.cleaned_data["username"]).first()
        if user is None:
            form.add_error("username", "No user has that name.")
        elif challenge.team_of(user):
            form.add_error("username", "That user is in a team of this challenge; organizers cannot compete.")
        else:
            challenge.add_organizer(user)
            messages.success(request, f"{user.username} is now a co-organizer.")
            return redirect("challenges:organizers", slug)
    roles = challenge.roles.filter(role=Role.ORGANIZER).select_related("user")
    return render(request, "challenges/organizers.html", {"challenge": challenge, "form": form, "roles": roles})


@login_required
@require_POST
def remove_organizer(request, slug, user_pk):
    challenge = access.organized_challenge(request.user, slug)
    if not challenge.is_owner(request.user):
        raise PermissionDenied("Only the organizer who created the challenge removes co-organizers.")
    if user_pk == challenge.created_by_id:
        messages.error(request, "The challenge's creator stays an organizer.")
    else:
        challenge.roles.filter(role=Role.ORGANIZER, user_id=user_pk).delete()
    return redirect("challenges:organizers", slug)


@login_required
def dashboard(request, slug):
    """Participants, teams, every submission with its status, and the queue."""
    challenge = access.organized_challenge(request.user, slug)
    submissions = (Submission.objects.filter(phase__challenge=challenge)
                   .select_related("team", "phase").prefetch_related("evaluations")[:200])
    return render(request, "challenges/dashboard.html",
                  {"challenge": challenge, "submissions": submissions, **challenge.dashboard()})


@login_required
@require_POST
def approve_participant(request, slug, user_pk):
    challenge = access.organized_challenge(request.user, slug)
    role = get_object_or_404(ChallengeRole, challenge=challenge, user_id=user_pk, role=Role.PARTICIPANT)
    if request.POST.get("decision") == "approve":
        with transaction.atomic():
            role.approved_at = timezone.now()
            role.save(update_fields=["approved_at"])
            registration_approved(role)
    else:
        role.delete()
    return redirect("challenges:dashboard", slug)


# -- taking part ----------------------------------------------------------------------------
@login_required
@require_POST
def register(request, slug):
    challenge = access.challenge_for(request.user, slug)
    form = RegistrationForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Accept the terms to register.")
        return redirect(challenge)
    try:
        role = challenge.register(request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "You are registered. Create or join a team to submit." if role.approved_at
                         else "Your registration waits for an organizer's approval.")
    return redirect(challenge)


@login_required
@require_POST
def create_team(request, slug):
    challenge = access.challenge_for(request.user, slug)
    form = TeamCreateForm(request.POST)
    if form.is_valid():
        try:
            Team.create_for(challenge, request.user, form.cleaned_data["name"])
            messages.success(request, f"Team {form.cleaned_data['name']!r} created.")
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
    return redirect(challenge)


@login_required
@require_POST
def join_team(request, slug):
    challenge = access.challenge_for(request.user, slug)
    form = TeamJoinForm(request.POST)
    team = None
    if form.is_valid():
        team = Team.objects.filter(challenge=challenge, join_code=form.cleaned_data["join_code"].strip()).first()
    if team is None:
        messages.error(request, "No team of this challenge has that code.")
        return redirect(challenge)
    try:
        team.add_member(request.user)
        messages.success(request, f"You joined {team.name}.")
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect(challenge)


@login_required
def team(request, slug, pk):
    team = access.team_for(request.user, slug, pk)
    challenge = team.challenge
    is_member = team.has_member(request.user)
    action = request.POST.get("action") if request.method == "POST" else None
    if action:
        try:
            return _team_action(request, team, action)
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
            return redirect(team)
    return render(request, "challenges/team.html", {
        "challenge": challenge, "team": team, "is_member": is_member,
        "is_organizer": challenge.is_organizer(request.user),
        "members": team.memberships.select_related("user"),
        "rename_form": TeamRenameForm(initial={"name": team.name}), "merge_form": TeamMergeForm(),
        "reason_form": ReasonForm(),
    })


def _team_action(request, team, action):
    challenge = team.challenge
    if action in ("disqualify", "reinstate"):
        access.check_team_judge(request.user, team)
        if action == "disqualify":
            form = ReasonForm(request.POST)
            if not form.is_valid():
                raise ValidationError("Give the reason for the disqualification.")
            team.disqualify(form.cleaned_data["reason"])
            messages.success(request, f"{team.name} is disqualified; its rows left the leaderboards.")
        else:
            team.reinstate()
        return redirect(team)
    access.check_team_member(request.user, team)
    if action == "leave":
        team.remove_member(request.user)
        messages.success(request, f"You left {team.name}.")
        return redirect(challenge)
    if action == "remove":
        user = get_object_or_404(get_user_model(), pk=request.POST.get("user"))
        team.remove_member(user)
        messages.success(request, f"{user.username} is no longer in the team.")
    elif action == "rename":
        form = TeamRenameForm(request.POST)
        if not form.is_valid():
            raise ValidationError("Give the team a name.")
        team.rename(form.cleaned_data["name"])
    elif action == "merge":
        form = TeamMergeForm(request.POST)
        other = form.is_valid() and Team.objects.filter(challenge=challenge, join_code=form.cleaned_data["join_code"]).first()
        if not other:
            raise ValidationError("No team of this challenge has that code.")
        merged = team.merge_into(other)
        messages.success(request, f"Your team merged into {merged.name}.")
        return redirect(merged)
    else:
        raise ValidationError(f"Unknown action {action!r}.")
    return redirect(team)


# -- test sets and phases -------------------------------------------------------------------
@login_required
def create_test_set(request, slug):
    challenge = access.organized_challenge(request.user, slug)
    form = TestSetForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            TestSet.create_from_upload(challenge, data["name"], data["truth_file"], user=request.user,
                                       private_fraction=data["private_fraction"], seed=data["seed"],
                                       patients=data["patients_file"])
        except ValidationError as error:
            form.add_error("truth_file", error)
        else:
            messages.success(request, "Test set stored and split.")
            return redirect(challenge)
    return form_page(request, form, title="Upload a hidden test set", submit="Store test set", challenge=challenge)


def _organized_test_set(user, slug, pk):
    challenge = access.organized_challenge(user, slug)
    return get_object_or_404(TestSet.objects.select_related("challenge"), challenge=challenge, pk=pk)


@login_required
def test_set(request, slug, pk):
    test_set = _organized_test_set(request.user, slug, pk)
    versions = test_set.versions.select_related("created_by", "rescore")
    splits = test_set.split_counts()
    return render(request, "challenges/test_set.html", {
        "challenge": test_set.challenge, "test_set": test_set, "versions": versions, "splits": splits,
        "form": TruthVersionForm(),
    })


@login_required
@require_POST
def new_truth_version(request, slug, pk):
    test_set = _organized_test_set(request.user, slug, pk)
    form = TruthVersionForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            version = test_set.correct_truth(form.cleaned_data["truth_file"], user=request.user,
                                             note=form.cleaned_data["note"])
        except ValidationError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, f"Version {version.number} stored; every submission is being re-scored.")
    else:
        messages.error(request, "Choose the corrected truth file and say what changed.")
    return redirect("challenges:test_set", slug, pk)


@login_required
@require_POST
def delete_test_set(request, slug, pk):
    test_set = _organized_test_set(request.user, slug, pk)
    dependents = test_set.dependents()
    if dependents:
        messages.error(request, f"The test set is used by {', '.join(dependents)}; it cannot be deleted.")
        return redirect("challenges:test_set", slug, pk)
    test_set.delete_with_files()
    messages.success(request, "Test set deleted.")
    return redirect(test_set.challenge)


@login_required
def create_phase(request, slug):
    challenge = access.organized_challenge(request.user, slug)
    form = PhaseForm(request.POST or None, challenge=challenge)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Phase added.")
        return redirect(challenge)
    return form_page(request, form, title="Add a phase", submit="Add phase", challenge=challenge)


@login_required
def edit_phase(request, pk):
    phase = access.organized_phase(request.user, pk)
    form = PhaseForm(request.POST or None, instance=phase, challenge=phase.challenge)
    if request.method == "POST" and form.is_valid():
        phase = form.save()
        if "primary_metric" in form.changed_data:
            phase.refresh_primary_scores()
        messages.success(request, "Phase saved.")
        return redirect(phase.challenge)
    return form_page(request, form, title=f"Edit {phase.name}", submit="Save", challenge=phase.challenge)


@login_required
@require_POST
def delete_phase(request, pk):
    phase = access.organized_phase(request.user, pk)
    dependents = phase.dependents()
    if dependents:
        messages.error(request, f"The phase has {', '.join(dependents)}; it cannot be deleted.")
    else:
        phase.delete()
        messages.success(request, "Phase deleted.")
    return redirect(phase.challenge)


@login_required
@require_POST
def reveal_private(request, pk):
    phase = access.organized_phase(request.user, pk)
    try:
        phase.reveal_private()
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "The private leaderboard is public now.")
    return redirect("leaderboards:private", pk)


@login_required
def case_ids(request, pk):
    """The case ids a submission must cover, for participants and organizers (no labels, no split)."""
    phase = access.case_list_phase(request.user, pk)
    return csv_response(f"{phase.challenge.slug}-case-ids.csv", ["case_id"],
                        ([case_id] for case_id in phase.test_set.case_ids()))
