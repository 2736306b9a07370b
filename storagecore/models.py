"""Index tables of the record log (ARCHITECTURE §2), used only by ``storagecore.catalog``.

Sequence numbers and timestamps are unsigned 64-bit values; ``U64Field`` stores
them in a signed BIGINT shifted by 2^63, which keeps their order, so range
queries work unchanged on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from django.db import models

_SHIFT = 2**63


class U64Field(models.BigIntegerField):  # type: ignore[type-arg]
    description = "Unsigned 64-bit integer (stored shifted by 2^63)"

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        return None if value is None else int(value) - _SHIFT

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        return None if value is None else int(value) + _SHIFT

    def to_python(self, value: Any) -> Any:
        return value


class StreamLog(models.Model):
    """The durable state of one stream's log: tail, fencing token, trim point."""

    stream_id = models.BigIntegerField(primary_key=True)
    next_seq = U64Field(default=0)
    last_ts = U64Field(default=0)
    fencing_token = models.CharField(max_length=64, blank=True, default="")
    trim_point = U64Field(default=0)
    # Storage accounting, kept in the same statements that add and remove index rows:
    # bytes of this stream's blocks in object storage, and their records' metered size.
    stored_bytes = models.BigIntegerField(default=0)
    metered_bytes = models.BigIntegerField(default=0)
    # When the last flush holding records of this stream committed (delete-on-empty, §8).
    written_at_ms = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"stream {self.stream_id} log"


class Chunk(models.Model):
    """A run of one stream's records in one segment: where to read them, and when they expire."""

    stream_id = models.BigIntegerField()
    start_seq = U64Field()
    end_seq = U64Field()
    first_ts = U64Field()
    last_ts = U64Field()
    metered_bytes = models.BigIntegerField()
    # Fixed at write time from the retention then in force; null means never.
    expires_at_ms = models.BigIntegerField(null=True)
    segment_key = models.CharField(max_length=512)
    offset = models.BigIntegerField()
    length = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["stream_id", "start_seq"], name="chunk_stream_start")
        ]
        indexes = [
            models.Index(fields=["stream_id", "end_seq"], name="chunk_stream_end"),
            models.Index(fields=["segment_key"], name="chunk_segment"),
            models.Index(fields=["expires_at_ms"], name="chunk_expiry"),
        ]

    def __str__(self) -> str:
        return f"stream {self.stream_id} [{self.start_seq}, {self.end_seq})"


class GarbageSegment(models.Model):
    """A segment that may have become unreferenced, and when that was noticed.

    Garbage collection deletes the object once ``grace`` has passed and, checked
    again at that moment, no index row references it; then it removes this row."""

    segment_key = models.CharField(max_length=512, unique=True)
    noticed_at_ms = models.BigIntegerField(db_index=True)

    def __str__(self) -> str:
        return str(self.segment_key)


class WriterLease(models.Model):
    """One row: the epoch of the server allowed to write. A new server increments it."""

    epoch = models.BigIntegerField(default=0)
    acquired_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"writer epoch {self.epoch}"
