"""The stream row: name within its basin, resolved configuration, cipher, lifecycle.

Models hold configuration only; every change goes through ``streams.services``.
"""

from __future__ import annotations

from django.db import models

from basins.models import Basin
from storagecore.config import StreamConfig


class Stream(models.Model):
    basin = models.ForeignKey(Basin, on_delete=models.CASCADE, related_name="streams")
    name = models.CharField(max_length=512)
    # The resolved StreamConfig in its API form (spec §2.2).
    config = models.JSONField(default=dict)
    cipher = models.CharField(max_length=16, blank=True, default="")
    created_at = models.DateTimeField()
    deleted_at = models.DateTimeField(null=True, blank=True, db_index=True)
    creation_key = models.CharField(max_length=64, blank=True, default="")
    # Delete-on-empty (spec §8): when the background pass next examines this stream.
    empty_deadline_ms = models.BigIntegerField(null=True, blank=True, db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["basin", "name"], name="stream_unique_name_in_basin")
        ]
        ordering = ["basin__name", "name"]

    def __str__(self) -> str:
        return f"{self.basin.name}/{self.name}"

    @property
    def is_deleting(self) -> bool:
        return self.deleted_at is not None

    def stream_config(self) -> StreamConfig:
        return StreamConfig.from_json(self.config or None)

    def set_stream_config(self, config: StreamConfig) -> None:
        self.config = config.to_json()
