from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "mica.datasets"
    label = "datasets"
