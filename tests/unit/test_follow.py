"""Following the tail: the follower's bounded queue and timer, and a session's heartbeats."""

from __future__ import annotations

import asyncio
from array import array
from typing import Any

from storagecore.catalog.memory import MemoryCatalog
from storagecore.engine import Engine, EngineSettings
from storagecore.objstore.memory import MemoryObjectStore
from storagecore.reader import ReadLimits
from storagecore.records import AppendBatch, parse_record
from storagecore.segment import Block, BlockIndex
from storagecore.streamer import CachedBlock, Follower, StreamSettings
from streams.sessions import Batch, Heartbeat, read_session
from tests.unit.test_engine import FakeClock, run


def _cached(start: int) -> CachedBlock:
    index = BlockIndex(array("Q", [start]), array("I", [1]), array("I", [1]))
    return CachedBlock(Block(1, start, start, start, 1, index, b"x"), None)


class CountingTimers:
    """Counts the timers a loop schedules."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.scheduled = 0
        original = loop.call_at

        def call_at(when: float, callback: Any, *args: Any, **kwargs: Any) -> Any:
            self.scheduled += 1
            return original(when, callback, *args, **kwargs)

        loop.call_at = call_at  # type: ignore[method-assign,assignment]


@run
async def test_blocks_arrive_in_order_and_a_wait_ends_at_its_time() -> None:
    loop = asyncio.get_running_loop()
    follower = Follower()
    follower.offer(_cached(0))
    follower.offer(_cached(1))
    assert follower.queued == 2
    first, second = await follower.next(), await follower.next()
    assert first is not None and second is not None
    assert (first.block.start_seq, second.block.start_seq) == (0, 1)
    started = loop.time()
    assert await follower.next(started + 0.05) is None
    assert loop.time() >= started + 0.05
    follower.close()


@run
async def test_a_waiting_follower_wakes_for_a_block() -> None:
    loop = asyncio.get_running_loop()
    follower = Follower()
    waiting = asyncio.ensure_future(follower.next(loop.time() + 10))
    await asyncio.sleep(0)
    follower.offer(_cached(7))
    got = await asyncio.wait_for(waiting, 1)
    assert got is not None and got.block.start_seq == 7
    follower.close()


@run
async def test_deliveries_reuse_the_waits_timer() -> None:
    """A hundred deliveries within one silence schedule one timer, not a hundred."""
    loop = asyncio.get_running_loop()
    timers = CountingTimers(loop)
    follower = Follower()
    until = loop.time() + 10
    for seq in range(100):
        waiting = asyncio.ensure_future(follower.next(until))
        await asyncio.sleep(0)
        follower.offer(_cached(seq))
        got = await waiting
        assert got is not None and got.block.start_seq == seq
    assert timers.scheduled == 1
    # A wait that must end sooner moves the timer.
    assert await follower.next(loop.time() + 0.01) is None
    assert timers.scheduled == 2
    follower.close()


@run
async def test_a_full_queue_makes_the_follower_lag() -> None:
    follower = Follower(capacity=2)
    for seq in range(3):
        follower.offer(_cached(seq))
    assert follower.lagging
    assert follower.queued == 2
    follower.offer(_cached(3))
    assert follower.queued == 2  # nothing more is queued once lagging
    follower.close()


class ShortSilences:
    """A heartbeat schedule of short silences, for the test's sake."""

    def __init__(self, silence_s: float) -> None:
        self.silence_s = silence_s

    def uniform(self, low: float, high: float) -> float:
        assert (low, high) == (5.0, 15.0)
        return self.silence_s


def _append(*bodies: bytes) -> AppendBatch:
    return AppendBatch.build([parse_record(None, [], body) for body in bodies], None, None)


@run
async def test_heartbeats_follow_silences_and_batches_restart_them() -> None:
    loop = asyncio.get_running_loop()
    clock = FakeClock()
    engine = Engine(MemoryObjectStore(), MemoryCatalog(clock), clock, EngineSettings())
    await engine.start()
    await engine.append(1, _append(b"a"), StreamSettings())
    events = read_session(engine, 1, 0, ReadLimits(), None, ShortSilences(0.2))  # type: ignore[arg-type]
    caught_up = await anext(events)
    assert isinstance(caught_up, Batch) and caught_up.records.count == 1
    assert isinstance(await anext(events), Heartbeat)  # at the tail

    # Appends every 0.1 s keep the 0.2 s silence from ever completing.
    async def appender() -> None:
        for body in (b"b", b"c", b"d"):
            await asyncio.sleep(0.1)
            await engine.append(1, _append(body), StreamSettings())

    appending = asyncio.ensure_future(appender())
    kinds = []
    for _ in range(3):
        kinds.append(type(await anext(events)).__name__)
    await appending
    assert kinds == ["Batch", "Batch", "Batch"]
    last_batch_at = loop.time()
    beat = await anext(events)
    assert isinstance(beat, Heartbeat) and beat.tail.seq_num == 4
    assert loop.time() - last_batch_at >= 0.19
    await events.aclose()  # type: ignore[attr-defined]
    await engine.stop()
