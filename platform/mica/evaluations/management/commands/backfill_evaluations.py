from django.core.management.base import BaseCommand, CommandError

from mica.challenges.models import Phase
from mica.evaluations.models import Backfill


class Command(BaseCommand):
    help = ("Queues, for each phase given, a worker's re-scoring of the evaluations stored before results kept "
            "intervals, per-case labels and scores, and FROC curves. Safe to run again: it queues nothing "
            "while one runs, and re-scores only what still lacks them.")

    def add_arguments(self, parser):
        parser.add_argument("phases", nargs="*", type=int, metavar="PHASE_ID")
        parser.add_argument("--all", action="store_true", help="Every phase of the site.")

    def handle(self, phases, all, **options):
        if all == bool(phases):
            raise CommandError("Give phase ids, or --all (not both).")
        chosen = Phase.objects.select_related("challenge", "test_set").order_by("pk")
        if not all:
            chosen = chosen.filter(pk__in=phases)
            unknown = sorted(set(phases) - set(chosen.values_list("pk", flat=True)))
            if unknown:
                raise CommandError(f"No phase has the id {', '.join(map(str, unknown))}.")
        for phase in chosen:
            backfill = Backfill.request(phase)
            if backfill is None:
                self.stdout.write(f"Phase {phase.pk}: every evaluation has its intervals and curves.")
            else:
                self.stdout.write(f"Phase {phase.pk}: backfill {backfill.pk} ({backfill.get_status_display().lower()}) "
                                  f"re-scores {backfill.total} evaluations.")
