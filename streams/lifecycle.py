"""The background work of the record log (spec §2.8, §3.6, §8; README "Background tasks").

Each task is a ``Periodic``: it runs its pass every interval (±10 % jitter), at once
when woken, and never two passes at a time. Database work goes to worker threads
(``streams.maintenance``), object-store work stays on the event loop's adapters.
Every decision about time uses the injected ``Clock``, so tests move a fake clock
instead of waiting.

* deletion: streams marked deleted (and all streams of marked basins) get their
  terminal trim through the writer -- appends racing with it fail with
  ``stream_deletion_pending`` -- then their index rows, log state and rows go;
  marked basins without streams go last. Woken by DELETE.
* trim: index rows wholly below a stream's trim point are removed; woken for the
  stream as soon as a trim becomes durable, and a sweep over all streams each interval.
* retention: index rows whose expiry passed are removed (reads skip them already).
* delete-on-empty: streams whose deadline passed are examined and deleted if empty.
* garbage collection: segments noted as possibly unreferenced are deleted once the
  grace period has passed, if no index row references them at that moment; the
  segment being written by the committer or the compactor is never touched.
* orphan sweep: lists the store and notes segments no row references (flushes that
  never committed, e.g. after a crash), which garbage collection then removes.
* compaction: runs of small rows of one stream are rewritten into one block.

Stream ids are never reused, so the work of a deleted stream cannot touch a new
stream of the same name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from asgiref.sync import sync_to_async

from basins.models import Basin
from storagecore import compaction, limits, paths
from storagecore.catalog.django import write_transaction
from storagecore.compaction import CompactionSettings, Row
from storagecore.engine import Engine
from storagecore.ports import ChunkRef, Clock
from storagecore.segment import CorruptBlock, decode_block
from streams import maintenance

logger = logging.getLogger(__name__)

_T = TypeVar("_T")


async def _db(fn: Callable[..., _T], *args: object) -> _T:
    return await sync_to_async(fn, thread_sensitive=False)(*args)


async def _batch(fn: Callable[..., _T], *args: object) -> _T:
    """One batch of a pass's database work, then a pause as long as the batch took.

    A pass that removes many rows runs one transaction per batch. Back to back, they
    would hold SQLite's single writer lock (and the interpreter) most of the time, and
    every flush, hence every acknowledgement, would wait behind them; paced like this,
    background work takes at most about half of the time."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await _db(fn, *args)
    await asyncio.sleep(min(loop.time() - started, limits.background_pause_max_s))
    return result


class Periodic:
    """Runs ``work`` every ``interval_s`` (±10 %) and whenever woken; ``wake`` may be
    called from any thread."""

    def __init__(self, name: str, work: Callable[[], Awaitable[None]], interval_s: float) -> None:
        self.name = name
        self._work = work
        self.interval_s = interval_s
        self._wakeup = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def wake(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if threading.get_ident() == getattr(loop, "_thread_id", None):
            self._wakeup.set()
        else:
            loop.call_soon_threadsafe(self._wakeup.set)

    async def run_pass(self) -> None:
        async with self._lock:
            await self._work()

    async def _run(self) -> None:
        while True:
            jitter = 1 + random.uniform(-1, 1) * limits.deletion_pass_jitter_ratio
            # Not ``wait_for``: on Python 3.11 it swallows a cancellation that arrives as the
            # wake-up completes, and ``stop()`` would then wait forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.interval_s * jitter):
                    await self._wakeup.wait()
            self._wakeup.clear()
            try:
                await self.run_pass()
            except Exception:  # retried on the next tick; never kill the task
                logger.exception("%s pass failed", self.name)


@dataclass(frozen=True)
class LifecycleSettings:
    deletion_interval_s: float = limits.deletion_pass_interval_s
    trim_interval_s: float = limits.trim_pass_interval_s
    retention_interval_s: float = limits.retention_pass_interval_s
    delete_on_empty_interval_s: float = limits.delete_on_empty_pass_interval_s
    gc_interval_s: float = limits.gc_pass_interval_s
    gc_grace_s: float = limits.gc_grace_s
    orphan_sweep_interval_s: float = limits.orphan_sweep_interval_s
    compaction_interval_s: float = limits.compaction_pass_interval_s
    compaction: CompactionSettings = field(default_factory=CompactionSettings)


@dataclass
class PassStats:
    """What the passes did since start (observability and tests)."""

    rows_trimmed: int = 0
    rows_expired: int = 0
    streams_deleted: int = 0
    basins_deleted: int = 0
    segments_deleted: int = 0
    orphans_noticed: int = 0
    groups_compacted: int = 0
    empty_streams_deleted: int = 0


class Lifecycle:
    """Every background task of one running record log."""

    def __init__(self, engine: Engine, clock: Clock, settings: LifecycleSettings) -> None:
        self.engine = engine
        self.clock = clock
        self.settings = settings
        self.stats = PassStats()
        self._trim_requests: set[int] = set()
        self._last_trim_sweep = float("-inf")
        self._compacting: set[str] = set()
        self._compactions = 0
        self.deletion = Periodic("s2-deletion", self.deletion_pass, settings.deletion_interval_s)
        self.trim = Periodic("s2-trim", self.trim_pass, settings.trim_interval_s)
        self.retention = Periodic(
            "s2-retention", self.retention_pass, settings.retention_interval_s
        )
        self.delete_on_empty = Periodic(
            "s2-delete-on-empty", self.delete_on_empty_pass, settings.delete_on_empty_interval_s
        )
        self.gc = Periodic("s2-gc", self.gc_pass, settings.gc_interval_s)
        self.orphans = Periodic(
            "s2-orphan-sweep", self.orphan_sweep, settings.orphan_sweep_interval_s
        )
        self.compaction = Periodic(
            "s2-compaction", self.compaction_pass, settings.compaction_interval_s
        )
        self.tasks = (
            self.deletion,
            self.trim,
            self.retention,
            self.delete_on_empty,
            self.gc,
            self.orphans,
            self.compaction,
        )

    def start(self) -> None:
        self.engine.registry.on_trim = self.trim_requested
        for task in self.tasks:
            task.start()
        # Finish what a previous run left: pending deletions, segments it left behind
        # (trims whose rows it did not remove go in the first periodic trim pass).
        self.deletion.wake()
        self.orphans.wake()

    async def stop(self) -> None:
        for task in self.tasks:
            await task.stop()

    def trim_requested(self, stream_id: int) -> None:
        """A trim became durable: remove the stream's trimmed rows now."""
        self._trim_requests.add(stream_id)
        self.trim.wake()

    def writing_keys(self) -> set[str]:
        """Segments being written whose index rows are not yet committed."""
        keys = set(self._compacting)
        writing = self.engine.committer.writing_key
        if writing is not None:
            keys.add(writing)
        return keys

    # Passes.

    async def deletion_pass(self) -> None:
        stream_ids = await _db(maintenance.streams_to_delete)
        for stream_id in stream_ids:
            await self.engine.delete_stream(stream_id)
        if stream_ids:
            for stream_id in stream_ids:
                while (
                    await _batch(maintenance.remove_stream_rows, stream_id, self.clock.now_ms())
                    >= limits.removal_batch_rows
                ):
                    pass
            await _db(maintenance.remove_streams, stream_ids, self.clock.now_ms())
            for stream_id in stream_ids:
                self.engine.forget_stream(stream_id)
            self.stats.streams_deleted += len(stream_ids)
        self.stats.basins_deleted += await _db(remove_emptied_basins)

    async def trim_pass(self) -> None:
        requested, self._trim_requests = self._trim_requests, set()
        for stream_id in sorted(requested):
            while True:
                removed = await _batch(maintenance.remove_trimmed, stream_id, self.clock.now_ms())
                self.stats.rows_trimmed += removed
                if removed < limits.removal_batch_rows:
                    break
            if await _db(maintenance.full_trim_leaves_nothing, stream_id):
                await _db(maintenance.arm_after_full_trim, stream_id, self.clock.now_ms())
        # The sweep over all streams (trims whose removal a restart interrupted) runs at
        # most once per interval, however often durable trims wake the task.
        loop_now = asyncio.get_running_loop().time()
        if not requested or loop_now - self._last_trim_sweep >= self.trim.interval_s:
            self._last_trim_sweep = loop_now
            while True:
                removed = await _batch(maintenance.remove_trimmed, None, self.clock.now_ms())
                self.stats.rows_trimmed += removed
                if removed < limits.removal_batch_rows:
                    break

    async def retention_pass(self) -> None:
        while True:
            removed = await _batch(maintenance.remove_expired, self.clock.now_ms())
            self.stats.rows_expired += removed
            if removed < limits.removal_batch_rows:
                break

    async def delete_on_empty_pass(self) -> None:
        due = await _db(maintenance.streams_past_deadline, self.clock.now_ms(), 1000)
        deleted = 0
        for stream_id in due:
            streamer = self.engine.registry.peek(stream_id)
            if streamer is not None and streamer.appending:
                continue  # appends in flight: examined again on the next pass
            check = await _db(maintenance.examine_empty, stream_id, self.clock.now_ms())
            deleted += check.deleted
        if deleted:
            self.stats.empty_streams_deleted += deleted
            self.deletion.wake()

    async def gc_pass(self) -> None:
        cutoff = self.clock.now_ms() - int(self.settings.gc_grace_s * 1000)
        while True:
            due = await _db(maintenance.garbage_due, cutoff)
            if not due:
                return
            writing = self.writing_keys()
            candidates = [key for key in due if key not in writing]
            still_used = await _db(maintenance.referenced, candidates)
            for key in candidates:
                if key not in still_used:
                    await self.engine.store.delete(key)
                    self.stats.segments_deleted += 1
            await _batch(maintenance.forget_garbage, candidates, cutoff)
            if len(due) < limits.gc_batch_segments or not candidates:
                return

    async def orphan_sweep(self) -> None:
        keys = await self.engine.store.list_keys(
            paths.segments_prefix(self.engine.settings.key_prefix)
        )
        writing = self.writing_keys()
        candidates = [key for key in keys if key not in writing]
        self.stats.orphans_noticed += await _db(
            maintenance.notice_unreferenced, candidates, self.clock.now_ms()
        )

    async def compaction_pass(self) -> None:
        settings = self.settings.compaction
        stream_ids = await _db(
            maintenance.streams_with_small_rows,
            settings.small_bytes,
            limits.compaction_streams_per_pass,
        )
        for stream_id in stream_ids:
            rows, complete = await _db(
                maintenance.rows_to_compact,
                stream_id,
                self.clock.now_ms(),
                limits.compaction_rows_per_stream,
            )
            for group in compaction.plan(rows, settings, complete):
                await self._compact(group)

    async def _compact(self, group: list[Row]) -> None:
        self._compactions += 1
        engine = self.engine
        key = paths.compacted_segment_key(
            engine.settings.key_prefix,
            engine.epoch,
            engine.settings.writer_nonce,
            self._compactions,
        )
        self._compacting.add(key)
        try:
            pieces = []
            for row in group:
                chunk = row.chunk
                pieces.append(await engine.store.get(chunk.segment_key, chunk.offset, chunk.length))
            # Decoding and re-encoding a group (up to the target size, ~20 ms for 8 MiB of
            # small blocks) runs in a worker thread, off the event loop.
            payload, merged = await asyncio.to_thread(
                _rewrite, group, pieces, key, engine.epoch, self._compactions
            )
            await engine.store.put(key, payload)
            try:
                await _batch(maintenance.switch_rows, group, merged, self.clock.now_ms())
            except maintenance.CompactionConflict:
                await _db(maintenance.abandon_segment, key, self.clock.now_ms())
                return
            self.stats.groups_compacted += 1
            engine.reader.forget_stream(merged.stream_id)
        except (KeyError, CorruptBlock, ValueError) as exc:
            # Rows removed under us (their segment collected), or bad bytes: skip the group.
            logger.warning("compaction of a group skipped: %s", exc)
        finally:
            self._compacting.discard(key)


def _rewrite(
    group: list[Row], pieces: list[bytes], key: str, epoch: int, number: int
) -> tuple[bytes, ChunkRef]:
    blocks = [decode_block(piece) for piece in pieces]
    return compaction.encode(group, blocks, key, epoch, number)


def remove_emptied_basins() -> int:
    with write_transaction():
        removed, _ = (
            Basin.objects.filter(deleted_at__isnull=False).filter(streams__isnull=True).delete()
        )
    return removed


def purge_pending_deletions() -> tuple[int, int]:
    """The deletion pass without a running record log (no writer can be racing)."""
    stream_ids = maintenance.streams_to_delete()
    maintenance.remove_streams(stream_ids, 0)
    return len(stream_ids), remove_emptied_basins()
