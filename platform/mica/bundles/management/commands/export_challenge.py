from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from mica.bundles.mica_format import export_bundle
from mica.challenges.models import Challenge


class Command(BaseCommand):
    help = "Writes a challenge as a bundle (a zip with challenge.yaml and the files it names)."

    def add_arguments(self, parser):
        parser.add_argument("slug")
        parser.add_argument("output", type=Path, help="The .zip to write.")
        parser.add_argument("--with-truth", action="store_true",
                            help="Include every test set's latest truth and its split (keep the file private).")

    def handle(self, slug, output, with_truth, **options):
        challenge = Challenge.objects.filter(slug=slug).first()
        if challenge is None:
            raise CommandError(f"No challenge has the slug {slug!r}.")
        output.write_bytes(export_bundle(challenge, with_truth=with_truth))
        self.stdout.write(f"Wrote {output} ({output.stat().st_size} bytes).")
