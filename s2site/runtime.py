"""The server runtime: what lives as long as the server process, opened by ASGI lifespan.

It builds the record log's engine for the configured storage mode (object store,
catalog in the Django database, clock), the stream directory used by the data
plane, and the background deletion task, and it listens to the services'
events to keep them current. ``Lifespan`` is the ASGI app for the ``lifespan``
scope; ``current()`` gives the data plane the running runtime.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import secrets
import signal
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from s2site import metrics
from storagecore import limits
from storagecore.catalog.django import DjangoCatalog
from storagecore.compaction import CompactionSettings
from storagecore.engine import Engine, EngineSettings
from storagecore.models import Chunk, GarbageSegment, StreamLog
from storagecore.objstore.localfs import LocalObjectStore
from storagecore.objstore.memory import MemoryObjectStore
from storagecore.ports import Clock, ObjectStore, SystemClock
from streams import events
from streams.directory import StreamDirectory
from streams.lifecycle import Lifecycle, LifecycleSettings, Periodic
from streams.sessions import OpenSessions

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


def lifecycle_settings() -> LifecycleSettings:
    return LifecycleSettings(
        deletion_interval_s=settings.S2_DELETION_INTERVAL_S,
        trim_interval_s=settings.S2_TRIM_INTERVAL_S,
        retention_interval_s=settings.S2_RETENTION_INTERVAL_S,
        delete_on_empty_interval_s=settings.S2_DELETE_ON_EMPTY_INTERVAL_S,
        gc_interval_s=settings.S2_GC_INTERVAL_S,
        gc_grace_s=settings.S2_GC_GRACE_S,
        orphan_sweep_interval_s=settings.S2_ORPHAN_SWEEP_INTERVAL_S,
        compaction_interval_s=settings.S2_COMPACTION_INTERVAL_S,
        compaction=CompactionSettings(
            target_bytes=settings.S2_COMPACTION_TARGET_BYTES,
            expiry_slack_ms=settings.S2_COMPACTION_EXPIRY_SLACK_MS,
        ),
    )


def _forget_records() -> None:
    """In-memory mode keeps no records across restarts: drop index rows that point nowhere."""
    Chunk.objects.all().delete()
    StreamLog.objects.all().delete()
    GarbageSegment.objects.all().delete()


class Runtime:
    def __init__(self, store: ObjectStore | None = None, clock: Clock | None = None) -> None:
        self._store = store
        self.clock = clock or SystemClock()
        self._engine: Engine | None = None
        self.directory = StreamDirectory()
        self.sessions = OpenSessions()
        self.lifecycle: Lifecycle | None = None
        self.deletions: Periodic | None = None
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
        clock = self.clock
        self._engine = Engine(store, DjangoCatalog(clock), clock, engine_settings())
        await self._engine.start()
        self.lifecycle = Lifecycle(self._engine, clock, lifecycle_settings())
        self.deletions = self.lifecycle.deletion
        self.lifecycle.start()
        events.install(self)
        logger.info("record log started: writer epoch %d", self._engine.epoch)

    async def stop(self) -> None:
        # Open sessions end first, with a retryable error, while the engine still runs.
        await self.sessions.close_all(limits.session_close_grace_s)
        events.install(None)
        if self.lifecycle is not None:
            await self.lifecycle.stop()
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
                _end_sessions_on_stop_signal(runtime.sessions)
                _freeze_startup_heap()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                running, _current = _current, None
                if running is not None:
                    await running.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _freeze_startup_heap() -> None:
    """Keep the objects made at start-up (Django, URL map, models) out of garbage collection.

    They live as long as the process. Left in the collector's oldest generation, every full
    collection walks them again: tens of milliseconds on the event loop, which every
    pending acknowledgement and live delivery would wait for.
    """
    gc.collect()
    gc.freeze()


def _end_sessions_on_stop_signal(open_sessions: OpenSessions) -> None:
    """End open sessions first when the server's worker is told to stop.

    The ASGI server (granian) drains connections before it sends ``lifespan.shutdown``, so
    a following session would hold it until its grace period ends. Its worker handles
    SIGTERM and SIGINT on this loop: those handlers now first tell every open session to
    end (each sends its client a retryable error) and wait for them, for at most
    ``limits.session_close_grace_s``, then run as before. Without such handlers (another
    host, tests) nothing changes.
    """
    loop = asyncio.get_running_loop()
    installed = getattr(loop, "_signal_handlers", {})
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = installed.get(sig)
        if previous is None:
            continue

        async def close_then(previous: asyncio.Handle) -> None:
            try:
                if open_sessions.count:
                    await open_sessions.close_all(limits.session_close_grace_s)
                    # Let the last frames reach the clients before the server's GOAWAY:
                    # some HTTP/2 clients drop data that arrives together with it.
                    await asyncio.sleep(limits.session_goodbye_s)
            finally:
                previous._run()

        def chained(previous: asyncio.Handle = previous) -> None:
            _background.add(task := loop.create_task(close_then(previous)))
            task.add_done_callback(_background.discard)

        loop.add_signal_handler(sig, chained)


_background: set[asyncio.Task[None]] = set()
