from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from .access import organized_challenge
from .forms import ChallengeForm, PhaseForm, RegistrationForm, TeamCreateForm, TeamJoinForm, TestSetForm
from .models import Challenge, ChallengeRole, Phase, Role, Team, TestSet


def detail(request, slug):
    challenge = get_object_or_404(Challenge, slug=slug)
    context = {
        "challenge": challenge,
        "phases": challenge.phases.all(),
        "roles": challenge.role_of(request.user),
        "is_organizer": challenge.is_organizer(request.user),
        "team": challenge.team_of(request.user),
        "registration_form": RegistrationForm(),
        "team_create_form": TeamCreateForm(),
        "team_join_form": TeamJoinForm(),
        "datasets": [d for d in challenge.datasets.all() if d.can_be_viewed_by(request.user)],
    }
    if context["is_organizer"]:
        context["test_sets"] = challenge.test_sets.all()
    return render(request, "challenges/detail.html", context)


@login_required
def create(request):
    form = ChallengeForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        with transaction.atomic():
            form.instance.created_by = request.user
            challenge = form.save()
            ChallengeRole.objects.create(challenge=challenge, user=request.user, role=Role.ORGANIZER)
        return redirect(challenge)
    return render(request, "challenges/create.html", {"form": form})


@login_required
@require_POST
def register(request, slug):
    challenge = get_object_or_404(Challenge, slug=slug)
    form = RegistrationForm(request.POST)
    if form.is_valid():
        challenge.register(request.user)
        messages.success(request, "You are registered. Create or join a team to submit.")
    else:
        messages.error(request, "Accept the terms to register.")
    return redirect(challenge)


@login_required
@require_POST
def create_team(request, slug):
    challenge = get_object_or_404(Challenge, slug=slug)
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
    challenge = get_object_or_404(Challenge, slug=slug)
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
def create_test_set(request, slug):
    challenge = organized_challenge(request, slug)
    form = TestSetForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            TestSet.create_from_upload(challenge, form.cleaned_data["name"], form.cleaned_data["truth_file"])
        except ValidationError as error:
            form.add_error("truth_file", error)
        else:
            messages.success(request, "Test set stored.")
            return redirect(challenge)
    return render(request, "challenges/test_set_form.html", {"challenge": challenge, "form": form})


@login_required
def create_phase(request, slug):
    challenge = organized_challenge(request, slug)
    form = PhaseForm(request.POST or None, challenge=challenge)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Phase added.")
        return redirect(challenge)
    return render(request, "challenges/phase_form.html", {"challenge": challenge, "form": form})


def case_ids(request, pk):
    """The list of case ids a submission must cover: public, it reveals no label."""
    phase = get_object_or_404(Phase, pk=pk)
    response = HttpResponse(phase.test_set.case_ids_csv(), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{phase.challenge.slug}-case-ids.csv"'
    return response
