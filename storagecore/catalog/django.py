"""The catalog in the Django database, reached from the event loop through threads.

ORM calls never run on the event loop: each method hands a small synchronous
function to a dedicated thread pool. Writes (flush commits, the lease) go
through one thread, which matches SQLite's single writer and keeps commit order.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from django.db import connections, transaction
from django.db.models import Q

from storagecore.models import Chunk, StreamLog, WriterLease
from storagecore.ports import ChunkRef, Clock, Fenced, SystemClock
from storagecore.sequencer import WriterState

_T = TypeVar("_T")

# How long closing waits for every pool thread to take its closing task.
_CLOSE_BARRIER_TIMEOUT_S = 5.0


class DjangoCatalog:
    def __init__(self, clock: Clock | None = None, read_threads: int = 2) -> None:
        self.clock = clock or SystemClock()
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="s2-catalog-w")
        self._readers = ThreadPoolExecutor(
            max_workers=read_threads, thread_name_prefix="s2-catalog-r"
        )
        self._pools = ((self._writer, 1), (self._readers, read_threads))

    async def _in(self, pool: ThreadPoolExecutor, fn: Callable[[], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(pool, _with_connection(fn))

    async def close(self) -> None:
        """Close the database connection of every pool thread, then stop the pools.

        A connection can only be closed by its own thread: one task per worker, held
        at a barrier until all have started, so that each runs on a different thread."""
        loop = asyncio.get_running_loop()
        for pool, workers in self._pools:
            barrier = threading.Barrier(workers)
            await asyncio.gather(
                *(loop.run_in_executor(pool, _close_connections, barrier) for _ in range(workers))
            )
            pool.shutdown(wait=False)

    async def acquire_epoch(self) -> int:
        return await self._in(self._writer, _acquire_epoch)

    async def load_state(self, stream_id: int) -> WriterState:
        return await self._in(self._readers, lambda: _load_state(stream_id))

    async def commit_flush(
        self, epoch: int, chunks: Sequence[ChunkRef], states: dict[int, WriterState]
    ) -> None:
        await self._in(self._writer, lambda: _commit_flush(epoch, chunks, states))

    async def chunks_from(self, stream_id: int, seq_num: int, limit: int) -> list[ChunkRef]:
        now = self.clock.now_ms()
        return await self._in(self._readers, lambda: _chunks_from(stream_id, seq_num, limit, now))

    async def first_seq_at_or_after(self, stream_id: int, timestamp: int) -> int | None:
        now = self.clock.now_ms()
        return await self._in(
            self._readers, lambda: _first_seq_at_or_after(stream_id, timestamp, now)
        )


def _close_connections(barrier: threading.Barrier) -> None:
    with contextlib.suppress(threading.BrokenBarrierError):
        barrier.wait(timeout=_CLOSE_BARRIER_TIMEOUT_S)
    connections.close_all()


def _with_connection(fn: Callable[[], _T]) -> Callable[[], _T]:
    def run() -> _T:
        try:
            return fn()
        except Exception:
            # A broken connection must not poison this thread for every later call.
            for connection in connections.all(initialized_only=True):
                if connection.in_atomic_block is False:
                    connection.close_if_unusable_or_obsolete()
            raise

    return run


def _unexpired(now_ms: int) -> Q:
    return Q(expires_at_ms__isnull=True) | Q(expires_at_ms__gt=now_ms)


def _acquire_epoch() -> int:
    with transaction.atomic():
        lease, _ = WriterLease.objects.select_for_update().get_or_create(pk=1)
        lease.epoch += 1
        lease.save()
        return int(lease.epoch)


def _load_state(stream_id: int) -> WriterState:
    row = StreamLog.objects.filter(stream_id=stream_id).first()
    if row is None:
        return WriterState()
    return WriterState(row.next_seq, row.last_ts, row.fencing_token, row.trim_point)


def _commit_flush(epoch: int, chunks: Sequence[ChunkRef], states: dict[int, WriterState]) -> None:
    with transaction.atomic():
        current = (
            WriterLease.objects.select_for_update().filter(pk=1).values_list("epoch", flat=True)
        )
        if list(current) != [epoch]:
            raise Fenced(f"writer epoch {epoch} is no longer current")
        Chunk.objects.bulk_create(
            [
                Chunk(
                    stream_id=c.stream_id,
                    start_seq=c.start_seq,
                    end_seq=c.end_seq,
                    first_ts=c.first_ts,
                    last_ts=c.last_ts,
                    metered_bytes=c.metered_bytes,
                    expires_at_ms=c.expires_at_ms,
                    segment_key=c.segment_key,
                    offset=c.offset,
                    length=c.length,
                )
                for c in chunks
            ]
        )
        StreamLog.objects.bulk_create(
            [
                StreamLog(
                    stream_id=stream_id,
                    next_seq=s.next_seq,
                    last_ts=s.last_ts,
                    fencing_token=s.fencing_token,
                    trim_point=s.trim_point,
                )
                for stream_id, s in states.items()
            ],
            update_conflicts=True,
            unique_fields=["stream_id"],
            update_fields=["next_seq", "last_ts", "fencing_token", "trim_point"],
        )


def _to_ref(row: Chunk) -> ChunkRef:
    return ChunkRef(
        stream_id=row.stream_id,
        start_seq=row.start_seq,
        end_seq=row.end_seq,
        first_ts=row.first_ts,
        last_ts=row.last_ts,
        metered_bytes=row.metered_bytes,
        expires_at_ms=row.expires_at_ms,
        segment_key=row.segment_key,
        offset=row.offset,
        length=row.length,
    )


def _chunks_from(stream_id: int, seq_num: int, limit: int, now_ms: int) -> list[ChunkRef]:
    rows = (
        Chunk.objects.filter(stream_id=stream_id, end_seq__gt=seq_num)
        .filter(_unexpired(now_ms))
        .order_by("start_seq")[:limit]
    )
    return [_to_ref(row) for row in rows]


def _first_seq_at_or_after(stream_id: int, timestamp: int, now_ms: int) -> int | None:
    value = (
        Chunk.objects.filter(stream_id=stream_id, last_ts__gte=timestamp)
        .filter(_unexpired(now_ms))
        .order_by("start_seq")
        .values_list("start_seq", flat=True)
        .first()
    )
    return None if value is None else int(value)
