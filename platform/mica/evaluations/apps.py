from django.apps import AppConfig


class EvaluationsConfig(AppConfig):
    name = "mica.evaluations"
    label = "evaluations"
