"""Asynchronous removal of deleted streams and basins (spec §2.8, §8).

A DELETE only marks the resource (``deleted_at``). The deletion pass then, for
each marked stream (and every stream of a marked basin), makes a terminal trim
durable through the stream's writer -- so appends racing with the delete fail
with ``stream_deletion_pending`` -- and removes the stream's index rows, log
state and row; finally it removes marked basins that hold no streams.
``DeletionTask`` runs the pass when woken after a deletion commits, and every
60 s (±10 %) in any case. Segments are left to garbage collection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from typing import Protocol

from asgiref.sync import sync_to_async
from django.db.models import Q

from basins.models import Basin
from basins.services import write_transaction
from storagecore import limits
from storagecore.models import Chunk, StreamLog
from streams.models import Stream

logger = logging.getLogger(__name__)


class StreamWriters(Protocol):
    """What the deletion pass needs from the record log."""

    async def delete_stream(self, stream_id: int) -> None: ...

    def forget_stream(self, stream_id: int) -> None: ...


def streams_to_delete() -> list[int]:
    condition = Q(deleted_at__isnull=False) | Q(basin__deleted_at__isnull=False)
    return list(Stream.objects.filter(condition).values_list("pk", flat=True))


def remove_streams(stream_ids: list[int]) -> None:
    with write_transaction():
        Chunk.objects.filter(stream_id__in=stream_ids).delete()
        StreamLog.objects.filter(stream_id__in=stream_ids).delete()
        Stream.objects.filter(pk__in=stream_ids).delete()


def remove_emptied_basins() -> int:
    with write_transaction():
        removed, _ = (
            Basin.objects.filter(deleted_at__isnull=False).filter(streams__isnull=True).delete()
        )
    return removed


def purge_pending_deletions() -> tuple[int, int]:
    """The pass without a running record log (no writer can be racing): remove at once."""
    stream_ids = streams_to_delete()
    remove_streams(stream_ids)
    return len(stream_ids), remove_emptied_basins()


class DeletionTask:
    """The background deletion pass; ``wake`` may be called from any thread."""

    def __init__(
        self, writers: StreamWriters, interval_s: float = limits.deletion_pass_interval_s
    ) -> None:
        self._writers = writers
        self._interval_s = interval_s
        self._wakeup = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run(), name="s2-deletion")

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
        stream_ids = await sync_to_async(streams_to_delete, thread_sensitive=False)()
        for stream_id in stream_ids:
            await self._writers.delete_stream(stream_id)
        if stream_ids:
            await sync_to_async(remove_streams, thread_sensitive=False)(stream_ids)
            for stream_id in stream_ids:
                self._writers.forget_stream(stream_id)
        await sync_to_async(remove_emptied_basins, thread_sensitive=False)()

    async def _run(self) -> None:
        while True:
            jitter = 1 + random.uniform(-1, 1) * limits.deletion_pass_jitter_ratio
            # Not ``wait_for``: on Python 3.11 it swallows a cancellation that arrives as the
            # wake-up completes, and ``stop()`` would then wait forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._interval_s * jitter):
                    await self._wakeup.wait()
            self._wakeup.clear()
            try:
                await self.run_pass()
            except Exception:  # the pass is retried on the next tick; never kill the task
                logger.exception("deletion pass failed")
