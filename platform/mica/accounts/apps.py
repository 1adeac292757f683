from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "mica.accounts"
    label = "accounts"
