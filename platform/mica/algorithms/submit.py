"""Containers sent through resumable uploads (mica.uploads): a team's to a phase (purpose
`container-submission`) and an organizer's metric container (`metric-container`): who may
send one, and what the finished file becomes."""

from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse

from mica.challenges import access as challenge_access

from .metric_containers import parse_declaration
from .models import MIB, Algorithm, ContainerImage, InferenceRun, MetricContainer


def _phase_of(user, target):
    phase_pk = str(target.get("phase", ""))
    if not phase_pk.isdigit():
        raise ValidationError("Upload-Metadata: 'phase' must be the id of the phase you submit to.")
    phase = challenge_access.phase_for(user, int(phase_pk))
    if not phase.accepts_containers:
        raise ValidationError(f"The phase {phase.name!r} does not take container images.")
    return phase


def admit_container(user, target):
    """The phase's image size limit, once the user's team may submit there now."""
    phase = _phase_of(user, target)
    team = phase.challenge.team_of(user)
    if team is None:
        raise PermissionDenied("Join or create a team before submitting.")
    problem = phase.submission_problem(team)
    if problem:
        raise ValidationError(problem)
    return phase.container_max_mb * MIB


def receive_container(upload):
    """Stores the image (once per digest), the team's algorithm and the submission with its run;
    returns the submission's URL."""
    phase = _phase_of(upload.owner, upload.target)
    team = phase.challenge.team_of(upload.owner)
    if team is None:
        raise PermissionDenied("Join or create a team before submitting.")
    with upload.joined() as path:
        image = ContainerImage.store(path)
    algorithm, _ = Algorithm.objects.get_or_create(
        team=team, image=image,
        defaults={"challenge": phase.challenge, "name": upload.filename or image.short_digest, "uploaded_by": upload.owner})
    run = InferenceRun.submit(phase=phase, user=upload.owner, algorithm=algorithm,
                              filename=upload.filename or f"container {image.short_digest}",
                              comment=str(upload.target.get("comment", ""))[:500])
    return run.submission.get_absolute_url()


def admit_metric_container(user, target):
    """Organizers of the phase; the phase's image size limit."""
    phase = _organized_phase(user, target)
    _declared(target)
    problem = MetricContainer.attach_problem(phase)
    if problem:
        raise ValidationError(problem)
    return phase.container_max_mb * MIB


def receive_metric_container(upload):
    """Stores the image and makes it the phase's scorer; returns the phase's metric container page."""
    phase = _organized_phase(upload.owner, upload.target)
    declared = _declared(upload.target)
    problem = MetricContainer.attach_problem(phase)
    if problem:
        raise ValidationError(problem)
    with upload.joined() as path:
        image = ContainerImage.store(path)
    MetricContainer.attach(phase=phase, image=image, metrics=declared, user=upload.owner)
    return reverse("algorithms:metric_container", args=[phase.pk])


def _organized_phase(user, target):
    phase_pk = str(target.get("phase", ""))
    if not phase_pk.isdigit():
        raise ValidationError("Upload-Metadata: 'phase' must be the id of the phase it scores.")
    return challenge_access.organized_phase(user, int(phase_pk))


def _declared(target):
    try:
        return parse_declaration(target.get("metrics", ""))
    except ValueError as error:
        raise ValidationError(str(error)) from error
