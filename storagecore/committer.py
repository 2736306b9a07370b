"""Group commit: every stream's accepted appends, one segment and one transaction per flush.

``submit`` queues an encoded run and returns a future that completes when the run
is durable: its segment is written to the object store and its index rows and
the stream's new state are committed to the catalog. Runs are flushed and
completed strictly in submission order.

When idle, a flush starts as soon as work arrives (``interval_s == 0``); runs that
arrive while a flush is in flight go into the next one. With an interval
(S3), the committer waits up to ``interval_s`` from the first queued run, or until
``flush_bytes`` are queued, to batch deliberately.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from array import array
from dataclasses import dataclass, field
from typing import Protocol

from storagecore import paths
from storagecore.errors import StorageFailure, Unavailable
from storagecore.observe import NO_OBSERVER, EngineObserver, FlushStats
from storagecore.ports import Catalog, ChunkRef, Clock, Fenced, ObjectStore
from storagecore.segment import Block, BlockIndex, encode_segment_header
from storagecore.sequencer import SequencedRun, WriterState

logger = logging.getLogger(__name__)


class DurabilityListener(Protocol):
    stream_id: int

    def on_durable(self, block: Block, state: WriterState, expires_at_ms: int | None) -> None:
        """The block's records are durable; ``state`` is the stream's durable state after it."""

    def on_failed(self) -> None:
        """A flush that held this stream's records failed: reload the state before writing."""


@dataclass(slots=True)
class PendingRun:
    listener: DurabilityListener
    run: SequencedRun
    expires_at_ms: int | None
    future: asyncio.Future[None] = field(repr=False)


@dataclass(frozen=True, slots=True)
class CommitterSettings:
    interval_s: float = 0.0
    flush_bytes: int = 8 * 1024 * 1024
    key_prefix: str = ""
    writer_nonce: int = 0
    observer: EngineObserver = NO_OBSERVER


class Committer:
    def __init__(
        self,
        store: ObjectStore,
        catalog: Catalog,
        clock: Clock,
        epoch: int,
        settings: CommitterSettings,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.clock = clock
        self.epoch = epoch
        self.settings = settings
        self._queue: list[PendingRun] = []
        self._queued_bytes = 0
        self._first_queued_at = 0.0
        self._wake = asyncio.Event()
        self._flush_number = 0
        self._fenced = False
        self._flushing = False
        self._task: asyncio.Task[None] | None = None
        # Observability: flushes done, and the last flush's size and duration.
        self.flushes = 0
        # The segment being written and committed, if any (garbage collection spares it).
        self.writing_key: str | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="s2-committer")

    async def stop(self) -> None:
        """Flush what is queued, then stop."""
        if self._task is None:
            return
        self._wake.set()
        # Let queued runs and the flush in flight finish (bounded), so that no
        # waiting append is left unanswered.
        deadline = time.monotonic() + 10.0
        while (self._queue or self._flushing) and not self._task.done():
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.001)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        self._fail_all(Unavailable("server shutting down"))

    def submit(
        self, listener: DurabilityListener, run: SequencedRun, expires_at_ms: int | None
    ) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._fenced:
            future.set_exception(Unavailable("this server was fenced out by another writer"))
            return future
        if self._task is None or self._task.done():
            future.set_exception(Unavailable("the committer is not running"))
            return future
        if not self._queue:
            self._first_queued_at = time.monotonic()
        self._queue.append(PendingRun(listener, run, expires_at_ms, future))
        self._queued_bytes += len(run.payload)
        self._wake.set()
        return future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            if self.settings.interval_s > 0:
                await self._wait_for_interval()
            batch, self._queue, self._queued_bytes = self._queue, [], 0
            self._wake.clear()
            if batch:
                self._flushing = True
                try:
                    await self._flush(batch)
                finally:
                    self._flushing = False

    async def _wait_for_interval(self) -> None:
        deadline = self._first_queued_at + self.settings.interval_s
        while self._queued_bytes < self.settings.flush_bytes:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            self._wake.clear()
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation.
            try:
                async with asyncio.timeout(remaining):
                    await self._wake.wait()
            except TimeoutError:
                return

    async def _flush(self, batch: list[PendingRun]) -> None:
        flush_started = time.perf_counter()
        self._flush_number += 1
        key = paths.segment_key(
            self.settings.key_prefix, self.epoch, self.settings.writer_nonce, self._flush_number
        )
        grouped = _group_by_stream(batch)
        blocks: list[
            tuple[DurabilityListener, Block, tuple[bytes, bytes, bytes], WriterState, int | None]
        ] = []
        for listener, runs in grouped:
            block = _merge_runs(listener.stream_id, runs)
            encoded = block.encoded_parts()
            expiry = runs[-1].expires_at_ms
            blocks.append((listener, block, encoded, runs[-1].run.state, expiry))
        header = encode_segment_header(self.epoch, self._flush_number, len(blocks))
        chunks: list[ChunkRef] = []
        offset = len(header)
        for _listener, block, encoded, _state, expiry in blocks:
            chunks.append(
                ChunkRef(
                    stream_id=block.stream_id,
                    start_seq=block.start_seq,
                    end_seq=block.end_seq,
                    first_ts=block.first_ts,
                    last_ts=block.last_ts,
                    metered_bytes=block.metered_bytes,
                    expires_at_ms=expiry,
                    segment_key=key,
                    offset=offset,
                    length=sum(len(part) for part in encoded),
                )
            )
            offset += chunks[-1].length
        states = {block.stream_id: state for _listener, block, _enc, state, _exp in blocks}
        self.writing_key = key
        try:
            parts = [header]
            for _listener, _block, encoded_parts, _state, _expiry in blocks:
                parts.extend(encoded_parts)
            segment = b"".join(parts)
            started = time.perf_counter()
            await self.store.put(key, segment)
            written = time.perf_counter()
            await self.catalog.commit_flush(self.epoch, chunks, states)
            committed = time.perf_counter()
        except Fenced:
            logger.error("fenced out by another server: appends now fail")
            self._fenced = True
            self._fail(batch, Unavailable("this server was fenced out by another writer"))
            self._fail_all(Unavailable("this server was fenced out by another writer"))
            return
        except Exception as exc:  # any storage failure fails the flush, never the committer
            logger.exception("flush failed")
            self._fail(batch, StorageFailure(f"storage failure: {exc}"))
            return
        finally:
            self.writing_key = None
        self.flushes += 1
        records = sum(block.end_seq - block.start_seq for _l, block, _e, _s, _x in blocks)
        self.settings.observer.flush_done(
            FlushStats(
                committed - flush_started,
                written - started,
                committed - written,
                len(segment),
                records,
                len(blocks),
            )
        )
        for listener, block, _encoded, state, expiry in blocks:
            listener.on_durable(block, state, expiry)
        for pending in batch:
            if not pending.future.done():
                pending.future.set_result(None)

    def _fail(self, batch: list[PendingRun], error: Exception) -> None:
        failed_streams = {id(p.listener): p.listener for p in batch}
        for pending in batch:
            if not pending.future.done():
                pending.future.set_exception(error)
        # Queued runs of the same streams were sequenced on top of the failed ones.
        keep = []
        for pending in self._queue:
            if id(pending.listener) in failed_streams:
                if not pending.future.done():
                    pending.future.set_exception(error)
            else:
                keep.append(pending)
        self._queue = keep
        for listener in failed_streams.values():
            listener.on_failed()

    def _fail_all(self, error: Exception) -> None:
        queued, self._queue = self._queue, []
        if queued:
            self._fail(queued, error)


def _group_by_stream(
    batch: list[PendingRun],
) -> list[tuple[DurabilityListener, list[PendingRun]]]:
    groups: dict[int, tuple[DurabilityListener, list[PendingRun]]] = {}
    for pending in batch:
        key = id(pending.listener)
        if key not in groups:
            groups[key] = (pending.listener, [])
        groups[key][1].append(pending)
    return list(groups.values())


def _merge_runs(stream_id: int, runs: list[PendingRun]) -> Block:
    """One block from a stream's consecutive runs (their sequence numbers are contiguous)."""
    first = runs[0].run
    if len(runs) == 1:
        timestamps, metered, lengths, payload = (
            first.timestamps,
            first.metered,
            first.lengths,
            first.payload,
        )
    else:
        timestamps, metered, lengths = array("Q"), array("I"), array("I")
        for pending in runs:
            timestamps.extend(pending.run.timestamps)
            metered.extend(pending.run.metered)
            lengths.extend(pending.run.lengths)
        payload = b"".join(p.run.payload for p in runs)
    return Block(
        stream_id=stream_id,
        start_seq=first.start.seq_num,
        first_ts=timestamps[0],
        last_ts=timestamps[-1],
        metered_bytes=sum(p.run.metered_bytes for p in runs),
        index=BlockIndex(timestamps, metered, lengths),
        payload=payload,
    )
