"""The basin row: name, sparse configuration, lifecycle timestamps.

Models hold configuration only; every change goes through ``basins.services``.
"""

from __future__ import annotations

from typing import Any

from django.db import models

from storagecore.config import BasinConfig


class Basin(models.Model):
    name = models.CharField(max_length=48, unique=True)
    # The API form of BasinConfig (spec §2.2), default stream config kept sparse.
    config = models.JSONField(default=dict)
    created_at = models.DateTimeField()
    deleted_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Fingerprint of (request token, requested config) of the creating request.
    creation_key = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def is_deleting(self) -> bool:
        return self.deleted_at is not None

    def basin_config(self) -> BasinConfig:
        return BasinConfig.from_json(self.config or None)

    def set_basin_config(self, config: BasinConfig) -> None:
        self.config = config.to_json()

    def config_json(self) -> dict[str, Any]:
        return self.basin_config().to_json()
