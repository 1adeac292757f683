"""The Celery application shared by the web process and every worker.

Queues by kind of work: ``ingest`` (uploads, anonymization), ``cpu`` (housekeeping) and
``gpu`` (scoring). A worker picks its queues with ``-Q``.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("mica")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
