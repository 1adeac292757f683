from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "mica.notifications"
    label = "notifications"
