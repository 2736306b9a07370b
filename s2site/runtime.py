"""The server runtime: what lives as long as the server process, opened by ASGI lifespan.

It builds the record log's engine for the configured storage mode (object store,
catalog in the Django database, clock), the stream directory used by the data
plane, and the background deletion task, and it listens to the services'
events to keep them current. ``Lifespan`` is the ASGI app for the ``lifespan``
scope; ``current()`` gives the data plane the running runtime.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from s2site import metrics
from storagecore.catalog.django import DjangoCatalog
from storagecore.engine import Engine, EngineSettings
from storagecore.models import Chunk, StreamLog
from storagecore.objstore.localfs import LocalObjectStore
from storagecore.objstore.memory import MemoryObjectStore
from storagecore.ports import ObjectStore, SystemClock
from streams import events
from streams.directory import StreamDirectory
from streams.lifecycle import DeletionTask

logger = logging.getLogger(__name__)

Message = MutableMapping[str, Any]


def build_object_store() -> ObjectStore:
    mode = settings.S2_STORAGE
    if mode == "local":
        return LocalObjectStore(Path(settings.S2_LOCAL_ROOT) / "objects")
    if mode == "s3":
        from s2site.s3 import s3_object_store

        return s3_object_store()
    return MemoryObjectStore()


def engine_settings() -> EngineSettings:
    return EngineSettings(
        flush_interval_s=settings.S2_FLUSH_INTERVAL_MS / 1000,
        key_prefix=settings.S2_PATH,
        append_inflight_bytes=settings.S2_APPEND_INFLIGHT_BYTES,
        writer_nonce=secrets.randbits(64),
        observer=metrics.OBSERVER,
    )


def _forget_records() -> None:
    """In-memory mode keeps no records across restarts: drop index rows that point nowhere."""
    Chunk.objects.all().delete()
    StreamLog.objects.all().delete()


class Runtime:
    def __init__(self, store: ObjectStore | None = None) -> None:
        self._store = store
        self._engine: Engine | None = None
        self.directory = StreamDirectory()
        self.deletions: DeletionTask | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def engine(self) -> Engine:
        assert self._engine is not None, "runtime not started"
        return self._engine

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        store = self._store or build_object_store()
        if isinstance(store, MemoryObjectStore):
            await sync_to_async(_forget_records, thread_sensitive=False)()
        clock = SystemClock()
        self._engine = Engine(store, DjangoCatalog(clock), clock, engine_settings())
        await self._engine.start()
        self.deletions = DeletionTask(self._engine)
        self.deletions.start()
        events.install(self)
        # Finish deletions that a previous run left pending.
        self.deletions.wake()
        logger.info("record log started: writer epoch %d", self._engine.epoch)

    async def stop(self) -> None:
        events.install(None)
        if self.deletions is not None:
            await self.deletions.stop()
        if self._engine is not None:
            await self._engine.stop()
            catalog = self._engine.catalog
            if isinstance(catalog, DjangoCatalog):
                await catalog.close()
            await self._engine.store.close()

    # streams.events.Listener: called from whatever thread committed the change.

    def _on_loop(self, callback: Callable[..., None], *args: Any) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(callback, *args)

    def stream_changed(self, basin: str, stream: str) -> None:
        self._on_loop(self.directory.invalidate_stream, basin, stream)

    def basin_changed(self, basin: str) -> None:
        self._on_loop(self.directory.invalidate_basin, basin)

    def deletions_pending(self) -> None:
        if self.deletions is not None:
            self.deletions.wake()


_current: Runtime | None = None


def current() -> Runtime | None:
    return _current


class Lifespan:
    def __init__(self, store: ObjectStore | None = None) -> None:
        self._store = store

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        global _current
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                runtime = Runtime(self._store)
                try:
                    await runtime.start()
                except Exception as exc:  # report any start-up failure to the server
                    logger.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                _current = runtime
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                running, _current = _current, None
                if running is not None:
                    await running.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return
