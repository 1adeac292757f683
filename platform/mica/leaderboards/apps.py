from django.apps import AppConfig


class LeaderboardsConfig(AppConfig):
    name = "mica.leaderboards"
    label = "leaderboards"
