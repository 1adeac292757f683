from django.apps import AppConfig


class SubmissionsConfig(AppConfig):
    name = "mica.submissions"
    label = "submissions"
