from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse
from django.shortcuts import get_object_or_404, redirect, render

from mica.challenges.models import Phase

from .forms import SubmissionForm
from .models import Submission


@login_required
def create(request, phase_pk):
    phase = get_object_or_404(Phase.objects.select_related("challenge", "test_set"), pk=phase_pk)
    challenge = phase.challenge
    team = challenge.team_of(request.user)
    form = SubmissionForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            submission = Submission.create(
                phase=phase,
                user=request.user,
                uploaded_file=form.cleaned_data["predictions"],
                comment=form.cleaned_data["comment"],
            )
        except ValidationError as error:
            for message in error.messages:
                form.add_error("predictions", message)
        else:
            return redirect(submission)
    context = {
        "phase": phase,
        "challenge": challenge,
        "team": team,
        "form": form,
        "remaining": phase.remaining_submissions(team) if team else 0,
        "submissions": Submission.objects.filter(phase=phase, team=team) if team else [],
    }
    return render(request, "submissions/create.html", context)


def _readable_submission(request, uuid):
    submission = get_object_or_404(Submission.objects.select_related("phase__challenge", "team"), uuid=uuid)
    if not submission.can_be_read_by(request.user):
        raise PermissionDenied("Only the team and the organizers can see this submission.")
    return submission


@login_required
def detail(request, uuid):
    submission = _readable_submission(request, uuid)
    return render(request, "submissions/detail.html", {"submission": submission, "events": submission.events.all()})


@login_required
def download(request, uuid):
    submission = _readable_submission(request, uuid)
    return FileResponse(submission.file.open("rb"), as_attachment=True, filename=submission.original_filename)
