"""System checks for dangerous combinations of settings."""

from django.conf import settings
from django.core.checks import Error, Warning, register


@register(deploy=True)
def check_production_services(app_configs, **kwargs):
    problems = []
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        problems.append(
            Warning(
                "The site runs on SQLite.",
                hint="Set DATABASE_URL to a PostgreSQL database in production.",
                id="mica.W001",
            )
        )
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        problems.append(
            Warning(
                "Celery uses the file-system broker, which works only on one machine.",
                hint="Set CELERY_BROKER_URL to a Redis URL in production.",
                id="mica.W002",
            )
        )
    return problems


@register()
def check_private_storage_is_not_public(app_configs, **kwargs):
    private = settings.STORAGES["private"]["OPTIONS"]
    public = settings.STORAGES["default"]["OPTIONS"]
    if private.get("base_url") or str(private["location"]) == str(public["location"]):
        return [
            Error(
                "Private files (ground truth, submissions) would be reachable through a public URL.",
                hint="Keep the 'private' storage's base_url None and its location apart from MEDIA_ROOT.",
                id="mica.E001",
            )
        ]
    return []
