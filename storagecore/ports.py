"""The engine's ports: what it needs from an object store, a catalog and a clock.

Adapters live in ``storagecore.objstore`` (memory, local directory, S3) and
``storagecore.catalog`` (the Django database). The engine only sees these types.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from storagecore.sequencer import WriterState


class ObjectExists(Exception):
    """A create-only write found the key already present."""


class ObjectMissing(KeyError):
    """A read found no object under the key (garbage collection removed it, for instance)."""


class ObjectStore(Protocol):
    async def put(self, key: str, data: bytes) -> None:
        """Write ``data`` under a new ``key``, durably, failing if the key exists."""

    async def get(self, key: str, offset: int, length: int) -> bytes:
        """``length`` bytes of ``key`` from ``offset`` (one ranged read); ``ObjectMissing``
        when there is no such object."""

    async def delete(self, key: str) -> None: ...

    async def list_keys(self, prefix: str) -> list[str]: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ChunkRef:
    """One index row: a run of one stream's records inside one segment."""

    stream_id: int
    start_seq: int
    end_seq: int
    first_ts: int
    last_ts: int
    metered_bytes: int
    expires_at_ms: int | None
    segment_key: str
    offset: int
    length: int


class Fenced(Exception):
    """Another server took the writer lease: this one must stop writing."""


class Catalog(Protocol):
    async def acquire_epoch(self) -> int:
        """Take the writer lease, fencing out any earlier holder; returns the new epoch."""

    async def load_state(self, stream_id: int) -> WriterState: ...

    async def commit_flush(
        self,
        epoch: int,
        chunks: Sequence[ChunkRef],
        states: dict[int, WriterState],
    ) -> None:
        """Record a durable segment's index rows and the new stream states atomically.

        Raises ``Fenced`` when ``epoch`` no longer holds the lease."""

    async def chunks_from(self, stream_id: int, seq_num: int, limit: int) -> list[ChunkRef]:
        """Unexpired index rows of a stream holding records at or after ``seq_num``, in order."""

    async def first_seq_at_or_after(self, stream_id: int, timestamp: int) -> int | None:
        """Start of the first unexpired chunk whose last timestamp is at least ``timestamp``."""


class Clock(Protocol):
    def now_ms(self) -> int: ...


class SystemClock:
    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000
