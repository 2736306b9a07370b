"""A record log with its background work, driven by a fake clock, for the lifecycle tests.

The engine runs on the Django catalog (the test database) and an object store; the
lifecycle's tasks are not started: tests run each pass explicitly after moving the
clock, so that every rule is checked in milliseconds instead of days.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from asgiref.sync import sync_to_async

from storagecore.catalog.django import DjangoCatalog
from storagecore.compaction import CompactionSettings
from storagecore.encoding import decode_records
from storagecore.engine import Engine, EngineSettings
from storagecore.models import Chunk, GarbageSegment, StreamLog
from storagecore.objstore.memory import MemoryObjectStore
from storagecore.ports import ChunkRef, ObjectStore
from storagecore.positions import AppendAck
from storagecore.reader import ReadLimits
from storagecore.records import AppendBatch, parse_record, trim_record
from storagecore.streamer import StreamSettings
from streams.lifecycle import Lifecycle, LifecycleSettings

_T = TypeVar("_T")

GRACE_S = 30.0
INFINITE = StreamSettings(retention_age_s=None)


class FakeClock:
    def __init__(self, now_ms: int | None = None) -> None:
        self.now = time.time_ns() // 1_000_000 if now_ms is None else now_ms

    def now_ms(self) -> int:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += int(seconds * 1000)


def batch(*bodies: bytes) -> AppendBatch:
    return AppendBatch.build([parse_record(None, [], body) for body in bodies], None, None)


def trim_batch(trim_point: int) -> AppendBatch:
    return AppendBatch.build([trim_record(trim_point)], None, None)


async def db(fn: Callable[..., _T], *args: Any) -> _T:
    return await sync_to_async(fn, thread_sensitive=False)(*args)


def chunk_rows(stream_id: int) -> list[tuple[int, int, str]]:
    rows = Chunk.objects.filter(stream_id=stream_id).order_by("start_seq")
    return list(rows.values_list("start_seq", "end_seq", "segment_key"))


def garbage_keys() -> set[str]:
    return set(GarbageSegment.objects.values_list("segment_key", flat=True))


def log_bytes(stream_id: int) -> tuple[int, int]:
    log = StreamLog.objects.get(stream_id=stream_id)
    return log.stored_bytes, log.metered_bytes


def rows_bytes(stream_id: int) -> tuple[int, int]:
    rows = Chunk.objects.filter(stream_id=stream_id)
    return sum(r.length for r in rows), sum(r.metered_bytes for r in rows)


class Log:
    """One engine and its lifecycle, on a fake clock."""

    def __init__(
        self,
        clock: FakeClock,
        store: ObjectStore | None = None,
        flush_interval_s: float = 0.0,
        compaction: CompactionSettings | None = None,
        grace_s: float = GRACE_S,
    ) -> None:
        self.clock = clock
        self.store = store or MemoryObjectStore()
        self.flush_interval_s = flush_interval_s
        self.compaction = compaction or CompactionSettings()
        self.grace_s = grace_s
        self._engine: Engine | None = None
        self._lifecycle: Lifecycle | None = None

    @property
    def engine(self) -> Engine:
        assert self._engine is not None
        return self._engine

    @property
    def lifecycle(self) -> Lifecycle:
        assert self._lifecycle is not None
        return self._lifecycle

    async def start(self) -> None:
        catalog = DjangoCatalog(self.clock)
        settings = EngineSettings(flush_interval_s=self.flush_interval_s, writer_nonce=7)
        self._engine = Engine(self.store, catalog, self.clock, settings)
        await self._engine.start()
        self._lifecycle = Lifecycle(
            self._engine,
            self.clock,
            LifecycleSettings(gc_grace_s=self.grace_s, compaction=self.compaction),
        )
        self._engine.registry.on_trim = self._lifecycle.trim_requested

    async def stop(self) -> None:
        await self.lifecycle.stop()
        await self.engine.stop()
        catalog = self.engine.catalog
        assert isinstance(catalog, DjangoCatalog)
        await catalog.close()

    async def append(
        self, stream_id: int, *bodies: bytes, settings: StreamSettings = INFINITE
    ) -> AppendAck:
        return await self.engine.append(stream_id, batch(*bodies), settings)

    async def trim(self, stream_id: int, trim_point: int) -> AppendAck:
        return await self.engine.append(stream_id, trim_batch(trim_point), INFINITE)

    async def read(self, stream_id: int, start: int = 0, page: int = 7) -> list[tuple[int, bytes]]:
        """Every readable record from ``start``, in pages of ``page`` records."""
        streamer = self.engine.streamer(stream_id)
        await streamer.load()
        out: list[tuple[int, bytes]] = []
        seq = start
        while True:
            got = await self.engine.reader.read(streamer, seq, ReadLimits(), batch_count=page)
            records = [(r[0], r[3]) for r in decode_records(got.payload)]
            if not records:
                return out
            out.extend(records)
            seq = got.next_seq

    async def segment_keys(self) -> set[str]:
        return set(await self.store.list_keys("segments/"))

    async def rows(self, stream_id: int) -> list[tuple[int, int, str]]:
        return await db(chunk_rows, stream_id)


def run(scenario: Callable[[], Awaitable[_T]]) -> _T:
    return asyncio.run(scenario())  # type: ignore[arg-type]


def refs(rows: list[ChunkRef]) -> list[tuple[int, int]]:
    return [(r.start_seq, r.end_seq) for r in rows]
