"""Stream and basin deletion, re-creation of a deleted name, and delete-on-empty (spec §2.8,
§8), with the record log running on the Django catalog and a fake clock."""

from __future__ import annotations

import time

import pytest

from basins.models import Basin
from basins.services import do_create_basin, do_delete_basin
from storagecore.compaction import CompactionSettings
from storagecore.config import BasinConfig, OptionalStreamConfig, StreamReconfiguration
from storagecore.errors import StreamDeletionPending
from storagecore.models import Chunk, GarbageSegment, StreamLog
from storagecore.streamer import StreamSettings
from streams import maintenance
from streams.models import Stream
from streams.services import do_create_stream, do_delete_stream, do_reconfigure_stream
from tests.storage.lifecycle_support import INFINITE, FakeClock, Log, batch, db, run

pytestmark = [pytest.mark.usefixtures("transactional_db"), pytest.mark.timeout(60)]

BASIN = "lifecycle-basin"
PADDING_MS = 600_000


def _basin(name: str = BASIN) -> None:
    do_create_basin(name, BasinConfig(), None)


def _stream(name: str, config: dict[str, object] | None = None, basin: str = BASIN) -> int:
    created = do_create_stream(basin, name, OptionalStreamConfig.from_json(config), None)
    return int(created.stream.pk)


def _stream_row(stream_id: int) -> Stream | None:
    return Stream.objects.filter(pk=stream_id).first()


def _leftovers(stream_id: int) -> tuple[int, int, bool]:
    return (
        Chunk.objects.filter(stream_id=stream_id).count(),
        StreamLog.objects.filter(stream_id=stream_id).count(),
        Stream.objects.filter(pk=stream_id).exists(),
    )


def test_stream_deletion_removes_records_state_and_row_then_gc_the_segments() -> None:
    clock = FakeClock()

    async def scenario() -> None:
        await db(_basin)
        doomed = await db(_stream, "doomed")
        kept = await db(_stream, "kept")
        log = Log(clock)
        await log.start()
        try:
            for i in range(3):
                await log.append(doomed, f"d{i}".encode())
            await log.append(kept, b"k")
            await db(do_delete_stream, BASIN, "doomed")
            await log.lifecycle.deletion_pass()
            assert await db(_leftovers, doomed) == (0, 0, False)
            assert (await db(_stream_row, kept)) is not None
            clock.advance(log.grace_s)
            await log.lifecycle.gc_pass()
            keys = await log.segment_keys()
            # Three single-stream segments plus the terminal trim's are gone.
            assert keys == {k for _, _, k in await log.rows(kept)}
            assert [b for _, b in await log.read(kept)] == [b"k"]
        finally:
            await log.stop()

    run(scenario)


def test_appends_behind_the_terminal_trim_fail_with_deletion_pending() -> None:
    async def scenario() -> None:
        await db(_basin)
        stream_id = await db(_stream, "racing")
        log = Log(FakeClock())
        await log.start()
        try:
            await log.append(stream_id, b"before")
            await log.engine.delete_stream(stream_id)
            with pytest.raises(StreamDeletionPending):
                await log.engine.append(stream_id, batch(b"after"), INFINITE)
        finally:
            await log.stop()

    run(scenario)


def test_basin_deletion_removes_every_stream_then_the_basin() -> None:
    clock = FakeClock()

    async def scenario() -> None:
        await db(_basin)
        ids = [await db(_stream, f"s{i}") for i in range(3)]
        log = Log(clock)
        await log.start()
        try:
            for stream_id in ids:
                await log.append(stream_id, b"x", b"y")
            await db(_basin, "other-basin")
            await log.append(await db(_stream, "elsewhere", None, "other-basin"), b"z" * 500)
            # Storage per basin: the sum over its streams, from the stream rows alone.
            per_stream = [await db(maintenance.stream_storage, i) for i in ids]
            total = await db(maintenance.basin_storage, BASIN)
            assert total.stored_bytes == sum(s.stored_bytes for s in per_stream) > 0
            assert total.metered_bytes == 3 * (8 + 1 + 8 + 1)
            await db(do_delete_basin, BASIN)
            await log.lifecycle.deletion_pass()
            for stream_id in ids:
                assert await db(_leftovers, stream_id) == (0, 0, False)
            assert not await db(lambda: Basin.objects.filter(name=BASIN).exists())
            assert log.lifecycle.stats.basins_deleted == 1
            assert await db(maintenance.basin_storage, BASIN) == maintenance.Storage()
            clock.advance(log.grace_s)
            await log.lifecycle.gc_pass()
            assert len(await log.segment_keys()) == 1  # the other basin's
            assert await db(lambda: GarbageSegment.objects.count()) == 0
        finally:
            await log.stop()

    run(scenario)


def test_a_recreated_name_is_untouched_by_the_old_incarnations_work() -> None:
    clock = FakeClock()
    compaction = CompactionSettings(target_bytes=4096, expiry_slack_ms=1000, tail_runs_min=2)

    async def scenario() -> None:
        await db(_basin)
        old = await db(_stream, "reborn")
        log = Log(clock, compaction=compaction)
        await log.start()
        try:
            for i in range(5):
                await log.append(old, f"old-{i}".encode())
            await log.trim(old, 2)
            await db(do_delete_stream, BASIN, "reborn")
            await log.lifecycle.deletion_pass()
            new = await db(_stream, "reborn")
            assert new != old
            for i in range(5):
                await log.append(new, f"new-{i}".encode())
            # Work still queued for the old incarnation runs now.
            log.lifecycle.trim_requested(old)
            await log.lifecycle.trim_pass()
            await log.lifecycle.retention_pass()
            await log.lifecycle.compaction_pass()
            await log.lifecycle.deletion_pass()
            clock.advance(log.grace_s)
            await log.lifecycle.gc_pass()
            assert [b for _, b in await log.read(new)] == [f"new-{i}".encode() for i in range(5)]
            assert (await log.engine.tail(new)).seq_num == 5
            assert await db(_leftovers, old) == (0, 0, False)
        finally:
            await log.stop()

    run(scenario)


def _deadline(stream_id: int) -> int | None:
    row = Stream.objects.get(pk=stream_id)
    return None if row.empty_deadline_ms is None else int(row.empty_deadline_ms)


def _deleting(stream_id: int) -> bool:
    row = Stream.objects.filter(pk=stream_id).first()
    return row is None or row.deleted_at is not None


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def test_delete_on_empty_deadline_is_armed_as_section_8_computes_it() -> None:
    _basin()
    before = _now_ms()
    infinite = _stream(
        "inf", {"retention_policy": {"infinite": {}}, "delete_on_empty": {"min_age_secs": 60}}
    )
    aged = _stream(
        "aged", {"retention_policy": {"age": 3600}, "delete_on_empty": {"min_age_secs": 60}}
    )
    off = _stream("off", {"retention_policy": {"age": 3600}})
    after = _now_ms()
    deadline = _deadline(infinite)
    assert deadline is not None and before + 660_000 <= deadline <= after + 660_000
    deadline = _deadline(aged)
    assert deadline is not None and before + 4_260_000 <= deadline <= after + 4_260_000
    assert _deadline(off) is None
    # Switching the feature on (PATCH) arms it; switching it off disarms it.
    before = _now_ms()
    do_reconfigure_stream(
        BASIN, "off", StreamReconfiguration.from_json({"delete_on_empty": {"min_age_secs": 5}})
    )
    deadline = _deadline(off)
    assert deadline is not None and before + 4_205_000 <= deadline <= _now_ms() + 4_205_000
    # Changing min_age while enabled does not move the deadline.
    do_reconfigure_stream(
        BASIN, "off", StreamReconfiguration.from_json({"delete_on_empty": {"min_age_secs": 9}})
    )
    assert _deadline(off) == deadline
    do_reconfigure_stream(
        BASIN, "off", StreamReconfiguration.from_json({"delete_on_empty": {"min_age_secs": 0}})
    )
    assert _deadline(off) is None


def test_an_empty_stream_is_deleted_at_its_deadline_and_not_before() -> None:
    clock = FakeClock()

    async def scenario() -> None:
        await db(_basin)
        config = {"retention_policy": {"infinite": {}}, "delete_on_empty": {"min_age_secs": 60}}
        stream_id = await db(_stream, "empty", config)
        deadline = await db(_deadline, stream_id)
        assert deadline is not None
        log = Log(clock)
        await log.start()
        try:
            clock.now = deadline - 1
            await log.lifecycle.delete_on_empty_pass()
            assert not await db(_deleting, stream_id)
            clock.now = deadline
            await log.lifecycle.delete_on_empty_pass()
            assert await db(_deleting, stream_id)
            await log.lifecycle.deletion_pass()
            assert await db(_leftovers, stream_id) == (0, 0, False)
        finally:
            await log.stop()

    run(scenario)


def test_a_stream_with_records_is_kept_and_a_full_trim_rearms_the_deadline() -> None:
    clock = FakeClock()

    async def scenario() -> None:
        await db(_basin)
        config = {"retention_policy": {"infinite": {}}, "delete_on_empty": {"min_age_secs": 60}}
        stream_id = await db(_stream, "holder", config)
        deadline = await db(_deadline, stream_id)
        assert deadline is not None
        log = Log(clock)
        await log.start()
        try:
            await log.append(stream_id, b"keep me")
            clock.now = deadline
            await log.lifecycle.delete_on_empty_pass()
            assert not await db(_deleting, stream_id)
            assert await db(_deadline, stream_id) is None  # infinite retention: disarmed
            # A trim that leaves no records arms it again: now + 0 + 60 s + 600 s.
            await log.trim(stream_id, 2)
            await log.lifecycle.trim_pass()
            rearmed = await db(_deadline, stream_id)
            assert rearmed == clock.now + 660_000
            clock.now = rearmed
            await log.lifecycle.delete_on_empty_pass()
            assert await db(_deleting, stream_id)
        finally:
            await log.stop()

    run(scenario)


def test_recent_writes_rearm_the_deadline_with_age_retention() -> None:
    clock = FakeClock()

    async def scenario() -> None:
        await db(_basin)
        config = {"retention_policy": {"age": 100}, "delete_on_empty": {"min_age_secs": 10}}
        stream_id = await db(_stream, "busy", config)
        deadline = await db(_deadline, stream_id)
        assert deadline is not None
        log = Log(clock)
        await log.start()
        short = StreamSettings(retention_age_s=100)
        try:
            clock.now = deadline - 5_000  # a write newer than deadline - min_age
            await log.append(stream_id, b"late write", settings=short)
            written = clock.now
            clock.now = deadline
            # Appends in flight: the stream is left for the next pass.
            streamer = log.engine.streamer(stream_id)
            streamer._inflight += 1
            await log.lifecycle.delete_on_empty_pass()
            assert await db(_deadline, stream_id) == deadline
            streamer._inflight -= 1
            await log.lifecycle.delete_on_empty_pass()
            assert not await db(_deleting, stream_id)
            rearmed = await db(_deadline, stream_id)
            assert rearmed == written + (100 + 10) * 1000 + PADDING_MS
            clock.now = rearmed  # the record expired long ago: the stream is empty
            await log.lifecycle.delete_on_empty_pass()
            assert await db(_deleting, stream_id)
        finally:
            await log.stop()

    run(scenario)
