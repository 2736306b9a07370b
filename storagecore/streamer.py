"""The per-stream writer (spec §10, ARCHITECTURE §3) and the registry of active ones.

A ``Streamer`` is the single serialisation point of one stream. Because the
engine runs on one event loop, sequencing is a synchronous step: appends are
checked, sequenced and queued to the committer in arrival order without
waiting for earlier ones to be durable (pipelining). Acknowledgements come back
in order when the committer reports durability; a rejection is answered only
after every earlier accepted append is durable. Durable records are kept in a
small bounded cache for readers and pushed to followers' bounded queues; a
follower that falls behind is dropped and reads from storage instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field

from storagecore import limits
from storagecore.budget import ByteBudget
from storagecore.committer import Committer
from storagecore.errors import ErrorCode, S2Error
from storagecore.ports import Catalog, Clock
from storagecore.positions import AppendAck, StreamPosition
from storagecore.records import AppendBatch
from storagecore.segment import Block
from storagecore.sequencer import (
    SequencedRun,
    TimestampPolicy,
    WriterState,
    sequence,
    terminal_trim,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StreamSettings:
    """The parts of a stream's configuration that the writer applies."""

    policy: TimestampPolicy = field(default_factory=TimestampPolicy)
    retention_age_s: int | None = 7 * 24 * 3600


class AppendSession:
    """The appends of one append session (spec §5.4): after the first failure, later
    inputs are refused without being written, so a session's log has no holes."""

    def __init__(self) -> None:
        self.failed = False


class SessionFailed(S2Error):
    """An earlier input of the same session failed; this one was not appended."""

    code = ErrorCode.UNAVAILABLE

    def __init__(self) -> None:
        super().__init__("an earlier append of this session failed")


@dataclass(slots=True)
class CachedBlock:
    """A durable block as followers receive it.

    ``renderings`` holds the block's wire forms (keyed by the session kind and format),
    rendered by the first follower that needs one and reused by the others: a live
    append then costs one encoding per format, however many sessions follow.
    """

    block: Block
    expires_at_ms: int | None
    renderings: dict[Hashable, bytes] = field(default_factory=dict)


class Follower:
    """A reader following the tail; receives every durable block, in order, while it keeps up.

    Blocks wait in a bounded queue; one that does not fit marks the follower
    ``lagging`` (it then reads from storage). ``next`` waits for a block until a
    point in time. The session's timer is kept across waits and only moved when a
    wait must end sooner, so a delivery costs no timer: with a thousand sessions
    following one stream, each append would otherwise schedule and cancel a
    thousand timers.
    """

    def __init__(self, capacity: int = limits.follower_queue_batches_max) -> None:
        self._blocks: deque[CachedBlock] = deque()
        self._capacity = capacity
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.lagging = False

    @property
    def queued(self) -> int:
        return len(self._blocks)

    def offer(self, cached: CachedBlock) -> None:
        if self.lagging:
            return
        if len(self._blocks) >= self._capacity:
            self.lagging = True
        else:
            self._blocks.append(cached)
        self._wake()

    async def next(self, until: float | None = None) -> CachedBlock | None:
        """The next block; None once the loop's clock reaches ``until`` or the follower lags."""
        loop = asyncio.get_running_loop()
        while not self._blocks:
            if self.lagging or (until is not None and loop.time() >= until):
                return None
            if until is not None:
                self._arm(loop, until)
            self._waiter = waiter = loop.create_future()
            try:
                await waiter
            finally:
                self._waiter = None
        return self._blocks.popleft()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, loop: asyncio.AbstractEventLoop, until: float) -> None:
        timer = self._timer
        if timer is not None:
            if timer.when() <= until:
                return  # fires first; the wait then goes on until ``until``
            timer.cancel()
        self._timer = loop.call_at(until, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


@dataclass(slots=True)
class _Recent:
    blocks: deque[CachedBlock] = field(default_factory=deque)
    bytes: int = 0


class Streamer:
    def __init__(
        self,
        stream_id: int,
        committer: Committer,
        catalog: Catalog,
        clock: Clock,
        budget: ByteBudget,
    ) -> None:
        self.stream_id = stream_id
        self.committer = committer
        self.catalog = catalog
        self.clock = clock
        self.budget = budget
        self.state = WriterState()  # next assignable, including not-yet-durable appends
        self.durable = WriterState()  # what readers may see
        self.followers: set[Follower] = set()
        self._recent = _Recent()
        self._loaded: asyncio.Future[None] | None = None
        self._last_accepted: asyncio.Future[None] | None = None
        self._turn: asyncio.Future[None] | None = None
        self._inflight = 0
        self.last_used = asyncio.get_running_loop().time()
        # Called with the stream id when a trim becomes durable (the trim task's trigger).
        self.on_trim: Callable[[int], None] | None = None

    @property
    def tail(self) -> StreamPosition:
        return self.durable.tail

    @property
    def appending(self) -> bool:
        """Appends accepted and not yet answered."""
        return self._inflight > 0

    @property
    def busy(self) -> bool:
        return self._inflight > 0 or bool(self.followers)

    async def load(self) -> None:
        """Read the durable state from the catalog once; concurrent callers share the load."""
        if self._loaded is None:
            self._loaded = asyncio.get_running_loop().create_future()
            try:
                state = await self.catalog.load_state(self.stream_id)
            except BaseException as exc:
                failed, self._loaded = self._loaded, None
                failed.set_exception(exc)
                failed.exception()  # retrieved here; concurrent waiters still see it
                raise
            self.state = self.durable = state
            self._loaded.set_result(None)
        elif not self._loaded.done():
            await asyncio.shield(self._loaded)

    async def append(
        self,
        batch: AppendBatch,
        settings: StreamSettings,
        session: AppendSession | None = None,
    ) -> AppendAck:
        """Append one batch. Calls made in order are sequenced in that order: admission
        (the budget) is first come first served and sequencing does not wait."""
        loop = asyncio.get_running_loop()
        self.last_used = loop.time()
        # Waiting (for the budget, or for the first load) must not let a later call
        # overtake: each append is sequenced only after its predecessor's turn.
        previous, turn = self._turn, loop.create_future()
        self._turn = turn
        try:
            await self.budget.acquire(batch.metered_bytes)
        except BaseException:
            _pass_turn(turn, previous)
            raise
        try:
            await self.load()
            if previous is not None and not previous.done():
                await asyncio.shield(previous)
            # Sequencing below runs before the next append can resume.
            turn.set_result(None)
            return await self._append_loaded(batch, settings, session)
        finally:
            _pass_turn(turn, previous)
            self.budget.release(batch.metered_bytes)

    async def _append_loaded(
        self, batch: AppendBatch, settings: StreamSettings, session: AppendSession | None
    ) -> AppendAck:
        if session is not None and session.failed:
            raise SessionFailed()
        now = self.clock.now_ms()
        try:
            run = sequence(self.state, batch, settings.policy, now)
        except S2Error:
            if session is not None:
                session.failed = True  # before waiting: later inputs must not be sequenced
            await self._earlier_appends_settled()
            raise
        try:
            return await self._submit(run, settings, now)
        except S2Error:
            if session is not None:
                session.failed = True
            raise

    async def delete(self) -> None:
        """Append the terminal trim that marks the stream as being deleted (spec §2.8)."""
        await self.load()
        if self.state.deleting:
            await self._earlier_appends_settled()
            return
        now = self.clock.now_ms()
        await self._submit(terminal_trim(self.state, now), StreamSettings(), now)

    async def _submit(self, run: SequencedRun, settings: StreamSettings, now: int) -> AppendAck:
        self.state = run.state
        expires = (
            None if settings.retention_age_s is None else now + settings.retention_age_s * 1000
        )
        future = self.committer.submit(self, run, expires)
        self._last_accepted = future
        self._inflight += 1
        try:
            await asyncio.shield(future)
        finally:
            self._inflight -= 1
        return AppendAck(run.start, run.end, self.durable.tail)

    async def _earlier_appends_settled(self) -> None:
        previous = self._last_accepted
        if previous is not None and not previous.done():
            with contextlib.suppress(Exception):
                await asyncio.shield(previous)

    # Committer callbacks.

    def on_durable(self, block: Block, state: WriterState, expires_at_ms: int | None) -> None:
        trimmed = state.trim_point > self.durable.trim_point
        self.durable = state
        if trimmed and self.on_trim is not None:
            self.on_trim(self.stream_id)
        cached = CachedBlock(block, expires_at_ms)
        recent = self._recent
        recent.blocks.append(cached)
        recent.bytes += len(block.payload)
        while recent.bytes > limits.streamer_recent_bytes_max and len(recent.blocks) > 1:
            recent.bytes -= len(recent.blocks.popleft().block.payload)
        if self.followers:
            # Deferred by one turn of the loop, so that the appenders waiting for this
            # flush are woken before a possibly large crowd of followers. Blocks still
            # reach followers in order; one that registers meanwhile may get a block it
            # already read, which a session skips.
            asyncio.get_running_loop().call_soon(self._offer, cached)

    def _offer(self, cached: CachedBlock) -> None:
        for follower in list(self.followers):
            follower.offer(cached)

    def on_failed(self) -> None:
        # What was sequenced beyond the durable state is gone: start again from it.
        self.state = self.durable
        self._recent = _Recent()

    # Readers.

    def recent_blocks_from(self, seq_num: int) -> list[CachedBlock] | None:
        """Cached durable blocks from ``seq_num`` up to the tail, or None if not all cached."""
        blocks = self._recent.blocks
        if not blocks or blocks[0].block.start_seq > seq_num:
            return None
        return [c for c in blocks if c.block.end_seq > seq_num]

    def follow(self) -> Follower:
        follower = Follower()
        self.followers.add(follower)
        return follower

    def unfollow(self, follower: Follower) -> None:
        self.followers.discard(follower)
        follower.close()


def _pass_turn(turn: asyncio.Future[None], previous: asyncio.Future[None] | None) -> None:
    """An append leaves without being sequenced: the next one goes after ``previous``."""

    def done(_: object = None) -> None:
        if not turn.done():
            turn.set_result(None)

    if previous is None or previous.done():
        done()
    else:
        previous.add_done_callback(done)


class StreamerRegistry:
    """Creates streamers on demand and stops idle ones."""

    def __init__(
        self, committer: Committer, catalog: Catalog, clock: Clock, budget: ByteBudget
    ) -> None:
        self.committer = committer
        self.catalog = catalog
        self.clock = clock
        self.budget = budget
        self._streamers: dict[int, Streamer] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self.on_trim: Callable[[int], None] | None = None

    def get(self, stream_id: int) -> Streamer:
        streamer = self._streamers.get(stream_id)
        if streamer is None:
            streamer = Streamer(stream_id, self.committer, self.catalog, self.clock, self.budget)
            streamer.on_trim = self.on_trim
            self._streamers[stream_id] = streamer
        return streamer

    def peek(self, stream_id: int) -> Streamer | None:
        return self._streamers.get(stream_id)

    def forget(self, stream_id: int) -> None:
        self._streamers.pop(stream_id, None)

    def __len__(self) -> int:
        return len(self._streamers)

    def active(self) -> list[Streamer]:
        return list(self._streamers.values())

    def start(self, idle_timeout_s: float = limits.streamer_idle_timeout_s) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(
            self._sweep(idle_timeout_s), name="s2-streamer-sweeper"
        )

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        self._streamers.clear()

    async def _sweep(self, idle_timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(max(1.0, idle_timeout_s / 4))
            now = loop.time()
            for stream_id, streamer in list(self._streamers.items()):
                if not streamer.busy and now - streamer.last_used > idle_timeout_s:
                    del self._streamers[stream_id]
