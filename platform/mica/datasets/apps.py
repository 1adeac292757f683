from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "mica.datasets"
    label = "datasets"

    def ready(self):
        from mica.uploads.purposes import register

        from . import pull  # noqa: F401  (registers the pull task: Celery only finds tasks.py on its own)
        from .resumable import admit_archive, receive_archive

        register("dataset-archive", admit=admit_archive, receive=receive_archive)
