"""The one access check per kind of object, used by pages and API alike."""

from django.core.exceptions import PermissionDenied
from django.db.models import Q
from rest_framework.generics import get_object_or_404  # a malformed id is a 404, not a 500

from mica.challenges.models import Role

from .models import AnnotationProject, Assignment


def visible_projects(user):
    """The projects the user organizes or reads in."""
    if not user.is_authenticated:
        return AnnotationProject.objects.none()
    projects = AnnotationProject.objects.select_related("dataset__challenge")
    if user.is_staff:
        return projects
    return projects.filter(
        Q(dataset__challenge__roles__user=user, dataset__challenge__roles__role=Role.ORGANIZER)
        | Q(readers__user=user)
    ).distinct()


def project_for(user, pk):
    """The project, for its organizers and its readers."""
    project = get_object_or_404(AnnotationProject.objects.select_related("dataset__challenge"), pk=pk)
    if not (project.is_organizer(user) or project.reader_of(user)):
        raise PermissionDenied("You are not in this annotation project.")
    return project


def organized_project(user, pk):
    project = project_for(user, pk)
    if not project.is_organizer(user):
        raise PermissionDenied("Only the organizers of this challenge can do this.")
    return project


def adjudicated_project(user, pk):
    """The project, for whoever may see every reader's answers: organizers and adjudicators."""
    project = project_for(user, pk)
    if not project.can_adjudicate(user):
        raise PermissionDenied("Only organizers and adjudicators see the readers' answers.")
    return project


def own_assignment(user, pk):
    """An assignment, for the reader whose queue holds it (nobody else, until adjudication)."""
    assignment = get_object_or_404(
        Assignment.objects.select_related("project__dataset__challenge", "case", "reader__user"), pk=pk
    )
    if not user.is_authenticated or assignment.reader.user_id != user.pk:
        raise PermissionDenied("This case is in another reader's queue.")
    return assignment
