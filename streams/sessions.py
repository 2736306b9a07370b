"""Read sessions (spec §4.3, §5.1, §5.3): catch up from storage, then follow the tail.

``read_session`` yields what a session delivers -- batches of stored records and
heartbeats -- independently of how they are framed on the wire (S2S or SSE).
Catch-up batches carry no tail; live batches carry the tail right after them.
Heartbeats are sent when the session starts following and after random 5-15 s
silences. ``wait`` is an inactivity budget, re-armed by every delivered batch.
A follower that falls behind goes back to reading from storage.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Hashable,
    Iterator,
    MutableMapping,
)
from dataclasses import dataclass
from typing import Any

from storagecore import limits
from storagecore.engine import Engine
from storagecore.positions import StreamPosition
from storagecore.reader import ReadBatch, ReadLimits

HEARTBEAT_MIN_S = 5.0
HEARTBEAT_MAX_S = 15.0

# One generator for every session's heartbeat jitter (seeding one per session costs more
# than the session's first batch).
_heartbeat_rng = random.Random()


@dataclass(frozen=True, slots=True)
class Batch:
    records: ReadBatch
    tail: StreamPosition | None
    # For a live batch that is a whole followed block: the block's shared wire forms.
    renderings: dict[Hashable, bytes] | None = None


@dataclass(frozen=True, slots=True)
class Heartbeat:
    tail: StreamPosition


SessionEvent = Batch | Heartbeat


def may_follow(wanted: ReadLimits, wait_s: int | None) -> bool:
    """A read may wait at the tail iff it is unbounded, or ``wait`` is positive."""
    return (wanted.count is None and wanted.bytes is None and wanted.until is None) or bool(wait_s)


async def read_session(
    engine: Engine,
    stream_id: int,
    start_seq: int,
    wanted: ReadLimits,
    wait_s: int | None,
    rng: random.Random | None = None,
) -> AsyncIterator[SessionEvent]:
    rng = rng or _heartbeat_rng
    streamer = engine.streamer(stream_id)
    reader = engine.reader
    follow = may_follow(wanted, wait_s)
    seq = start_seq
    remaining = wanted
    loop = asyncio.get_running_loop()
    while True:
        # Catch up from storage (or the recent cache) to the durable tail.
        follower = streamer.follow() if follow else None
        try:
            while True:
                batch = await reader.read(
                    streamer, seq, remaining, limits.read_count_max, limits.read_bytes_max
                )
                seq = max(seq, batch.next_seq)
                if batch.count:
                    remaining = remaining.after(batch.count, batch.metered)
                    yield Batch(batch, None)
                if batch.limit_reached:
                    return
                if seq >= streamer.tail.seq_num:
                    break
            if follower is None:
                return
            # Follow: live blocks arrive through the follower's bounded queue. The wait
            # deadline is armed first: with nothing left of it, end without a heartbeat.
            deadline = None if wait_s is None else loop.time() + wait_s
            if wait_s == 0:
                return
            yield Heartbeat(streamer.tail)
            quiet_since = loop.time()
            silence_s = rng.uniform(HEARTBEAT_MIN_S, HEARTBEAT_MAX_S)
            while not follower.lagging:
                until = quiet_since + silence_s
                if deadline is not None:
                    if loop.time() >= deadline:
                        return
                    until = min(until, deadline)
                cached = await follower.next(until)
                if cached is None:
                    if follower.lagging:
                        break
                    if deadline is not None and loop.time() >= deadline:
                        return
                    yield Heartbeat(streamer.tail)
                    quiet_since = loop.time()
                    silence_s = rng.uniform(HEARTBEAT_MIN_S, HEARTBEAT_MAX_S)
                    continue
                block = cached.block
                live_tail = StreamPosition(block.end_seq, block.last_ts)
                while seq < block.end_seq:
                    live = reader.take(block, seq, remaining)
                    seq = max(seq, live.next_seq)
                    if live.count:
                        remaining = remaining.after(live.count, live.metered)
                        whole = live.count == block.record_count
                        yield Batch(live, live_tail, cached.renderings if whole else None)
                        quiet_since = loop.time()
                        if deadline is not None:
                            deadline = quiet_since + wait_s  # type: ignore[operator]
                    if live.limit_reached or remaining.exhausted:
                        return
                    if not live.count:
                        break
        finally:
            if follower is not None:
                streamer.unfollow(follower)
        # The follower fell behind: read what it missed from storage, then follow again.


class OpenSessions:
    """The sessions a server has open, and its request that they end (at shutdown)."""

    def __init__(self) -> None:
        self.closing = asyncio.Event()
        self._count = 0
        self._none_open = asyncio.Event()
        self._none_open.set()

    @property
    def count(self) -> int:
        return self._count

    @contextlib.contextmanager
    def track(self) -> Iterator[None]:
        self._count += 1
        self._none_open.clear()
        try:
            yield
        finally:
            self._count -= 1
            if not self._count:
                self._none_open.set()

    async def close_all(self, grace_s: float) -> None:
        """Ask every open session to end, and wait up to ``grace_s`` for them to do so."""
        self.closing.set()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace_s):
                await self._none_open.wait()


async def run_until_disconnect(
    receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
    session: Coroutine[Any, Any, None],
    open_sessions: OpenSessions | None = None,
    on_closing: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run ``session`` (a coroutine) until it ends or the client goes away, whichever is
    first; a disconnect cancels the session at once. When the server asks open sessions
    to end, the session is cancelled and ``on_closing`` tells the client why."""
    task = asyncio.ensure_future(session)
    watcher = asyncio.ensure_future(_disconnected(receive))
    waiting: set[asyncio.Future[Any]] = {task, watcher}
    closing = None
    if open_sessions is not None:
        closing = asyncio.ensure_future(open_sessions.closing.wait())
        waiting.add(closing)
    try:
        with open_sessions.track() if open_sessions is not None else contextlib.nullcontext():
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
            if closing in done and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                if on_closing is not None:
                    await on_closing()
                return
    finally:
        for pending in waiting:
            if not pending.done():
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pending
    if task in done:
        task.result()


async def _disconnected(receive: Callable[[], Awaitable[MutableMapping[str, Any]]]) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
