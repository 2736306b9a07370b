"""Compaction on the Django catalog: small runs of a stream become one block, the index
switches atomically, readers see no gap or duplicate, old segments are collected."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from storagecore.compaction import CompactionSettings
from storagecore.streamer import StreamSettings
from streams import maintenance
from tests.storage.lifecycle_support import (
    FakeClock,
    Log,
    db,
    garbage_keys,
    log_bytes,
    rows_bytes,
    run,
)

pytestmark = [pytest.mark.usefixtures("transactional_db"), pytest.mark.timeout(60)]

SMALL = CompactionSettings(target_bytes=4096, expiry_slack_ms=1000, tail_runs_min=4)


def test_small_runs_are_merged_and_reads_are_unchanged() -> None:
    clock = FakeClock()

    async def scenario() -> None:
        log = Log(clock, compaction=SMALL)
        await log.start()
        try:
            for i in range(40):
                await log.append(1, f"record-{i:03}".encode() * 4)
            await log.append(2, b"other")
            expected = await log.read(1)
            assert len(expected) == 40 and len(await log.rows(1)) == 40
            await log.lifecycle.compaction_pass()
            rows = await log.rows(1)
            assert len(rows) < 10
            # Contiguous, and covering exactly the same sequence numbers.
            assert rows[0][0] == 0 and rows[-1][1] == 40
            assert all(a[1] == b[0] for a, b in itertools.pairwise(rows))
            assert await log.read(1) == expected
            assert await db(log_bytes, 1) == await db(rows_bytes, 1)
            # The old segments are garbage; after the grace period only live ones remain.
            assert len(await db(garbage_keys)) == 40
            clock.advance(log.grace_s)
            await log.lifecycle.gc_pass()
            live = {key for _, _, key in await log.rows(1)} | {k for _, _, k in await log.rows(2)}
            assert await log.segment_keys() == live
            assert await log.read(1) == expected
            assert [b for _, b in await log.read(2)] == [b"other"]
            # A second pass finds nothing more to do.
            compacted = log.lifecycle.stats.groups_compacted
            await log.lifecycle.compaction_pass()
            assert log.lifecycle.stats.groups_compacted == compacted
        finally:
            await log.stop()

    run(scenario)


def test_stale_index_rows_after_gc_are_read_again() -> None:
    clock = FakeClock()

    async def scenario() -> None:
        log = Log(clock, compaction=SMALL, grace_s=0.0)
        await log.start()
        try:
            for i in range(8):
                await log.append(1, f"r{i}".encode())
            stale = await log.engine.catalog.chunks_from(1, 0, 100)
            await log.lifecycle.compaction_pass()
            await log.lifecycle.gc_pass()
            reader = log.engine.reader
            reader._index_rows[1] = stale  # rows fetched before the switch
            reader.cache = type(reader.cache)()
            assert [b for _, b in await log.read(1, page=100)] == [
                f"r{i}".encode() for i in range(8)
            ]
        finally:
            await log.stop()

    run(scenario)


def test_rows_with_far_apart_expiry_are_not_merged() -> None:
    clock = FakeClock()

    async def scenario() -> None:
        log = Log(clock, compaction=SMALL)
        await log.start()
        short = StreamSettings(retention_age_s=100)
        try:
            for _ in range(4):
                await log.append(1, b"early", settings=short)
            clock.advance(10)  # 10 s later: expiry 10 s apart, slack is 1 s
            for _ in range(4):
                await log.append(1, b"late", settings=short)
            await log.lifecycle.compaction_pass()
            rows = await log.rows(1)
            assert [(s, e) for s, e, _ in rows] == [(0, 4), (4, 8)]
            clock.advance(90)  # the early records expire, exactly on time
            assert [b for _, b in await log.read(1)] == [b"late"] * 4
        finally:
            await log.stop()

    run(scenario)


def test_a_group_changed_during_its_rewrite_is_abandoned() -> None:
    clock = FakeClock()

    async def scenario() -> None:
        log = Log(clock, compaction=SMALL)
        await log.start()
        try:
            for i in range(6):
                await log.append(1, f"r{i}".encode())
            rows, complete = await db(maintenance.rows_to_compact, 1, clock.now_ms(), 100)
            assert complete and len(rows) == 6
            # A trim removes some rows while the group is being rewritten.
            await log.trim(1, 3)
            await log.lifecycle.trim_pass()
            before = await log.segment_keys()
            await log.lifecycle._compact(rows)
            new_keys = await log.segment_keys() - before
            assert len(new_keys) == 1
            assert new_keys <= await db(garbage_keys)  # the rewrite is garbage
            assert [s for s, _ in await log.read(1)] == [3, 4, 5, 6]
            assert await db(log_bytes, 1) == await db(rows_bytes, 1)
        finally:
            await log.stop()

    run(scenario)


def test_compaction_while_appending_keeps_every_record_once() -> None:
    clock = FakeClock()

    async def scenario() -> None:
        log = Log(clock, compaction=SMALL)
        await log.start()
        try:
            for round_ in range(5):
                await asyncio.gather(*(log.append(1, f"{round_}-{i}".encode()) for i in range(10)))
                await log.lifecycle.compaction_pass()
            records = await log.read(1)
            assert [s for s, _ in records] == list(range(50))
            assert len({b for _, b in records}) == 50
        finally:
            await log.stop()

    run(scenario)
