from django.apps import AppConfig


class BundlesConfig(AppConfig):
    name = "mica.bundles"
    label = "bundles"
    verbose_name = "Challenge bundles"
