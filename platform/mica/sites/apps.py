from django.apps import AppConfig


class SitesConfig(AppConfig):
    name = "mica.sites"
    label = "sites"
    verbose_name = "Evaluation sites (hospitals scoring inside their firewall)"
