from django.apps import AppConfig


class AnnotationsConfig(AppConfig):
    name = "mica.annotations"
    label = "annotations"
    verbose_name = "Annotation projects"
