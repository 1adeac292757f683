from django.apps import AppConfig


class DownloadsConfig(AppConfig):
    name = "mica.downloads"
    label = "downloads"
    verbose_name = "Data downloads"
