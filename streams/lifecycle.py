"""Asynchronous removal of deleted streams and basins (spec §2.8, §8).

A DELETE only marks the resource (``deleted_at``); ``purge_pending_deletions``
removes what is marked: streams first, then basins that no longer hold any
stream. ``DeletionTask`` runs that pass in the server's event loop when woken
after a deletion commits, and every 60 s (±10 %) in any case.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading

from asgiref.sync import sync_to_async
from django.db import transaction

from basins.models import Basin
from storagecore import limits
from streams.models import Stream

logger = logging.getLogger(__name__)


def purge_pending_deletions() -> tuple[int, int]:
    """Remove deleted streams, then emptied deleted basins; returns the counts removed."""
    with transaction.atomic():
        deleting_basins = Basin.objects.filter(deleted_at__isnull=False)
        streams = Stream.objects.filter(deleted_at__isnull=False) | Stream.objects.filter(
            basin__in=deleting_basins
        )
        streams_removed, _ = streams.delete()
        basins_removed, _ = (
            Basin.objects.filter(deleted_at__isnull=False).filter(streams__isnull=True).delete()
        )
    return streams_removed, basins_removed


class DeletionTask:
    """The background deletion pass; ``wake`` may be called from any thread."""

    def __init__(self, interval_s: float = limits.deletion_pass_interval_s) -> None:
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

    async def _run(self) -> None:
        while True:
            jitter = 1 + random.uniform(-1, 1) * limits.deletion_pass_jitter_ratio
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), timeout=self._interval_s * jitter)
            self._wakeup.clear()
            try:
                await sync_to_async(purge_pending_deletions, thread_sensitive=False)()
            except Exception:  # the pass is retried on the next tick; never kill the task
                logger.exception("deletion pass failed")


_active: DeletionTask | None = None


def install(task: DeletionTask | None) -> None:
    """Make ``task`` the one that ``wake`` notifies (the server does this at start-up)."""
    global _active
    _active = task


def wake() -> None:
    if _active is not None:
        _active.wake()
