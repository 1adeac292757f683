from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "mica.datasets"
    label = "datasets"

    def ready(self):
        from . import pull  # noqa: F401  (registers the pull task: Celery only finds tasks.py on its own)
