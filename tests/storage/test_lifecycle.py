"""Trim, retention, garbage collection, orphan sweep and storage accounting (spec §3.6, §8),
on the Django catalog with a fake clock: each pass is run explicitly after the clock moved.

``transactional_db``: the catalog and the passes run their ORM calls in threads.
"""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest

from storagecore import paths
from storagecore.streamer import StreamSettings
from streams import maintenance
from tests.storage.lifecycle_support import (
    GRACE_S,
    FakeClock,
    Log,
    db,
    garbage_keys,
    log_bytes,
    rows_bytes,
    run,
)

pytestmark = [pytest.mark.usefixtures("transactional_db"), pytest.mark.timeout(60)]


def test_accounting_follows_every_flush_and_removal() -> None:
    async def scenario() -> None:
        log = Log(FakeClock())
        await log.start()
        try:
            for i in range(5):
                await log.append(1, b"a" * (100 + i), b"b")
            await log.append(2, b"c" * 1000)
            for stream_id in (1, 2):
                stored, metered = await db(log_bytes, stream_id)
                assert (stored, metered) == await db(rows_bytes, stream_id)
                assert stored > metered > 0
            assert (await db(maintenance.stream_storage, 1)).metered_bytes == sum(
                8 + 100 + i + 8 + 1 for i in range(5)
            )
            await log.trim(1, 6)  # the first three appends (6 records) go
            await log.lifecycle.trim_pass()
            assert await db(log_bytes, 1) == await db(rows_bytes, 1)
            assert (await db(maintenance.stream_storage, 1)).metered_bytes == sum(
                8 + 100 + i + 8 + 1 for i in range(3, 5)
            ) + (8 + 2 + 4 + 8)  # the trim record: header ("", "trim"), 8 bytes of body
            assert await db(maintenance.stream_storage, 99) == maintenance.Storage()
        finally:
            await log.stop()

    run(scenario)


def test_trim_removes_rows_below_the_trim_point_and_gc_their_segments_after_grace() -> None:
    clock = FakeClock()

    async def scenario() -> None:
        log = Log(clock)
        await log.start()
        try:
            for i in range(10):
                await log.append(1, f"r{i}".encode())
            before = await log.segment_keys()
            assert len(before) == 10
            ack = await log.trim(1, 4)
            assert ack.start.seq_num == 10
            # Reads honour the trim point at once; the rows are still there.
            assert [seq for seq, _ in await log.read(1)] == [4, 5, 6, 7, 8, 9, 10]
            assert len(await log.rows(1)) == 11
            await log.lifecycle.trim_pass()
            rows = await log.rows(1)
            assert [(s, e) for s, e, _ in rows] == [(i, i + 1) for i in range(4, 11)]
            removed = {key for key in before if key not in {k for _, _, k in rows}}
            assert len(removed) == 4 and await db(garbage_keys) == removed
            # Within the grace period nothing is deleted.
            clock.advance(GRACE_S - 1)
            await log.lifecycle.gc_pass()
            assert await log.segment_keys() >= before
            clock.advance(1)
            await log.lifecycle.gc_pass()
            assert removed.isdisjoint(await log.segment_keys())
            assert log.lifecycle.stats.segments_deleted == 4
            assert await db(garbage_keys) == set()
            assert [seq for seq, _ in await log.read(1)] == [4, 5, 6, 7, 8, 9, 10]
            # A trim point at or below the current one changes nothing.
            await log.trim(1, 2)
            await log.lifecycle.trim_pass()
            assert len(await log.rows(1)) == 8
        finally:
            await log.stop()

    run(scenario)


def test_a_durable_trim_wakes_the_trim_task_at_once() -> None:
    async def scenario() -> None:
        log = Log(FakeClock())
        await log.start()
        try:
            log.lifecycle.trim.interval_s = 3600.0
            log.lifecycle.trim.start()
            for i in range(3):
                await log.append(5, f"r{i}".encode())
            await log.trim(5, 10)  # to the future: up to and including the trim record
            for _ in range(500):
                if log.lifecycle.stats.rows_trimmed:
                    break
                await asyncio.sleep(0.01)
            await log.lifecycle.trim.stop()
            assert log.lifecycle.stats.rows_trimmed == 4
            assert await log.rows(5) == []
            assert await log.read(5) == []
            assert (await log.engine.tail(5)).seq_num == 4
        finally:
            await log.stop()

    run(scenario)


def test_expired_records_are_invisible_then_removed() -> None:
    clock = FakeClock()

    async def scenario() -> None:
        log = Log(clock)
        await log.start()
        short = StreamSettings(retention_age_s=10)
        try:
            await log.append(1, b"old", settings=short)
            clock.advance(5)
            await log.append(1, b"newer", settings=short)
            await log.append(1, b"forever")
            clock.advance(5)  # the first record's retention ran out exactly now
            assert [body for _, body in await log.read(1)] == [b"newer", b"forever"]
            assert len(await log.rows(1)) == 3  # invisible, not yet removed
            await log.lifecycle.retention_pass()
            assert [(s, e) for s, e, _ in await log.rows(1)] == [(1, 2), (2, 3)]
            clock.advance(5)
            await log.lifecycle.retention_pass()
            assert [(s, e) for s, e, _ in await log.rows(1)] == [(2, 3)]
            assert [(seq, body) for seq, body in await log.read(1)] == [(2, b"forever")]
            assert (await log.engine.tail(1)).seq_num == 3  # the tail never moves back
            assert log.lifecycle.stats.rows_expired == 2
            assert await db(log_bytes, 1) == await db(rows_bytes, 1)
        finally:
            await log.stop()

    run(scenario)


def test_a_segment_shared_by_streams_lives_until_its_last_row_goes() -> None:
    clock = FakeClock()

    async def scenario() -> None:
        log = Log(clock, flush_interval_s=0.05)
        await log.start()
        try:
            await asyncio.gather(log.append(1, b"a"), log.append(2, b"b"))
            [(_, _, key)] = await log.rows(1)
            assert [k for _, _, k in await log.rows(2)] == [key]  # one flush, one segment
            await log.trim(1, 1)
            await log.lifecycle.trim_pass()
            assert await db(garbage_keys) == {key}
            clock.advance(GRACE_S)
            await log.lifecycle.gc_pass()
            assert key in await log.segment_keys()  # stream 2 still reads it
            assert await db(garbage_keys) == set()
            assert [b for _, b in await log.read(2)] == [b"b"]
            await log.trim(2, 1)
            await log.lifecycle.trim_pass()
            await log.lifecycle.gc_pass()
            assert key in await log.segment_keys()  # its grace period starts now
            clock.advance(GRACE_S)
            await log.lifecycle.gc_pass()
            assert key not in await log.segment_keys()
        finally:
            await log.stop()

    run(scenario)


def test_orphan_segments_are_removed_after_the_grace_period_but_not_while_written() -> None:
    clock = FakeClock()

    async def scenario() -> None:
        log = Log(clock)
        await log.start()
        try:
            await log.append(1, b"kept")
            orphan = paths.segment_key("", 999, 1, 1)
            writing = paths.segment_key("", log.engine.epoch, 7, 1000)
            await log.store.put(orphan, b"never committed")
            await log.store.put(writing, b"being committed")
            log.engine.committer.writing_key = writing
            await log.lifecycle.orphan_sweep()
            assert await db(garbage_keys) == {orphan}
            await log.lifecycle.orphan_sweep()  # noticed once: its grace is not restarted
            clock.advance(GRACE_S)
            log.engine.committer.writing_key = None
            await log.lifecycle.gc_pass()
            keys = await log.segment_keys()
            assert orphan not in keys and writing in keys
            assert [b for _, b in await log.read(1)] == [b"kept"]
        finally:
            await log.stop()

    run(scenario)


def test_gc_never_deletes_a_referenced_segment_even_if_noted() -> None:
    clock = FakeClock()

    async def scenario() -> None:
        log = Log(clock)
        await log.start()
        try:
            await log.append(3, b"x")
            [(_, _, key)] = await log.rows(3)
            await db(maintenance.abandon_segment, key, clock.now_ms())  # a wrong note
            clock.advance(GRACE_S * 10)
            await log.lifecycle.gc_pass()
            assert key in await log.segment_keys()
            assert [b for _, b in await log.read(3)] == [b"x"]
        finally:
            await log.stop()

    run(scenario)


def test_removal_batches_are_paced(monkeypatch: pytest.MonkeyPatch) -> None:
    """Between two removal batches the pass pauses at least as long as the batch took, so
    that flushes (and acknowledgements) are not stuck behind back-to-back transactions."""
    from streams import lifecycle

    clock = FakeClock()
    spans: list[tuple[float, float]] = []
    remove_expired = maintenance.remove_expired

    def slow_small_batches(now_ms: int) -> int:
        started = time.monotonic()
        time.sleep(0.03)  # a heavy batch
        removed = remove_expired(now_ms, 2)
        spans.append((started, time.monotonic()))
        return removed

    monkeypatch.setattr(lifecycle.maintenance, "remove_expired", slow_small_batches)
    monkeypatch.setattr(lifecycle.limits, "removal_batch_rows", 2)

    async def scenario() -> None:
        log = Log(clock)
        await log.start()
        try:
            for i in range(6):
                await log.append(1, b"r%d" % i, settings=StreamSettings(retention_age_s=10))
            clock.advance(11)
            await log.lifecycle.retention_pass()
            assert await log.rows(1) == []
            assert log.lifecycle.stats.rows_expired == 6
        finally:
            await log.stop()

    run(scenario)
    assert len(spans) == 4  # 2 + 2 + 2 + the empty batch that ends the pass
    for (start, end), (next_start, _) in itertools.pairwise(spans):
        assert next_start - end >= end - start
