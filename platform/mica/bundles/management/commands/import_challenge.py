from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from mica.bundles.importing import import_bundle
from mica.bundles.reading import BundleError
from mica.challenges.models import Challenge


class Command(BaseCommand):
    help = "Creates a draft challenge from a Mica or Codabench bundle; lists what was not imported."

    def add_arguments(self, parser):
        parser.add_argument("bundle", type=Path)
        parser.add_argument("--organizer", required=True, help="The username who will organize the challenge.")
        parser.add_argument("--slug", help="Another slug than the bundle's.")
        parser.add_argument("--task-type", choices=Challenge.TaskType.values, help="Codabench bundles only.")

    def handle(self, bundle, organizer, slug, task_type, **options):
        user = get_user_model().objects.filter(username=organizer).first()
        if user is None:
            raise CommandError(f"No user is named {organizer!r}.")
        if not bundle.is_file():
            raise CommandError(f"{bundle}: no such file.")
        try:
            with bundle.open("rb") as handle:
                result = import_bundle(handle, user=user, slug=slug, task_type=task_type)
        except BundleError as error:
            raise CommandError("The bundle was refused:\n" + "\n".join(f"  {p}" for p in error.problems)) from None
        self.stdout.write(f"Created the draft challenge {result.challenge.slug!r}.")
        for line in result.unmapped:
            self.stdout.write(f"  not imported: {line}")
