from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from mica.challenges import access as challenge_access
from mica.core.storage import download_response

from .access import submission_for
from .forms import BaselineForm, SubmissionForm
from .models import Submission


@login_required
def create(request, phase_pk):
    phase = challenge_access.phase_for(request.user, phase_pk)
    challenge = phase.challenge
    team = challenge.team_of(request.user)
    form = SubmissionForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            submission = Submission.create(phase=phase, user=request.user, uploaded_file=form.cleaned_data["predictions"],
                                           comment=form.cleaned_data["comment"])
        except ValidationError as error:
            for message in error.messages:
                form.add_error("predictions", message)
        else:
            return redirect(submission)
    submissions = list(Submission.objects.filter(phase=phase, team=team).with_team_view()) if team else []
    context = {
        "phase": phase,
        "challenge": challenge,
        "team": team,
        "form": form,
        "problem": phase.submission_problem(team),
        "remaining": phase.remaining_submissions(team) if team else 0,
        "truth": phase.test_set.latest_version,
        "n_cases": phase.test_set.cases.count(),
        "rows": [(submission, submission.team_view()) for submission in submissions],
    }
    return render(request, "submissions/create.html", context)


@login_required
def create_baseline(request, phase_pk):
    phase = challenge_access.organized_phase(request.user, phase_pk)
    form = BaselineForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            submission = Submission.create(phase=phase, user=request.user, uploaded_file=form.cleaned_data["predictions"],
                                           comment=form.cleaned_data["comment"], baseline=True)
        except ValidationError as error:
            for message in error.messages:
                form.add_error("predictions", message)
        else:
            messages.success(request, "Baseline stored; it is shown marked and unranked once scored.")
            return redirect(submission)
    return render(request, "core/form_page.html", {"form": form, "title": f"Post a baseline to {phase.name}",
                                                   "submit": "Post baseline", "challenge": phase.challenge})


@login_required
def detail(request, uuid):
    submission = submission_for(request.user, uuid)
    is_organizer = submission.phase.challenge.is_organizer(request.user)
    context = {"submission": submission, "view": submission.team_view(), "events": submission.events.all(),
               "is_organizer": is_organizer, "is_member": submission.team is not None and submission.team.has_member(request.user)}
    if is_organizer:
        context["evaluations"] = submission.evaluations.select_related("truth_version").order_by("-truth_version__number", "split")
    return render(request, "submissions/detail.html", context)


@login_required
def download(request, uuid):
    submission = submission_for(request.user, uuid)
    if not submission.file:  # a container's run has not written its predictions yet
        raise Http404("No predictions yet.")
    return download_response(submission.file, submission.original_filename)


@login_required
@require_POST
def select(request, uuid):
    submission = submission_for(request.user, uuid)
    try:
        submission.set_selected(request.POST.get("selected") == "1", request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect(request.POST.get("next") or submission.get_absolute_url())


@login_required
@require_POST
def cancel(request, uuid):
    submission = submission_for(request.user, uuid)
    if not (submission.phase.challenge.is_organizer(request.user) or submission.team.has_member(request.user)):
        raise PermissionDenied("Only the team and the organizers can cancel this submission's scoring.")
    try:
        submission.cancel_scoring(request.user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "Scoring cancelled.")
    return redirect(submission)
