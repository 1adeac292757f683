from django.apps import AppConfig
from django.core.management import call_command
from django.db.models.signals import post_migrate


def create_cache_table(using, **kwargs):
    # A no-op unless the database cache is configured (no Redis: `make demo`).
    call_command("createcachetable", database=using, verbosity=0)


class AccountsConfig(AppConfig):
    name = "mica.accounts"
    label = "accounts"

    def ready(self):
        # Once per migrate, after an app with models (this one has none, so gets no signal).
        post_migrate.connect(create_cache_table, sender=self.apps.get_app_config("auth"))
