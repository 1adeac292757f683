"""The one task decorator of Mica.

Every task is acknowledged late (after it finished) and requeued when its worker dies, so a
killed worker never loses work; it must therefore be idempotent: it takes a primary key,
reloads its row, checks the row is in the status it expects and does one step.
"""

from celery import shared_task

QUEUES = ("ingest", "cpu", "gpu")


def mica_task(queue):
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}; Mica's queues are {', '.join(QUEUES)}")

    def decorate(function):
        return shared_task(acks_late=True, reject_on_worker_lost=True, queue=queue)(function)

    return decorate
