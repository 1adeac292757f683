"""The Celery application shared by the web process and every worker.

Queues by kind of work: ``ingest`` (uploads, anonymization), ``cpu`` (housekeeping),
``gpu`` (scoring, teams' containers) and ``metrics`` (organizers' metric containers). A worker
picks its queues with ``-Q``.
"""

import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("mica")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def limit_torch_threads(**kwargs):
    """Each pool process gets MICA_TORCH_THREADS threads: torch's default of one per core,
    in every process of a pool, makes small tensor operations stall on a shared machine."""
    from django.conf import settings

    if settings.MICA_TORCH_THREADS:
        import torch

        torch.set_num_threads(settings.MICA_TORCH_THREADS)
