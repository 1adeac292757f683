from django.apps import AppConfig


class ForumConfig(AppConfig):
    name = "mica.forum"
    label = "forum"
