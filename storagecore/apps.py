"""The Django side of the engine: the index tables (models) and the catalog adapter."""

from django.apps import AppConfig


class StoragecoreConfig(AppConfig):
    name = "storagecore"
    verbose_name = "Storage engine"
    default_auto_field = "django.db.models.BigAutoField"
