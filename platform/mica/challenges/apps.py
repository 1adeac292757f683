from django.apps import AppConfig


class ChallengesConfig(AppConfig):
    name = "mica.challenges"
    label = "challenges"
