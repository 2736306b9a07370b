"""The catalog in the Django database, reached from the event loop through threads.

ORM calls never run on the event loop: each method hands a small synchronous
function to a dedicated thread pool. Writes (flush commits, the lease) go
through one thread, which matches SQLite's single writer and keeps commit order.

Every write transaction of the process, these and the control plane's and the
background tasks' alike, is a ``write_transaction``: on SQLite, where writers
exclude each other, they queue on one lock and the next starts as soon as the
previous commits. Left to SQLite's busy handler, a flush that found the database
locked by a background pass would sleep in growing steps (up to 100 ms each)
while appends waited for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from django.db import connection, connections, transaction
from django.db.models import Q

from storagecore.models import Chunk, StreamLog, WriterLease
from storagecore.ports import ChunkRef, Clock, Fenced, SystemClock
from storagecore.sequencer import WriterState

_T = TypeVar("_T")

_sqlite_writers = threading.RLock()


@contextlib.contextmanager
def write_transaction() -> Iterator[None]:
    """A write transaction; on SQLite, taken in turn with the process's other writers."""
    if connection.vendor == "sqlite":
        with _sqlite_writers, transaction.atomic():
            yield
    else:
        with transaction.atomic():
            yield


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
        now = self.clock.now_ms()
        await self._in(self._writer, lambda: _commit_flush(epoch, chunks, states, now))

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
            for opened in connections.all(initialized_only=True):
                if opened.in_atomic_block is False:
                    opened.close_if_unusable_or_obsolete()
            raise

    return run


def _unexpired(now_ms: int) -> Q:
    return Q(expires_at_ms__isnull=True) | Q(expires_at_ms__gt=now_ms)


def _acquire_epoch() -> int:
    with write_transaction():
        lease, _ = WriterLease.objects.select_for_update().get_or_create(pk=1)
        lease.epoch += 1
        lease.save()
        return int(lease.epoch)


def _load_state(stream_id: int) -> WriterState:
    row = StreamLog.objects.filter(stream_id=stream_id).first()
    if row is None:
        return WriterState()
    return WriterState(row.next_seq, row.last_ts, row.fencing_token, row.trim_point)


_SHIFT = 2**63  # U64Field's storage offset (storagecore.models)


def _commit_flush(
    epoch: int, chunks: Sequence[ChunkRef], states: dict[int, WriterState], now_ms: int = 0
) -> None:
    """One transaction per flush, in plain SQL: this runs once per flush on the append path.

    The lease row is claimed with an UPDATE guarded by the epoch, which both checks
    that this server still holds the lease and locks the row until commit. The
    stream rows' storage accounting grows by the new blocks in the same upsert."""
    lease = WriterLease._meta.db_table
    chunk_table = Chunk._meta.db_table
    log_table = StreamLog._meta.db_table
    added: dict[int, tuple[int, int]] = {}
    for c in chunks:
        stored, metered = added.get(c.stream_id, (0, 0))
        added[c.stream_id] = (stored + c.length, metered + c.metered_bytes)
    with write_transaction(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {lease} SET epoch = epoch WHERE id = 1 AND epoch = %s", [epoch])
        if cursor.rowcount != 1:
            raise Fenced(f"writer epoch {epoch} is no longer current")
        cursor.executemany(
            f"INSERT INTO {chunk_table} (stream_id, start_seq, end_seq, first_ts, last_ts, "
            'metered_bytes, expires_at_ms, segment_key, "offset", length) '
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [
                (
                    c.stream_id,
                    c.start_seq - _SHIFT,
                    c.end_seq - _SHIFT,
                    c.first_ts - _SHIFT,
                    c.last_ts - _SHIFT,
                    c.metered_bytes,
                    c.expires_at_ms,
                    c.segment_key,
                    c.offset,
                    c.length,
                )
                for c in chunks
            ],
        )
        cursor.executemany(
            f"INSERT INTO {log_table} (stream_id, next_seq, last_ts, fencing_token, trim_point, "
            "stored_bytes, metered_bytes, written_at_ms) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (stream_id) DO UPDATE SET "
            "next_seq = excluded.next_seq, last_ts = excluded.last_ts, "
            "fencing_token = excluded.fencing_token, trim_point = excluded.trim_point, "
            f"stored_bytes = {log_table}.stored_bytes + excluded.stored_bytes, "
            f"metered_bytes = {log_table}.metered_bytes + excluded.metered_bytes, "
            "written_at_ms = excluded.written_at_ms",
            [
                (
                    stream_id,
                    state.next_seq - _SHIFT,
                    state.last_ts - _SHIFT,
                    state.fencing_token,
                    state.trim_point - _SHIFT,
                    *added.get(stream_id, (0, 0)),
                    now_ms,
                )
                for stream_id, state in states.items()
            ],
        )


def chunk_ref(row: Chunk) -> ChunkRef:
    """An index row as the engine sees it."""
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
    return [chunk_ref(row) for row in rows]


def _first_seq_at_or_after(stream_id: int, timestamp: int, now_ms: int) -> int | None:
    value = (
        Chunk.objects.filter(stream_id=stream_id, last_ts__gte=timestamp)
        .filter(_unexpired(now_ms))
        .order_by("start_seq")
        .values_list("start_seq", flat=True)
        .first()
    )
    return None if value is None else int(value)
