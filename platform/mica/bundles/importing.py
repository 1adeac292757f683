"""One entry point for every kind of bundle: Mica's challenge.yaml or Codabench's competition.yaml."""

from django.conf import settings

from mica.challenges.models import Challenge

from .codabench import FILENAME as CODABENCH_FILE
from .codabench import plan_from_codabench
from .creation import create_challenge
from .mica_format import plan_from_bundle
from .reading import Bundle, BundleError


def import_bundle(source, *, user, slug=None, task_type=None):
    """Creates a draft challenge from a bundle (a path or a binary file); BundleError lists
    every problem and nothing is created. `task_type` is needed for Codabench bundles only."""
    with Bundle(source, max_bytes=settings.MICA_MAX_BUNDLE_BYTES) as bundle:
        return _import(bundle, user=user, slug=slug, task_type=task_type)


def _import(bundle, *, user, slug, task_type):
    if bundle.has("challenge.yaml"):
        plan = plan_from_bundle(bundle)
        return create_challenge(plan, bundle, user=user, slug=slug)
    if bundle.has(CODABENCH_FILE):
        if task_type not in Challenge.TaskType.values:
            raise BundleError([f"task_type: a Codabench bundle does not say what task it is; choose one of "
                               f"{', '.join(Challenge.TaskType.values)}"])
        plan, unmapped = plan_from_codabench(bundle, task_type=task_type)
        return create_challenge(plan, bundle, user=user, slug=slug, unmapped=unmapped, source=CODABENCH_FILE)
    raise BundleError(["the bundle has neither a challenge.yaml (Mica) nor a competition.yaml (Codabench)"])
