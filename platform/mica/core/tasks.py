"""The one task decorator of Mica, and the sweep of leased work.

Every task is acknowledged late (after it finished) and requeued when its worker dies, so a
killed worker never loses work; it must therefore be idempotent: it takes a primary key,
reloads its row, claims it with a lease (mica.core.models.LeasedWork) and does one step.
"""

from celery import shared_task
from django.apps import apps
from django.conf import settings

QUEUES = ("ingest", "cpu", "gpu", "metrics")


def mica_task(queue):
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}; Mica's queues are {', '.join(QUEUES)}")

    def decorate(function):
        # The hard limit stops a worker that outlives the work's time limit; the sweep has
        # failed that work by then, so nothing it would still write is kept.
        return shared_task(acks_late=True, reject_on_worker_lost=True, queue=queue,
                           time_limit=settings.MICA_WORK_TIME_LIMIT + 60)(function)

    return decorate


@mica_task(queue="cpu")
def sweep():
    """Every model that keeps work for workers has a `sweep` class method: leased work (uploads,
    submissions, evaluations, re-scores) re-sends what may be lost and takes back expired leases;
    leaderboard snapshots re-send a lost refresh."""
    for model in apps.get_models():
        if callable(getattr(model, "sweep", None)):
            model.sweep()
