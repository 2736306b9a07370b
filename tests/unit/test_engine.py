"""The engine with in-memory adapters: sequencing, group commit, durability order, reads."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from storagecore.catalog.memory import MemoryCatalog
from storagecore.config import TimestampingMode
from storagecore.encoding import decode_records
from storagecore.engine import Engine, EngineSettings
from storagecore.errors import AppendConditionFailed, Invalid, StorageFailure, Unavailable
from storagecore.objstore.memory import MemoryObjectStore
from storagecore.reader import ReadLimits
from storagecore.records import AppendBatch, fence_record, parse_record, trim_record
from storagecore.sequencer import TimestampPolicy
from storagecore.streamer import StreamSettings


class FakeClock:
    def __init__(self, now_ms: int = 1_000_000) -> None:
        self.now = now_ms

    def now_ms(self) -> int:
        return self.now


def run(test: Callable[..., Coroutine[Any, Any, Any]]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return asyncio.run(test(*args, **kwargs))

    wrapper.__name__ = test.__name__
    return wrapper


async def _engine(clock: FakeClock | None = None, **settings: Any) -> Engine:
    clock = clock or FakeClock()
    engine = Engine(MemoryObjectStore(), MemoryCatalog(clock), clock, EngineSettings(**settings))
    await engine.start()
    return engine


def _batch(*bodies: bytes, match: int | None = None, token: str | None = None) -> AppendBatch:
    return AppendBatch.build([parse_record(None, [], body) for body in bodies], match, token)


SETTINGS = StreamSettings()


@run
async def test_append_then_read_back_in_order() -> None:
    engine = await _engine()
    ack = await engine.append(1, _batch(b"a", b"b"), SETTINGS)
    assert (ack.start.seq_num, ack.end.seq_num, ack.tail.seq_num) == (0, 2, 2)
    ack2 = await engine.append(1, _batch(b"c"), SETTINGS)
    assert ack2.start.seq_num == 2
    batch = await engine.reader.read(engine.streamer(1), 0, ReadLimits())
    assert [r[3] for r in decode_records(batch.payload)] == [b"a", b"b", b"c"]
    assert [r[0] for r in decode_records(batch.payload)] == [0, 1, 2]
    await engine.stop()


@run
async def test_concurrent_appends_share_flushes_and_ack_in_order() -> None:
    engine = await _engine()
    acks = await asyncio.gather(
        *(engine.append(stream, _batch(b"x"), SETTINGS) for stream in (1, 2, 3) for _ in range(5))
    )
    catalog = engine.catalog
    assert isinstance(catalog, MemoryCatalog)
    assert catalog.commits < 15  # group commit: fewer flushes than appends
    per_stream = [acks[i * 5 : (i + 1) * 5] for i in range(3)]
    for stream_acks in per_stream:
        assert [a.start.seq_num for a in stream_acks] == [0, 1, 2, 3, 4]
    await engine.stop()


@run
async def test_conditions_are_checked_against_the_next_assignable_position() -> None:
    engine = await _engine()
    first = asyncio.ensure_future(engine.append(1, _batch(b"a", b"b"), SETTINGS))
    second = asyncio.ensure_future(engine.append(1, _batch(b"c", match=2), SETTINGS))
    wrong = asyncio.ensure_future(engine.append(1, _batch(b"d", match=0), SETTINGS))
    assert (await first).end.seq_num == 2
    assert (await second).start.seq_num == 2
    with pytest.raises(AppendConditionFailed) as excinfo:
        await wrong
    assert excinfo.value.body() == {"seq_num_mismatch": 3}
    await engine.stop()


@run
async def test_fencing() -> None:
    engine = await _engine()
    fence = AppendBatch.build([fence_record("t1")], None, None)
    await engine.append(1, fence, SETTINGS)
    with pytest.raises(AppendConditionFailed) as excinfo:
        await engine.append(1, _batch(b"x", token="other"), SETTINGS)
    assert excinfo.value.status == 412
    assert excinfo.value.body() == {"fencing_token_mismatch": "t1"}
    ack = await engine.append(1, _batch(b"x", token="t1"), SETTINGS)
    assert ack.start.seq_num == 1
    await engine.stop()


@run
async def test_timestamps_are_clamped_and_monotonic() -> None:
    clock = FakeClock(5000)
    engine = await _engine(clock)
    records = [
        parse_record(9000, [], b"future"),
        parse_record(100, [], b"past"),
        parse_record(None, [], b"none"),
    ]
    ack = await engine.append(1, AppendBatch.build(records, None, None), SETTINGS)
    batch = await engine.reader.read(engine.streamer(1), 0, ReadLimits())
    assert [r[1] for r in decode_records(batch.payload)] == [5000, 5000, 5000]
    assert ack.end.timestamp == 5000

    uncapped = StreamSettings(TimestampPolicy(uncapped=True))
    await engine.append(2, AppendBatch.build([parse_record(9000, [], b"f")], None, None), uncapped)
    assert (await engine.tail(2)).timestamp == 9000

    require = StreamSettings(TimestampPolicy(TimestampingMode.CLIENT_REQUIRE))
    with pytest.raises(Invalid, match="record timestamp was required"):
        await engine.append(3, _batch(b"x"), require)
    await engine.stop()


@run
async def test_trim_is_honoured_at_once_and_capped_at_the_trim_record() -> None:
    engine = await _engine()
    await engine.append(1, _batch(b"a", b"b", b"c"), SETTINGS)
    await engine.append(1, AppendBatch.build([trim_record(2)], None, None), SETTINGS)
    batch = await engine.reader.read(engine.streamer(1), 0, ReadLimits())
    assert [r[0] for r in decode_records(batch.payload)] == [2, 3]
    # Trimming "to the future" trims at most through the trim record itself (seq 4).
    await engine.append(1, AppendBatch.build([trim_record(100)], None, None), SETTINGS)
    assert engine.streamer(1).durable.trim_point == 5
    assert (await engine.tail(1)).seq_num == 5
    await engine.stop()


@run
async def test_read_limits() -> None:
    engine = await _engine()
    await engine.append(1, _batch(*(bytes([65 + i]) * 10 for i in range(10))), SETTINGS)
    streamer = engine.streamer(1)
    by_count = await engine.reader.read(streamer, 2, ReadLimits(count=3))
    assert by_count.count == 3 and by_count.limit_reached
    # Each record meters 8 + 10 = 18 bytes: 40 bytes hold two of them.
    by_bytes = await engine.reader.read(streamer, 0, ReadLimits(bytes=40))
    assert by_bytes.count == 2 and by_bytes.limit_reached
    too_small = await engine.reader.read(streamer, 0, ReadLimits(bytes=5))
    assert too_small.count == 0 and too_small.limit_reached
    batch_limited = await engine.reader.read(streamer, 0, ReadLimits(), batch_count=4)
    assert batch_limited.count == 4 and not batch_limited.limit_reached
    assert batch_limited.next_seq == 4
    await engine.stop()


@run
async def test_reads_from_segments_after_a_restart() -> None:
    clock = FakeClock()
    store, catalog = MemoryObjectStore(), MemoryCatalog(clock)
    first = Engine(store, catalog, clock, EngineSettings())
    await first.start()
    for i in range(20):
        await first.append(7, _batch(f"r{i}".encode()), SETTINGS)

    second = Engine(store, catalog, clock, EngineSettings())
    await second.start()
    assert (await second.tail(7)).seq_num == 20
    streamer = second.streamer(7)
    batch = await second.reader.read(streamer, 5, ReadLimits(count=10))
    assert [r[3] for r in decode_records(batch.payload)] == [f"r{i}".encode() for i in range(5, 15)]
    ack = await second.append(7, _batch(b"after"), SETTINGS)
    assert ack.start.seq_num == 20
    # The first engine was fenced out when the second took the lease: its next
    # flush fails with a retryable error and nothing of it becomes visible.
    with pytest.raises(Unavailable):
        await first.append(7, _batch(b"stale"), SETTINGS)
    with pytest.raises(Unavailable):
        await first.append(8, _batch(b"other stream"), SETTINGS)
    assert (await second.tail(7)).seq_num == 21
    await first.stop()
    await second.stop()


@run
async def test_a_sequential_reader_fetches_more_index_rows_as_it_goes() -> None:
    """A stream of 3,000 one-record blocks is read back through a few dozen index queries
    (fetches double from 16 up to 512 rows), not one per 16 blocks."""
    clock = FakeClock()
    store, catalog = MemoryObjectStore(), MemoryCatalog(clock)
    writer = Engine(store, catalog, clock, EngineSettings())
    await writer.start()
    for i in range(3000):
        await writer.append(3, _batch(b"%d" % i), SETTINGS)
    await writer.stop()

    reader_engine = Engine(store, catalog, clock, EngineSettings())
    await reader_engine.start()
    fetches: list[int] = []
    original = catalog.chunks_from

    async def counting(stream_id: int, seq_num: int, limit: int) -> Any:
        fetches.append(limit)
        return await original(stream_id, seq_num, limit)

    catalog.chunks_from = counting  # type: ignore[method-assign]
    assert (await reader_engine.tail(3)).seq_num == 3000
    streamer = reader_engine.streamer(3)
    bodies: list[bytes] = []
    seq = 0
    while seq < 3000:
        batch = await reader_engine.reader.read(streamer, seq, ReadLimits(), 100)
        assert batch.count
        bodies += [r[3] for r in decode_records(batch.payload)]
        seq = batch.next_seq
    assert bodies == [b"%d" % i for i in range(3000)]
    assert fetches[:6] == [16, 32, 64, 128, 256, 512]
    assert len(fetches) <= 12
    # A reader that jumps elsewhere starts small again.
    await reader_engine.reader.read(streamer, 10, ReadLimits(), 5)
    assert fetches[-1] == 16
    await reader_engine.stop()


@run
async def test_retention_hides_expired_records() -> None:
    clock = FakeClock()
    engine = await _engine(clock)
    short = StreamSettings(retention_age_s=10)
    await engine.append(1, _batch(b"old"), short)
    clock.now += 11_000
    await engine.append(1, _batch(b"new"), short)
    batch = await engine.reader.read(engine.streamer(1), 0, ReadLimits())
    assert [r[3] for r in decode_records(batch.payload)] == [b"new"]
    await engine.stop()


class FailingStore(MemoryObjectStore):
    fail = False

    async def put(self, key: str, data: bytes) -> None:
        if self.fail:
            raise OSError("disk full")
        await super().put(key, data)


@run
async def test_a_failed_flush_acknowledges_nothing_and_the_stream_recovers() -> None:
    clock = FakeClock()
    store = FailingStore()
    engine = Engine(store, MemoryCatalog(clock), clock, EngineSettings())
    await engine.start()
    await engine.append(1, _batch(b"kept"), SETTINGS)
    store.fail = True
    with pytest.raises(StorageFailure):
        await engine.append(1, _batch(b"lost"), SETTINGS)
    store.fail = False
    ack = await engine.append(1, _batch(b"next"), SETTINGS)
    assert ack.start.seq_num == 1
    batch = await engine.reader.read(engine.streamer(1), 0, ReadLimits())
    assert [r[3] for r in decode_records(batch.payload)] == [b"kept", b"next"]
    await engine.stop()


@run
async def test_a_fresh_database_next_to_an_old_store_writes_new_segment_names() -> None:
    """Segment names carry the writer's random nonce: epoch 1 of a second database does
    not collide with epoch 1 of the first in the same store."""
    clock = FakeClock()
    store = MemoryObjectStore()
    for nonce in (1, 2):
        engine = Engine(store, MemoryCatalog(clock), clock, EngineSettings(writer_nonce=nonce))
        await engine.start()
        ack = await engine.append(1, _batch(b"x"), SETTINGS)
        assert ack.start.seq_num == 0 and engine.epoch == 1
        await engine.stop()
    assert len(await store.list_keys("segments/")) == 2
