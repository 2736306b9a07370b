from django.apps import AppConfig


class BasinsConfig(AppConfig):
    name = "basins"
    default_auto_field = "django.db.models.BigAutoField"
