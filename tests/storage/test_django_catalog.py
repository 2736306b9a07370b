"""``DjangoCatalog`` on a real database: the lease, atomic flush commits, u64 ranges, expiry.

These tests run on the configured database (SQLite by default); ``test_postgres``
runs this module again on PostgreSQL. ``transactional_db``: the catalog runs its
ORM calls in its own threads, which must see committed data.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from django.db import IntegrityError, connection, connections

from storagecore.catalog.django import DjangoCatalog
from storagecore.models import Chunk, StreamLog, WriterLease
from storagecore.ports import ChunkRef, Fenced
from storagecore.sequencer import WriterState

pytestmark = pytest.mark.usefixtures("transactional_db")

U64_MAX = 2**64 - 1
HALF = 2**63
NOW_MS = 1_000_000


class FakeClock:
    def __init__(self, now_ms: int = NOW_MS) -> None:
        self.now = now_ms

    def now_ms(self) -> int:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


Scenario = Callable[[DjangoCatalog], Coroutine[Any, Any, Any]]


@pytest.fixture
def run(clock: FakeClock) -> Callable[[Scenario], Any]:
    """Runs ``scenario(catalog)`` on a fresh event loop, closing the catalog afterwards."""

    def runner(scenario: Scenario) -> Any:
        async def main() -> Any:
            catalog = DjangoCatalog(clock)
            try:
                return await scenario(catalog)
            finally:
                await catalog.close()

        return asyncio.run(main())

    return runner


def chunk(
    stream_id: int,
    start: int,
    end: int,
    *,
    first_ts: int = 0,
    last_ts: int = 0,
    expires_at_ms: int | None = None,
    key: str = "segments/0000000000000001-0000000000000001.seg",
) -> ChunkRef:
    return ChunkRef(
        stream_id=stream_id,
        start_seq=start,
        end_seq=end,
        first_ts=first_ts,
        last_ts=last_ts,
        metered_bytes=(end - start) * 10 % 1_000_000,
        expires_at_ms=expires_at_ms,
        segment_key=key,
        offset=start % 1000,
        length=42,
    )


def test_runs_on_the_expected_database() -> None:
    """``test_postgres`` sets the vendor it expects, so a fallback to SQLite cannot pass."""
    assert connection.vendor == os.environ.get("S2_EXPECT_DB_VENDOR", connection.vendor)


def test_acquire_epoch_increments_across_catalogs(run: Any) -> None:
    async def scenario(catalog: DjangoCatalog) -> list[int]:
        other = DjangoCatalog()  # a second server on the same database
        try:
            return [
                await catalog.acquire_epoch(),
                await catalog.acquire_epoch(),
                await other.acquire_epoch(),
                await catalog.acquire_epoch(),
            ]
        finally:
            await other.close()

    assert run(scenario) == [1, 2, 3, 4]
    assert WriterLease.objects.get().epoch == 4


def test_concurrent_acquires_get_distinct_epochs(run: Any) -> None:
    if connection.vendor == "sqlite" and connection.is_in_memory_db():
        pytest.skip(
            "the in-memory SQLite test database (shared cache) fails concurrent writers with "
            "'table is locked' instead of waiting; this runs on PostgreSQL (test_postgres)"
        )

    async def scenario(catalog: DjangoCatalog) -> list[int]:
        others = [DjangoCatalog() for _ in range(3)]
        try:
            results = await asyncio.gather(
                *(c.acquire_epoch() for c in [catalog, *others] for _ in range(5))
            )
        finally:
            for other in others:
                await other.close()
        return sorted(results)

    assert run(scenario) == list(range(1, 21))


def test_a_fenced_commit_raises_and_writes_nothing(run: Any) -> None:
    async def scenario(catalog: DjangoCatalog) -> None:
        old = await catalog.acquire_epoch()
        await catalog.commit_flush(old, [chunk(1, 0, 2)], {1: WriterState(2, 5, "", 0)})
        newer = DjangoCatalog()
        try:
            new = await newer.acquire_epoch()
            assert new == old + 1
            with pytest.raises(Fenced):
                await catalog.commit_flush(
                    old,
                    [chunk(1, 2, 4), chunk(2, 0, 1)],
                    {1: WriterState(4, 9, "t", 0), 2: WriterState(1, 9, "", 0)},
                )
            # An epoch from the future is not current either.
            with pytest.raises(Fenced):
                await catalog.commit_flush(new + 1, [chunk(2, 0, 1)], {2: WriterState(1)})
            assert await catalog.load_state(1) == WriterState(2, 5, "", 0)
            assert await catalog.load_state(2) == WriterState()
            assert [c.end_seq for c in await catalog.chunks_from(1, 0, 10)] == [2]
            assert await catalog.chunks_from(2, 0, 10) == []
            # The current holder still commits.
            await newer.commit_flush(new, [chunk(1, 2, 4)], {1: WriterState(4, 9, "t", 0)})
            assert await catalog.load_state(1) == WriterState(4, 9, "t", 0)
        finally:
            await newer.close()

    run(scenario)
    assert Chunk.objects.count() == 2
    assert StreamLog.objects.count() == 1


def test_commit_without_a_lease_is_fenced(run: Any) -> None:
    async def scenario(catalog: DjangoCatalog) -> None:
        with pytest.raises(Fenced):
            await catalog.commit_flush(1, [chunk(1, 0, 1)], {1: WriterState(1)})

    run(scenario)
    assert not Chunk.objects.exists()
    assert not StreamLog.objects.exists()


def test_a_failing_commit_is_atomic(run: Any) -> None:
    async def scenario(catalog: DjangoCatalog) -> None:
        epoch = await catalog.acquire_epoch()
        await catalog.commit_flush(epoch, [chunk(1, 0, 5)], {1: WriterState(5, 1, "", 0)})
        # The second row clashes with the stored one (same stream and start): nothing of
        # this flush may remain, neither the first row nor the new states.
        with pytest.raises(IntegrityError):
            await catalog.commit_flush(
                epoch,
                [chunk(2, 0, 3), chunk(1, 0, 7)],
                {1: WriterState(7, 2, "", 0), 2: WriterState(3, 2, "", 0)},
            )
        assert await catalog.load_state(1) == WriterState(5, 1, "", 0)
        assert await catalog.load_state(2) == WriterState()
        assert await catalog.chunks_from(2, 0, 10) == []
        # The writer thread is still usable after the failure.
        await catalog.commit_flush(epoch, [chunk(2, 0, 3)], {2: WriterState(3, 2, "", 0)})
        assert await catalog.load_state(2) == WriterState(3, 2, "", 0)

    run(scenario)


@pytest.mark.parametrize(
    "state",
    [
        WriterState(0, 0, "", 0),
        WriterState(1, 2, "token", 1),
        WriterState(HALF - 1, HALF - 1, "a" * 36, HALF - 1),
        WriterState(HALF, HALF, "x", HALF),
        WriterState(HALF + 1, HALF + 1, "y", HALF + 1),
        WriterState(U64_MAX, U64_MAX, "fence", U64_MAX),
    ],
    ids=["zero", "small", "below-2^63", "2^63", "above-2^63", "u64-max"],
)
def test_state_round_trips(run: Any, state: WriterState) -> None:
    async def scenario(catalog: DjangoCatalog) -> WriterState:
        epoch = await catalog.acquire_epoch()
        await catalog.commit_flush(epoch, [], {5: WriterState(3, 3, "old", 1)})
        await catalog.commit_flush(epoch, [], {5: state})  # an update of the existing row
        await catalog.commit_flush(epoch, [], {6: state})  # an insert
        assert await catalog.load_state(6) == state
        return await catalog.load_state(5)

    assert run(scenario) == state
    assert StreamLog.objects.get(stream_id=5).next_seq == state.next_seq


def test_chunks_round_trip_with_u64_extremes(run: Any) -> None:
    refs = [
        chunk(9, 0, 1, first_ts=0, last_ts=0, expires_at_ms=None),
        chunk(9, 1, HALF, first_ts=1, last_ts=HALF - 1, expires_at_ms=NOW_MS + 1),
        chunk(9, HALF, HALF + 1, first_ts=HALF, last_ts=HALF, key="k" * 512),
        chunk(9, HALF + 1, U64_MAX, first_ts=HALF + 1, last_ts=U64_MAX),
    ]

    async def scenario(catalog: DjangoCatalog) -> list[ChunkRef]:
        epoch = await catalog.acquire_epoch()
        await catalog.commit_flush(epoch, list(reversed(refs)), {9: WriterState(U64_MAX)})
        return await catalog.chunks_from(9, 0, 100)

    assert run(scenario) == refs


# Chunks of stream 3 whose sequence numbers and timestamps cross 2^63: a signed
# comparison, or an unshifted value, would sort the upper half before the lower.
CROSSING = [
    chunk(3, 0, 10, first_ts=0, last_ts=5),
    chunk(3, 10, HALF - 1, first_ts=5, last_ts=HALF - 1),
    chunk(3, HALF - 1, HALF + 1, first_ts=HALF - 1, last_ts=HALF),
    chunk(3, HALF + 1, HALF + 100, first_ts=HALF, last_ts=HALF + 7),
    chunk(3, HALF + 100, U64_MAX, first_ts=HALF + 7, last_ts=U64_MAX),
]


@pytest.mark.parametrize(
    ("seq_num", "limit", "expected"),
    [
        (0, 100, [0, 10, HALF - 1, HALF + 1, HALF + 100]),
        (0, 2, [0, 10]),
        (9, 100, [0, 10, HALF - 1, HALF + 1, HALF + 100]),
        (10, 100, [10, HALF - 1, HALF + 1, HALF + 100]),
        (HALF - 2, 100, [10, HALF - 1, HALF + 1, HALF + 100]),
        (HALF - 1, 100, [HALF - 1, HALF + 1, HALF + 100]),
        (HALF, 2, [HALF - 1, HALF + 1]),
        (HALF + 1, 100, [HALF + 1, HALF + 100]),
        (HALF + 100, 100, [HALF + 100]),
        (U64_MAX - 1, 100, [HALF + 100]),
        (U64_MAX, 100, []),
    ],
)
def test_chunks_from_orders_across_2_63(
    run: Any, seq_num: int, limit: int, expected: list[int]
) -> None:
    async def scenario(catalog: DjangoCatalog) -> list[int]:
        epoch = await catalog.acquire_epoch()
        # Committed out of order, in two flushes, beside another stream's rows.
        await catalog.commit_flush(epoch, [CROSSING[3], CROSSING[0], chunk(4, 0, 99)], {})
        await catalog.commit_flush(epoch, [CROSSING[4], CROSSING[2], CROSSING[1]], {})
        return [c.start_seq for c in await catalog.chunks_from(3, seq_num, limit)]

    assert run(scenario) == expected


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        (0, 0),
        (5, 0),
        (6, 10),
        (HALF - 1, 10),
        (HALF, HALF - 1),
        (HALF + 1, HALF + 1),
        (HALF + 7, HALF + 1),
        (HALF + 8, HALF + 100),
        (U64_MAX, HALF + 100),
    ],
)
def test_first_seq_at_or_after_across_2_63(run: Any, timestamp: int, expected: int) -> None:
    async def scenario(catalog: DjangoCatalog) -> int | None:
        epoch = await catalog.acquire_epoch()
        await catalog.commit_flush(epoch, list(reversed(CROSSING)), {})
        return await catalog.first_seq_at_or_after(3, timestamp)

    assert run(scenario) == expected


def test_first_seq_at_or_after_past_the_last_timestamp(run: Any) -> None:
    async def scenario(catalog: DjangoCatalog) -> tuple[int | None, int | None]:
        epoch = await catalog.acquire_epoch()
        await catalog.commit_flush(epoch, [chunk(1, 0, 5, first_ts=1, last_ts=HALF)], {})
        return (
            await catalog.first_seq_at_or_after(1, HALF + 1),
            await catalog.first_seq_at_or_after(2, 0),  # a stream without chunks
        )

    assert run(scenario) == (None, None)


def test_expired_chunks_are_hidden(run: Any, clock: FakeClock) -> None:
    async def scenario(catalog: DjangoCatalog) -> None:
        epoch = await catalog.acquire_epoch()
        await catalog.commit_flush(
            epoch,
            [
                chunk(1, 0, 10, last_ts=100, expires_at_ms=NOW_MS - 1),
                chunk(1, 10, 20, last_ts=200, expires_at_ms=NOW_MS),  # expires at "now"
                chunk(1, 20, 30, last_ts=300, expires_at_ms=NOW_MS + 1),
                chunk(1, 30, 40, last_ts=400, expires_at_ms=None),  # never expires
            ],
            {},
        )

        async def starts() -> list[int]:
            return [c.start_seq for c in await catalog.chunks_from(1, 0, 10)]

        assert await starts() == [20, 30]
        assert await catalog.first_seq_at_or_after(1, 0) == 20
        assert await catalog.first_seq_at_or_after(1, 150) == 20
        clock.now = NOW_MS + 1
        assert await starts() == [30]
        assert await catalog.first_seq_at_or_after(1, 0) == 30
        clock.now = 2**62
        assert await starts() == [30]
        clock.now = NOW_MS - 2  # expiry is fixed in the row, judged at read time
        assert await starts() == [0, 10, 20, 30]

    run(scenario)
    assert Chunk.objects.count() == 4  # hidden, not deleted


def test_catalog_calls_run_off_the_event_loop(run: Any) -> None:
    """Django forbids sync ORM calls on a running loop: a call made there would raise."""

    async def scenario(catalog: DjangoCatalog) -> WriterState:
        epoch = await catalog.acquire_epoch()
        await catalog.commit_flush(epoch, [chunk(1, 0, 1)], {1: WriterState(1, 1, "", 0)})
        results = await asyncio.gather(*(catalog.load_state(1) for _ in range(20)))
        assert len(set(results)) == 1
        return results[0]

    assert run(scenario) == WriterState(1, 1, "", 0)


def test_close_closes_the_connection_of_every_thread(run: Any) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("counts server sessions: PostgreSQL only (runs in test_postgres)")

    def other_sessions() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return int(cursor.fetchone()[0])

    def other_sessions_from_another_thread() -> int:
        try:
            return other_sessions()
        finally:
            connections.close_all()

    async def scenario(catalog: DjangoCatalog) -> int:
        epoch = await catalog.acquire_epoch()
        await catalog.commit_flush(epoch, [], {1: WriterState(1)})
        # Start both reader threads, each with its own connection (the pool starts
        # threads lazily: two tasks held at a barrier need two threads).
        barrier = threading.Barrier(2)

        def read_in_a_second_thread() -> None:
            barrier.wait(timeout=5)
            StreamLog.objects.count()

        loop = asyncio.get_running_loop()
        readers = catalog._readers
        await asyncio.gather(
            *(loop.run_in_executor(readers, read_in_a_second_thread) for _ in range(2))
        )
        return await asyncio.to_thread(other_sessions_from_another_thread)

    before = other_sessions()  # also opens this thread's own session
    # Seen from a helper thread: the writer's, both readers' and this thread's sessions.
    assert run(scenario) == before + 4
    # A closed session leaves pg_stat_activity when its backend has exited: soon after.
    deadline = time.monotonic() + 5
    while other_sessions() != before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert other_sessions() == before
