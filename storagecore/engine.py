"""The record log as one object: committer, streamers, reader and the admission budget.

The server runtime builds one ``Engine`` from an object store, a catalog and a
clock, starts it (taking the writer lease, which fences out any earlier server
on the same database and bucket) and hands it to the data plane.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from storagecore import limits
from storagecore.budget import ByteBudget
from storagecore.committer import Committer, CommitterSettings
from storagecore.observe import NO_OBSERVER, EngineObserver
from storagecore.ports import Catalog, Clock, ObjectStore
from storagecore.positions import AppendAck, StreamPosition
from storagecore.reader import BlockCache, Reader
from storagecore.records import AppendBatch
from storagecore.streamer import AppendSession, Streamer, StreamerRegistry, StreamSettings


@dataclass(frozen=True, slots=True)
class EngineSettings:
    flush_interval_s: float = 0.0
    flush_bytes: int = limits.flush_bytes_max
    key_prefix: str = ""
    append_inflight_bytes: int = limits.append_inflight_bytes_default
    block_cache_bytes: int = limits.block_cache_bytes_max
    streamer_idle_timeout_s: float = limits.streamer_idle_timeout_s
    # Part of every segment name; the runtime draws it at random for each start.
    writer_nonce: int = 0
    # Told about appends and flushes (metrics); does nothing by default.
    observer: EngineObserver = NO_OBSERVER


class Engine:
    def __init__(
        self, store: ObjectStore, catalog: Catalog, clock: Clock, settings: EngineSettings
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.clock = clock
        self.settings = settings
        self.observer = settings.observer
        self.budget = ByteBudget(
            max(settings.append_inflight_bytes, limits.append_inflight_bytes_min), self.observer
        )
        self.reader = Reader(catalog, store, clock, BlockCache(settings.block_cache_bytes))
        self.epoch = 0
        self._committer: Committer | None = None
        self._registry: StreamerRegistry | None = None

    async def start(self) -> None:
        self.epoch = await self.catalog.acquire_epoch()
        self._committer = Committer(
            self.store,
            self.catalog,
            self.clock,
            self.epoch,
            CommitterSettings(
                interval_s=self.settings.flush_interval_s,
                flush_bytes=self.settings.flush_bytes,
                key_prefix=self.settings.key_prefix,
                writer_nonce=self.settings.writer_nonce,
                observer=self.observer,
            ),
        )
        self._committer.start()
        self._registry = StreamerRegistry(self._committer, self.catalog, self.clock, self.budget)
        self._registry.start(self.settings.streamer_idle_timeout_s)

    async def stop(self) -> None:
        if self._committer is not None:
            await self._committer.stop()
        if self._registry is not None:
            await self._registry.stop()

    @property
    def committer(self) -> Committer:
        assert self._committer is not None, "engine not started"
        return self._committer

    @property
    def registry(self) -> StreamerRegistry:
        assert self._registry is not None, "engine not started"
        return self._registry

    def streamer(self, stream_id: int) -> Streamer:
        return self.registry.get(stream_id)

    async def append(
        self,
        stream_id: int,
        batch: AppendBatch,
        settings: StreamSettings,
        session: AppendSession | None = None,
    ) -> AppendAck:
        started = time.perf_counter()
        ack = await self.streamer(stream_id).append(batch, settings, session)
        self.observer.append_acknowledged(
            time.perf_counter() - started, len(batch.records), batch.metered_bytes
        )
        return ack

    async def tail(self, stream_id: int) -> StreamPosition:
        streamer = self.streamer(stream_id)
        await streamer.load()
        return streamer.tail

    async def delete_stream(self, stream_id: int) -> None:
        """Make the stream's terminal trim durable; appends after it fail with 409."""
        await self.streamer(stream_id).delete()

    def forget_stream(self, stream_id: int) -> None:
        self.registry.forget(stream_id)
        self.reader.forget_stream(stream_id)
