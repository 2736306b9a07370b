"""A server-wide budget of in-flight append bytes, admitted strictly in arrival order."""

from __future__ import annotations

import asyncio
import time
from collections import deque

from storagecore.observe import NO_OBSERVER, EngineObserver


class ByteBudget:
    """Appends acquire their metered size before sequencing and release it when durable.

    Waiters are served first-come first-served, so a large append is never starved
    by small ones, and appends of one session stay in order.
    """

    def __init__(self, capacity_bytes: int, observer: EngineObserver = NO_OBSERVER) -> None:
        self.capacity_bytes = capacity_bytes
        self.observer = observer
        self.available_bytes = capacity_bytes
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    async def acquire(self, size: int) -> None:
        size = min(size, self.capacity_bytes)
        if not self._waiters and self.available_bytes >= size:
            self.available_bytes -= size
            self.observer.append_permit_waited(0.0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((size, future))
        started = time.perf_counter()
        try:
            await future
            self.observer.append_permit_waited(time.perf_counter() - started)
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release(size)  # granted just as we were cancelled
            else:
                self._waiters.remove((size, future))
                self._wake()
            raise

    def release(self, size: int) -> None:
        self.available_bytes += min(size, self.capacity_bytes)
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            size, future = self._waiters[0]
            if future.done():
                self._waiters.popleft()
                continue
            if self.available_bytes < size:
                return
            self._waiters.popleft()
            self.available_bytes -= size
            future.set_result(None)
