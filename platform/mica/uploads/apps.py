from django.apps import AppConfig


class UploadsConfig(AppConfig):
    name = "mica.uploads"
    label = "uploads"
    verbose_name = "Resumable uploads"
