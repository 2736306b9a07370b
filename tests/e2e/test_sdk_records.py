"""Records end to end: the official Python SDK's unary calls, and raw protobuf/JSON over HTTP.

The first part drives append, read and check-tail through s2-sdk (HTTP/2 prior knowledge,
protobuf bodies). The second part speaks the wire format directly with httpx, over both
HTTP/1.1 and h2c, and compares protobuf responses byte for byte with what the reference
server's canonical proto3 encoding produces. Sessions (S2S, SSE) are out of scope here.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any, TypeVar

import httpx
import pytest
import zstandard
from s2_sdk import (
    S2,
    AppendInput,
    BasinConfig,
    CommandRecord,
    Compression,
    Endpoints,
    FencingTokenMismatchError,
    ReadLimit,
    ReadUnwrittenError,
    Record,
    Retry,
    S2ServerError,
    S2Stream,
    SeqNum,
    SeqNumMismatchError,
    StreamConfig,
    StreamPosition,
    TailOffset,
    Timeout,
    Timestamp,
    Timestamping,
    TimestampingMode,
    metered_bytes,
)

from streams.protocol import messages

pytestmark = pytest.mark.e2e

T = TypeVar("T")
MIB = 1024 * 1024


def now_ms() -> int:
    return int(time.time() * 1000)


def run(
    url: str, body: Callable[[S2], Awaitable[T]], compression: Compression = Compression.NONE
) -> T:
    """Run ``body`` with an SDK client for ``url``; no retries, so every failure shows."""

    async def main() -> T:
        async with S2(
            "ignored",
            endpoints=Endpoints(account=url, basin=url),
            timeout=Timeout(request=timedelta(seconds=30)),
            retry=Retry(max_attempts=1),
            compression=compression,
        ) as s2:
            return await body(s2)

    return asyncio.run(main())


async def new_stream(
    s2: S2,
    basin_name: str,
    stream_name: str = "records",
    config: StreamConfig | None = None,
) -> S2Stream:
    await s2.create_basin(basin_name)
    basin = s2.basin(basin_name)
    await basin.create_stream(stream_name, config=config)
    return basin.stream(stream_name)


async def expect_error(awaitable: Awaitable[object], status: int, code: str) -> S2ServerError:
    with pytest.raises(S2ServerError) as caught:
        await awaitable
    assert (caught.value.status_code, caught.value.code) == (status, code)
    return caught.value


def bodies(records: list[Any]) -> list[bytes]:
    return [record.body for record in records]


# The SDK: append.


def test_append_plain_records_and_read_them_back(server_url: str, unique: str) -> None:
    async def body(s2: S2) -> None:
        stream = await new_stream(s2, f"sdk-rec-plain-{unique}")
        assert await stream.check_tail() == StreamPosition(0, 0)

        before = now_ms()
        ack = await stream.append(
            AppendInput(records=[Record(body=b"one"), Record(body=b"two"), Record(body=b"three")])
        )
        after = now_ms()
        assert (ack.start.seq_num, ack.end.seq_num) == (0, 3)
        assert before <= ack.start.timestamp <= ack.end.timestamp <= after
        assert ack.tail == ack.end

        second = await stream.append(AppendInput(records=[Record(body=b"four")]))
        assert second.start.seq_num == 3
        assert second.start.timestamp >= ack.end.timestamp
        assert second.end == second.tail == StreamPosition(4, second.start.timestamp)
        assert await stream.check_tail() == second.tail

        batch = await stream.read(start=SeqNum(0))
        assert bodies(batch.records) == [b"one", b"two", b"three", b"four"]
        assert [r.seq_num for r in batch.records] == [0, 1, 2, 3]
        assert [r.headers for r in batch.records] == [[], [], [], []]
        assert [r.timestamp for r in batch.records] == [ack.start.timestamp] * 3 + [
            second.start.timestamp
        ]
        # Records that were already durable come without a tail.
        assert batch.tail is None

    run(server_url, body)


def test_headers_and_binary_bodies_round_trip(server_url: str, unique: str) -> None:
    records = [
        Record(body=bytes(range(256)), headers=[(b"content-type", b"application/octet-stream")]),
        Record(body=b"", headers=[(b"k", b""), (b"k", b"dup"), (b"\x00\xff", b"\xfe\x80")]),
        Record(body=b"\xc3\x28 not UTF-8 \x00"),
        Record(body=b"x" * 5000, headers=[(b"h" * 300, b"v" * 300)]),
        Record(body=b""),
    ]

    async def body(s2: S2) -> None:
        stream = await new_stream(s2, f"sdk-rec-binary-{unique}")
        ack = await stream.append(AppendInput(records=records))
        assert ack.end.seq_num == len(records)

        batch = await stream.read(start=SeqNum(0))
        assert [(r.headers, r.body) for r in batch.records] == [
            (r.headers, r.body) for r in records
        ]
        assert metered_bytes(batch.records) == metered_bytes(records)
        assert not any(r.is_command_record() for r in batch.records)

    run(server_url, body)


def test_match_seq_num(server_url: str, unique: str) -> None:
    async def body(s2: S2) -> None:
        stream = await new_stream(s2, f"sdk-rec-match-{unique}")
        ack = await stream.append(
            AppendInput(records=[Record(body=b"a"), Record(body=b"b")], match_seq_num=0)
        )
        assert ack.end.seq_num == 2

        with pytest.raises(SeqNumMismatchError) as caught:
            await stream.append(AppendInput(records=[Record(body=b"c")], match_seq_num=0))
        assert caught.value.status_code == 412
        assert caught.value.expected_seq_num == 2
        with pytest.raises(SeqNumMismatchError) as caught:
            await stream.append(AppendInput(records=[Record(body=b"c")], match_seq_num=3))
        assert caught.value.expected_seq_num == 2
        # A failed condition writes nothing.
        assert await stream.check_tail() == ack.tail

        ack = await stream.append(AppendInput(records=[Record(body=b"c")], match_seq_num=2))
        assert (ack.start.seq_num, ack.end.seq_num) == (2, 3)
        assert bodies((await stream.read(start=SeqNum(0))).records) == [b"a", b"b", b"c"]

    run(server_url, body)


def test_fencing_tokens_and_fence_commands(server_url: str, unique: str) -> None:
    async def body(s2: S2) -> None:
        stream = await new_stream(s2, f"sdk-rec-fence-{unique}")
        # A new stream's token is the empty string.
        await stream.append(AppendInput(records=[Record(body=b"d0")], fencing_token=""))
        with pytest.raises(FencingTokenMismatchError) as caught:
            await stream.append(AppendInput(records=[Record(body=b"x")], fencing_token="nope"))
        assert (caught.value.status_code, caught.value.expected_fencing_token) == (412, "")

        fenced = await stream.append(AppendInput(records=[CommandRecord.fence("writer-1")]))
        assert fenced.start.seq_num == 1
        tail = await stream.check_tail()
        with pytest.raises(FencingTokenMismatchError) as caught:
            await stream.append(AppendInput(records=[Record(body=b"x")], fencing_token="writer-0"))
        assert caught.value.expected_fencing_token == "writer-1"
        # The token is checked before match_seq_num.
        with pytest.raises(FencingTokenMismatchError):
            await stream.append(
                AppendInput(records=[Record(body=b"x")], fencing_token="", match_seq_num=99)
            )
        assert await stream.check_tail() == tail

        # Appends without a token are not fenced out; with the right one they pass.
        await stream.append(AppendInput(records=[Record(body=b"d1")]))
        await stream.append(AppendInput(records=[Record(body=b"d2")], fencing_token="writer-1"))
        # An empty fence clears the token.
        await stream.append(
            AppendInput(records=[CommandRecord.fence("")], fencing_token="writer-1")
        )
        await stream.append(AppendInput(records=[Record(body=b"d3")], fencing_token=""))

        batch = await stream.read(start=SeqNum(0))
        assert [(r.headers, r.body) for r in batch.records] == [
            ([], b"d0"),
            ([(b"", b"fence")], b"writer-1"),
            ([], b"d1"),
            ([], b"d2"),
            ([(b"", b"fence")], b""),
            ([], b"d3"),
        ]
        assert [r.is_command_record() for r in batch.records] == [
            False,
            True,
            False,
            False,
            True,
            False,
        ]
        data_only = await stream.read(start=SeqNum(0), ignore_command_records=True)
        assert bodies(data_only.records) == [b"d0", b"d1", b"d2", b"d3"]

    run(server_url, body)


async def read_until_first_is(stream: S2Stream, seq_num: int | None) -> list[Any]:
    """Trimming deletes asynchronously: poll until the first record read from 0 is ``seq_num``
    (``None``: until nothing is left)."""
    deadline = time.monotonic() + 5
    while True:
        records = (await stream.read(start=SeqNum(0))).records
        first = records[0].seq_num if records else None
        if first == seq_num:
            return records
        assert time.monotonic() < deadline, f"first record is still {first}"
        await asyncio.sleep(0.05)


def test_trim_commands(server_url: str, unique: str) -> None:
    async def body(s2: S2) -> None:
        stream = await new_stream(s2, f"sdk-rec-trim-{unique}")
        await stream.append(AppendInput(records=[Record(body=b"%d" % i) for i in range(10)]))
        ack = await stream.append(AppendInput(records=[CommandRecord.trim(4)]))
        assert (ack.start.seq_num, ack.end.seq_num) == (10, 11)

        records = await read_until_first_is(stream, 4)
        assert [r.seq_num for r in records] == list(range(4, 11))
        assert (records[-1].headers, records[-1].body) == ([(b"", b"trim")], (4).to_bytes(8, "big"))
        # Trimming never moves the tail, and reading below the trim point is no error.
        assert await stream.check_tail() == ack.tail
        assert [r.seq_num for r in (await stream.read(start=SeqNum(2))).records][:1] == [4]

        # A smaller trim point is ignored, but the command is still a record.
        await stream.append(AppendInput(records=[CommandRecord.trim(1)]))
        assert (await stream.read(start=SeqNum(0))).records[0].seq_num == 4

        # Trimming "to the future" trims up to and including the trim record (seq 12).
        future = await stream.append(AppendInput(records=[CommandRecord.trim(1000)]))
        assert future.start.seq_num == 12
        assert await read_until_first_is(stream, None) == []
        assert await stream.check_tail() == future.tail
        await stream.append(AppendInput(records=[Record(body=b"after")]))
        records = (await stream.read(start=SeqNum(0))).records
        assert [(r.seq_num, r.body) for r in records] == [(13, b"after")]

    run(server_url, body)


def test_timestamps(server_url: str, unique: str) -> None:
    async def body(s2: S2) -> None:
        await s2.create_basin(f"sdk-rec-ts-{unique}")
        basin = s2.basin(f"sdk-rec-ts-{unique}")

        await basin.create_stream("prefer")
        prefer = basin.stream("prefer")
        far_future = now_ms() + 3_600_000
        before = now_ms()
        await prefer.append(
            AppendInput(
                records=[
                    Record(body=b"a", timestamp=1000),
                    Record(body=b"b", timestamp=500),  # raised to the previous timestamp
                    Record(body=b"c"),  # arrival time
                    Record(body=b"d", timestamp=far_future),  # capped at arrival time
                ]
            )
        )
        after = now_ms()
        stamps = [r.timestamp for r in (await prefer.read(start=SeqNum(0))).records]
        assert stamps[:2] == [1000, 1000]
        assert before <= stamps[2] <= stamps[3] <= after

        await basin.create_stream(
            "uncapped", config=StreamConfig(timestamping=Timestamping(uncapped=True))
        )
        uncapped = basin.stream("uncapped")
        await uncapped.append(AppendInput(records=[Record(body=b"x", timestamp=far_future)]))
        assert (await uncapped.read(start=SeqNum(0))).records[0].timestamp == far_future

        await basin.create_stream(
            "require",
            config=StreamConfig(timestamping=Timestamping(mode=TimestampingMode.CLIENT_REQUIRE)),
        )
        require = basin.stream("require")
        error = await expect_error(
            require.append(
                AppendInput(records=[Record(body=b"x", timestamp=7), Record(body=b"y")])
            ),
            422,
            "invalid",
        )
        assert error.message == "record timestamp was required but was missing"
        assert await require.check_tail() == StreamPosition(0, 0)
        ack = await require.append(AppendInput(records=[Record(body=b"x", timestamp=7)]))
        assert ack.end == StreamPosition(1, 7)

        await basin.create_stream(
            "arrival",
            config=StreamConfig(timestamping=Timestamping(mode=TimestampingMode.ARRIVAL)),
        )
        arrival = basin.stream("arrival")
        before = now_ms()
        ack = await arrival.append(AppendInput(records=[Record(body=b"x", timestamp=7)]))
        assert before <= ack.start.timestamp <= now_ms()

    run(server_url, body)


def test_invalid_appends_are_rejected_whole(server_url: str, unique: str) -> None:
    async def body(s2: S2) -> None:
        stream = await new_stream(s2, f"sdk-rec-invalid-{unique}")
        cases = [
            ([Record(body=b"", headers=[(b"", b"bogus")])], "unknown command"),
            (
                [Record(body=b"ok"), Record(body=b"", headers=[(b"", b"fence"), (b"a", b"b")])],
                "invalid header: empty name",
            ),
            (
                [Record(body=b"t" * 37, headers=[(b"", b"fence")])],
                "invalid `fence` command: fencing token must not exceed 36 bytes in length",
            ),
            (
                [Record(body=b"\x00" * 7, headers=[(b"", b"trim")])],
                "invalid `trim` command: earliest sequence number to trim to was 7 bytes, "
                "must be 8",
            ),
        ]
        for records, message in cases:
            error = await expect_error(stream.append(AppendInput(records=records)), 422, "invalid")
            assert error.message == message
        # Over protobuf a too-long fencing token is a validation error, not a parse error.
        await expect_error(
            stream.append(AppendInput(records=[Record(body=b"x")], fencing_token="t" * 37)),
            422,
            "invalid",
        )
        assert await stream.check_tail() == StreamPosition(0, 0)

    run(server_url, body)


# The SDK: read.


async def stream_with_ten_records(s2: S2, basin_name: str) -> S2Stream:
    """Records r00..r09 with timestamps 10, 20, .., 100; each meters 8 + 3 = 11 bytes."""
    stream = await new_stream(s2, basin_name)
    await stream.append(
        AppendInput(records=[Record(body=b"r%02d" % i, timestamp=10 * (i + 1)) for i in range(10)])
    )
    return stream


def seqs(batch: Any) -> list[int]:
    return [r.seq_num for r in batch.records]


def test_read_starts(server_url: str, unique: str) -> None:
    async def body(s2: S2) -> None:
        stream = await stream_with_ten_records(s2, f"sdk-rec-starts-{unique}")
        assert seqs(await stream.read(start=SeqNum(3))) == list(range(3, 10))
        assert seqs(await stream.read(start=SeqNum(9))) == [9]
        assert seqs(await stream.read(start=Timestamp(0))) == list(range(10))
        assert seqs(await stream.read(start=Timestamp(40))) == list(range(3, 10))
        assert seqs(await stream.read(start=Timestamp(35))) == list(range(3, 10))
        assert seqs(await stream.read(start=Timestamp(100))) == [9]
        assert seqs(await stream.read(start=TailOffset(3))) == [7, 8, 9]
        assert seqs(await stream.read(start=TailOffset(100))) == list(range(10))

        tail = StreamPosition(10, 100)
        for start in (SeqNum(10), SeqNum(11), TailOffset(0), Timestamp(101)):
            with pytest.raises(ReadUnwrittenError) as caught:
                await stream.read(start=start)
            assert (caught.value.status_code, caught.value.tail) == (416, tail)
            # Clamping to the tail does not help a read that may not wait.
            with pytest.raises(ReadUnwrittenError):
                await stream.read(start=start, clamp_to_tail=True)
        # A start beyond the tail without clamping fails even with a wait.
        with pytest.raises(ReadUnwrittenError):
            await stream.read(start=SeqNum(11), wait=1)

    run(server_url, body)


def test_read_limits_and_until(server_url: str, unique: str) -> None:
    async def body(s2: S2) -> None:
        stream = await stream_with_ten_records(s2, f"sdk-rec-limits-{unique}")
        start = SeqNum(0)
        assert seqs(await stream.read(start=start, limit=ReadLimit(count=4))) == [0, 1, 2, 3]
        assert seqs(await stream.read(start=start, limit=ReadLimit(count=10))) == list(range(10))
        assert seqs(await stream.read(start=start, limit=ReadLimit(count=50))) == list(range(10))
        assert seqs(await stream.read(start=start, limit=ReadLimit(count=0))) == []
        assert seqs(await stream.read(start=start, limit=ReadLimit(bytes=33))) == [0, 1, 2]
        assert seqs(await stream.read(start=start, limit=ReadLimit(bytes=32))) == [0, 1]
        assert seqs(await stream.read(start=start, limit=ReadLimit(bytes=10))) == []
        assert seqs(await stream.read(start=start, limit=ReadLimit(bytes=0))) == []
        both = ReadLimit(count=5, bytes=22)
        assert seqs(await stream.read(start=SeqNum(6), limit=both)) == [6, 7]
        assert seqs(await stream.read(start=Timestamp(55), limit=ReadLimit(count=2))) == [5, 6]

        assert seqs(await stream.read(start=start, until_timestamp=50)) == [0, 1, 2, 3]
        assert seqs(await stream.read(start=start, until_timestamp=10)) == []
        assert seqs(await stream.read(start=Timestamp(30), until_timestamp=60)) == [2, 3, 4]
        error = await expect_error(
            stream.read(start=Timestamp(30), until_timestamp=30), 422, "invalid"
        )
        assert error.message == "start `timestamp` exceeds or equal to `until`"
        # A limit of zero on a read from the tail is still a read from the tail.
        with pytest.raises(ReadUnwrittenError):
            await stream.read(start=SeqNum(10), limit=ReadLimit(count=0))

    run(server_url, body)


def test_unary_reads_are_clamped_to_one_batch(server_url: str, unique: str) -> None:
    async def body(s2: S2) -> None:
        many = await new_stream(s2, f"sdk-rec-clamp-{unique}")
        for first in (0, 1000):
            await many.append(
                AppendInput(records=[Record(body=b"%d" % i) for i in range(first, first + 1000)])
            )
        assert seqs(await many.read(start=SeqNum(0))) == list(range(1000))
        assert len((await many.read(start=SeqNum(0), limit=ReadLimit(count=5000))).records) == 1000
        assert seqs(await many.read(start=SeqNum(1500), limit=ReadLimit(count=5000))) == list(
            range(1500, 2000)
        )

        big = s2.basin(f"sdk-rec-clamp-{unique}").stream("big")
        await s2.basin(f"sdk-rec-clamp-{unique}").create_stream("big")
        payload = bytes(range(256)) * 1600  # 409,600 bytes: two fit in 1 MiB, three do not
        for _ in range(3):
            await big.append(AppendInput(records=[Record(body=payload)]))
        for limit in (None, ReadLimit(bytes=10 * MIB), ReadLimit(count=3, bytes=2 * MIB)):
            batch = await big.read(start=SeqNum(0), limit=limit)
            assert seqs(batch) == [0, 1]
            assert bodies(batch.records) == [payload, payload]
        assert seqs(await big.read(start=SeqNum(1))) == [1, 2]

    run(server_url, body)


async def append_later(stream: S2Stream, records: list[Record], delay_s: float = 0.5) -> Any:
    await asyncio.sleep(delay_s)
    return await stream.append(AppendInput(records=records))


def test_long_poll_reads(server_url: str, unique: str) -> None:
    async def body(s2: S2) -> None:
        stream = await new_stream(s2, f"sdk-rec-wait-{unique}")
        await stream.append(AppendInput(records=[Record(body=b"old")]))

        # Existing records come back at once, without a tail.
        started = time.monotonic()
        batch = await stream.read(start=SeqNum(0), wait=10)
        assert (bodies(batch.records), batch.tail) == ([b"old"], None)
        assert time.monotonic() - started < 5

        # At the tail the read waits for the next append and returns it with the tail.
        started = time.monotonic()
        read, ack = await asyncio.gather(
            stream.read(start=SeqNum(1), wait=10),
            append_later(stream, [Record(body=b"new-1"), Record(body=b"new-2")]),
        )
        assert time.monotonic() - started < 5
        assert bodies(read.records) == [b"new-1", b"new-2"]
        assert [r.seq_num for r in read.records] == [1, 2]
        assert read.tail == ack.tail == ack.end

        # Clamped to the tail, likewise.
        read, ack = await asyncio.gather(
            stream.read(start=SeqNum(50), clamp_to_tail=True, wait=10),
            append_later(stream, [Record(body=b"new-3")]),
        )
        assert (bodies(read.records), read.tail) == ([b"new-3"], ack.tail)

        # Nothing arrives: an empty batch once the wait is over.
        started = time.monotonic()
        batch = await stream.read(start=TailOffset(0), wait=1)
        assert (batch.records, batch.tail) == ([], None)
        assert 0.9 <= time.monotonic() - started < 5

        # A new record beyond the limit or `until` ends the read at once, with nothing.
        reads = [
            lambda: stream.read(start=TailOffset(0), wait=10, limit=ReadLimit(bytes=10)),
            lambda: stream.read(start=TailOffset(0), wait=10, until_timestamp=1),
        ]
        for make_read in reads:
            started = time.monotonic()
            read, _ = await asyncio.gather(
                make_read(), append_later(stream, [Record(body=b"too-big-to-fit")])
            )
            assert (read.records, read.tail) == ([], None)
            assert time.monotonic() - started < 5

    run(server_url, body)


# The SDK: missing streams and auto-creation.


def test_missing_basin_and_stream(server_url: str, unique: str) -> None:
    async def body(s2: S2) -> None:
        nowhere = s2.basin(f"sdk-rec-nobasin-{unique}").stream("s")
        await expect_error(nowhere.check_tail(), 404, "basin_not_found")
        await expect_error(nowhere.read(start=SeqNum(0)), 404, "basin_not_found")
        await expect_error(
            nowhere.append(AppendInput(records=[Record(body=b"x")])), 404, "basin_not_found"
        )

        basin_name = f"sdk-rec-nostream-{unique}"
        await s2.create_basin(basin_name)
        basin = s2.basin(basin_name)
        missing = basin.stream("missing")
        error = await expect_error(missing.check_tail(), 404, "stream_not_found")
        assert error.message == f"stream `missing` in basin `{basin_name}` not found"
        await expect_error(missing.read(start=SeqNum(0)), 404, "stream_not_found")
        await expect_error(missing.read(start=SeqNum(0), wait=1), 404, "stream_not_found")
        await expect_error(
            missing.append(AppendInput(records=[Record(body=b"x")])), 404, "stream_not_found"
        )
        assert (await basin.list_streams()).items == []

    run(server_url, body)


def test_create_stream_on_append(server_url: str, unique: str) -> None:
    basin_name = f"sdk-rec-onappend-{unique}"

    async def body(s2: S2) -> None:
        await s2.create_basin(
            basin_name,
            config=BasinConfig(
                create_stream_on_append=True,
                default_stream_config=StreamConfig(
                    timestamping=Timestamping(mode=TimestampingMode.ARRIVAL)
                ),
            ),
        )
        basin = s2.basin(basin_name)

        # Invalid input is rejected before the stream is opened, so nothing is created.
        await expect_error(
            basin.stream("auto").append(
                AppendInput(records=[Record(body=b"", headers=[(b"", b"nope")])])
            ),
            422,
            "invalid",
        )
        await expect_error(basin.get_stream_config("auto"), 404, "stream_not_found")

        before = now_ms()
        ack = await basin.stream("auto").append(
            AppendInput(records=[Record(body=b"first", timestamp=5)])
        )
        assert ack.start.seq_num == 0
        # Created with the basin's defaults: arrival timestamps.
        assert ack.start.timestamp >= before
        assert [s.name for s in (await basin.list_streams()).items] == ["auto"]
        config = await basin.get_stream_config("auto")
        assert config.timestamping is not None
        assert config.timestamping.mode == TimestampingMode.ARRIVAL
        assert bodies((await basin.stream("auto").read(start=SeqNum(0))).records) == [b"first"]

        # Reading and checking the tail do not create streams here.
        await expect_error(basin.stream("other").check_tail(), 404, "stream_not_found")
        await expect_error(basin.stream("other").read(start=SeqNum(0)), 404, "stream_not_found")

        # The stream stays created even when the append that created it fails its condition.
        with pytest.raises(SeqNumMismatchError):
            await basin.stream("conditional").append(
                AppendInput(records=[Record(body=b"x")], match_seq_num=5)
            )
        assert await basin.stream("conditional").check_tail() == StreamPosition(0, 0)

    run(server_url, body)


def test_create_stream_on_read(server_url: str, unique: str) -> None:
    basin_name = f"sdk-rec-onread-{unique}"

    async def body(s2: S2) -> None:
        await s2.create_basin(basin_name, config=BasinConfig(create_stream_on_read=True))
        basin = s2.basin(basin_name)

        assert await basin.stream("by-tail").check_tail() == StreamPosition(0, 0)
        # The 416 comes after the stream was opened, hence created.
        with pytest.raises(ReadUnwrittenError) as caught:
            await basin.stream("by-read").read(start=SeqNum(0))
        assert caught.value.tail == StreamPosition(0, 0)
        batch = await basin.stream("by-wait").read(start=SeqNum(0), wait=1)
        assert (batch.records, batch.tail) == ([], None)
        names = [s.name for s in (await basin.list_streams()).items]
        assert names == ["by-read", "by-tail", "by-wait"]

        # Appending does not create streams here.
        await expect_error(
            basin.stream("by-append").append(AppendInput(records=[Record(body=b"x")])),
            404,
            "stream_not_found",
        )
        await basin.stream("by-tail").append(AppendInput(records=[Record(body=b"x")]))
        assert (await basin.stream("by-tail").check_tail()).seq_num == 1

    run(server_url, body)


@pytest.mark.parametrize("compression", [Compression.GZIP, Compression.ZSTD], ids=str)
def test_compressed_sdk_client(server_url: str, unique: str, compression: Compression) -> None:
    """Compressed request bodies (``Content-Encoding``) and compressed responses."""
    records = [
        Record(body=(b"line %04d of a compressible body; " % i) * 40, headers=[(b"n", b"%d" % i)])
        for i in range(200)
    ]

    async def body(s2: S2) -> None:
        stream = await new_stream(s2, f"sdk-rec-{compression.value}-{unique}")
        ack = await stream.append(AppendInput(records=records, match_seq_num=0))
        assert ack.end.seq_num == 200
        assert await stream.check_tail() == ack.tail
        batch = await stream.read(start=SeqNum(0))
        assert [(r.headers, r.body) for r in batch.records] == [
            (r.headers, r.body) for r in records
        ]
        with pytest.raises(ReadUnwrittenError):
            await stream.read(start=SeqNum(201))
        few = await stream.read(start=SeqNum(10), limit=ReadLimit(count=1))
        assert bodies(few.records) == [records[10].body]

    run(server_url, body, compression=compression)


# Raw HTTP: protobuf and JSON on the wire, over HTTP/1.1 and h2c.


class Wire:
    """An httpx client on one protocol, set up with a basin and a stream of its own."""

    def __init__(self, base_url: str, http_version: str, basin: str) -> None:
        h2 = http_version == "HTTP/2"
        self.http_version = http_version
        self.client = httpx.Client(base_url=base_url, http1=not h2, http2=h2, timeout=30.0)
        self.basin = basin
        created = self.request("POST", "/v1/basins", json={"basin": basin})
        assert created.status_code == 201, created.text

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response = self.client.request(method, url, **kwargs)
        assert response.http_version == self.http_version
        return response

    def headers(self, **extra: str) -> dict[str, str]:
        return {"s2-basin": self.basin, **{k.replace("_", "-"): v for k, v in extra.items()}}

    def create_stream(self, name: str, config: dict[str, Any] | None = None) -> str:
        document: dict[str, Any] = {"stream": name}
        if config is not None:
            document["config"] = config
        created = self.request("POST", "/v1/streams", json=document, headers=self.headers())
        assert created.status_code == 201, created.text
        return f"/v1/streams/{name}/records"

    def append_proto(
        self, path: str, message: Any, mime: str = "application/protobuf", **headers: str
    ) -> httpx.Response:
        return self.request(
            "POST",
            path,
            content=message.SerializeToString(),
            headers=self.headers(content_type=mime, accept=mime, **headers),
        )

    def read_proto(self, path: str, mime: str = "application/protobuf", **params: Any) -> Any:
        response = self.request("GET", path, params=params, headers=self.headers(accept=mime))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/protobuf"
        return response


@pytest.fixture(params=["HTTP/1.1", "HTTP/2"], ids=["h1", "h2c"])
def wire(request: pytest.FixtureRequest, server_url: str, unique: str) -> Iterator[Wire]:
    tag = "h1" if request.param == "HTTP/1.1" else "h2"
    w = Wire(server_url, request.param, f"wire-rec-{tag}-{unique}")
    yield w
    w.client.close()


def position(seq_num: int, timestamp: int) -> Any:
    return messages.StreamPosition(seq_num=seq_num, timestamp=timestamp)


def sequenced(seq_num: int, timestamp: int, headers: list[tuple[bytes, bytes]], body: bytes) -> Any:
    return messages.SequencedRecord(
        seq_num=seq_num,
        timestamp=timestamp,
        headers=[messages.Header(name=n, value=v) for n, v in headers],
        body=body,
    )


def append_input(
    records: list[tuple[int | None, list[tuple[bytes, bytes]], bytes]], **conditions: Any
) -> Any:
    out = messages.AppendInput(**conditions)
    for timestamp, headers, body in records:
        record = out.records.add(body=body)
        if timestamp is not None:
            record.timestamp = timestamp
        for name, value in headers:
            record.headers.add(name=name, value=value)
    return out


# Zero-valued fields (seq 0, timestamp 0, empty names, values and bodies) are left out on
# the wire, as in the reference's canonical encoding; the comparisons below are byte-exact.
RAW_RECORDS: list[tuple[int | None, list[tuple[bytes, bytes]], bytes]] = [
    (0, [(b"k", b"v"), (b"k", b""), (b"\xff", b"\x00")], bytes(range(256))),
    (2000, [], b""),
    (1500, [(b"", b"fence")], b"tok"),
    (3000, [(b"empty-value", b"")], b"\xc3\x28"),
]
RAW_STORED_TIMESTAMPS = [0, 2000, 2000, 3000]


@pytest.mark.parametrize("mime", ["application/protobuf", "application/x-protobuf"])
def test_protobuf_append_and_read_are_byte_exact(wire: Wire, mime: str) -> None:
    path = wire.create_stream("bytes")
    response = wire.append_proto(path, append_input(RAW_RECORDS, match_seq_num=0), mime)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/protobuf"
    expected_ack = messages.AppendAck(
        start=position(0, 0), end=position(4, 3000), tail=position(4, 3000)
    )
    assert response.content == expected_ack.SerializeToString()

    expected = [
        sequenced(seq, ts, headers, body)
        for seq, ((_, headers, body), ts) in enumerate(
            zip(RAW_RECORDS, RAW_STORED_TIMESTAMPS, strict=True)
        )
    ]
    read = wire.read_proto(path, mime, seq_num=0)
    assert read.content == messages.ReadBatch(records=expected).SerializeToString()
    batch = messages.ReadBatch.FromString(read.content)
    assert not batch.HasField("tail")
    assert [r.body for r in batch.records] == [body for _, _, body in RAW_RECORDS]

    partial = wire.read_proto(path, mime, seq_num=1, count=2)
    assert partial.content == messages.ReadBatch(records=expected[1:3]).SerializeToString()
    by_time = wire.read_proto(path, mime, timestamp=2001)
    assert by_time.content == messages.ReadBatch(records=expected[3:]).SerializeToString()
    clamped = wire.read_proto(path, mime, seq_num=99, clamp="true", wait=1)
    assert clamped.content == b""

    tail = wire.request("GET", f"{path}/tail", headers=wire.headers(accept=mime))
    assert tail.headers["content-type"] == "application/json"
    assert tail.json() == {"tail": {"seq_num": 4, "timestamp": 3000}}


def test_protobuf_long_poll_carries_the_tail(wire: Wire) -> None:
    path = wire.create_stream("live")
    assert wire.append_proto(path, append_input([(5, [], b"old")])).status_code == 200

    result: dict[str, httpx.Response] = {}

    def poll() -> None:
        result["read"] = wire.read_proto(path, seq_num=1, wait=10)

    poller = threading.Thread(target=poll)
    started = time.monotonic()
    poller.start()
    time.sleep(0.5)
    with httpx.Client(base_url=str(wire.client.base_url)) as other:
        appended = other.post(
            path,
            content=append_input([(7, [(b"a", b"b")], b"new"), (6, [], b"")]).SerializeToString(),
            headers=wire.headers(content_type="application/protobuf"),
        )
    assert appended.status_code == 200, appended.text
    # Without a protobuf Accept the ack is JSON.
    assert appended.headers["content-type"] == "application/json"
    assert appended.json()["tail"] == {"seq_num": 3, "timestamp": 7}
    poller.join(15)
    assert time.monotonic() - started < 5
    expected = messages.ReadBatch(
        records=[sequenced(1, 7, [(b"a", b"b")], b"new"), sequenced(2, 7, [], b"")],
        tail=position(3, 7),
    )
    assert result["read"].content == expected.SerializeToString()
    assert messages.ReadBatch.FromString(result["read"].content).HasField("tail")


def test_json_renderings_of_stored_records(wire: Wire) -> None:
    path = wire.create_stream("json")
    assert wire.append_proto(path, append_input(RAW_RECORDS)).status_code == 200

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    response = wire.request(
        "GET", path, params={"seq_num": 0}, headers=wire.headers(s2_format="base64")
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "records": [
            {
                "seq_num": 0,
                "timestamp": 0,
                "headers": [[b64(b"k"), b64(b"v")], [b64(b"k"), ""], [b64(b"\xff"), b64(b"\x00")]],
                "body": b64(bytes(range(256))),
            },
            {"seq_num": 1, "timestamp": 2000},
            {"seq_num": 2, "timestamp": 2000, "headers": [["", b64(b"fence")]], "body": "dG9r"},
            {
                "seq_num": 3,
                "timestamp": 3000,
                "headers": [["ZW1wdHktdmFsdWU=", ""]],
                "body": "wyg=",
            },
        ]
    }
    raw = wire.request("GET", path, params={"seq_num": 2}, headers=wire.headers(s2_format="raw"))
    assert raw.json() == {
        "records": [
            {"seq_num": 2, "timestamp": 2000, "headers": [["", "fence"]], "body": "tok"},
            {"seq_num": 3, "timestamp": 3000, "headers": [["empty-value", ""]], "body": "\ufffd("},
        ]
    }


def test_condition_and_unwritten_bodies_are_json(wire: Wire) -> None:
    path = wire.create_stream("conditions")
    fence = append_input([(None, [(b"", b"fence")], b"tok")])
    assert wire.append_proto(path, fence).status_code == 200

    mismatched = wire.append_proto(path, append_input([(None, [], b"x")], fencing_token="t2"))
    assert mismatched.status_code == 412
    assert mismatched.headers["content-type"] == "application/json"
    assert mismatched.json() == {"fencing_token_mismatch": "tok"}

    behind = wire.append_proto(path, append_input([(None, [], b"x")], match_seq_num=0))
    assert behind.status_code == 412
    assert behind.json() == {"seq_num_mismatch": 1}

    tail = wire.request("GET", f"{path}/tail", headers=wire.headers()).json()["tail"]
    unwritten = wire.request(
        "GET", path, params={"seq_num": 1}, headers=wire.headers(accept="application/protobuf")
    )
    assert unwritten.status_code == 416
    assert unwritten.headers["content-type"] == "application/json"
    assert unwritten.json() == {"tail": tail}

    garbage = wire.request(
        "POST",
        path,
        content=b"\xff\xff\xff",
        headers=wire.headers(content_type="application/protobuf"),
    )
    assert (garbage.status_code, garbage.json()["code"]) == (400, "bad_proto")
    empty = wire.append_proto(path, messages.AppendInput())
    assert (empty.status_code, empty.json()) == (
        422,
        {"code": "invalid", "message": "record batch must not be empty"},
    )
    long_token = wire.append_proto(path, append_input([(None, [], b"x")], fencing_token="t" * 37))
    assert (long_token.status_code, long_token.json()["code"]) == (422, "invalid")


@pytest.mark.parametrize("encoding", ["gzip", "zstd"])
def test_compressed_protobuf_bodies(wire: Wire, encoding: str) -> None:
    path = wire.create_stream(f"compressed-{encoding}")
    records: list[tuple[int | None, list[tuple[bytes, bytes]], bytes]] = [
        (None, [(b"i", b"%d" % i)], b"compressible " * 100) for i in range(20)
    ]
    records.append((None, [], b"tiny"))
    raw = append_input(records).SerializeToString()
    packed = gzip.compress(raw) if encoding == "gzip" else zstandard.ZstdCompressor().compress(raw)
    appended = wire.request(
        "POST",
        path,
        content=packed,
        headers=wire.headers(
            content_type="application/protobuf",
            content_encoding=encoding,
            accept="application/protobuf",
        ),
    )
    assert appended.status_code == 200, appended.text
    ack = messages.AppendAck.FromString(appended.content)
    assert (ack.start.seq_num, ack.end.seq_num) == (0, 21)

    # Large responses are compressed with the encoding the client accepts; small ones are not.
    large = wire.read_proto(path, seq_num=0)
    assert large.headers["content-encoding"] in ("gzip", "zstd")
    for start in (0, 20):
        response = wire.request(
            "GET",
            path,
            params={"seq_num": start},
            headers=wire.headers(accept="application/protobuf", accept_encoding=encoding),
        )
        assert response.status_code == 200
        batch = messages.ReadBatch.FromString(response.content)
        assert [r.body for r in batch.records] == [body for _, _, body in records[start:]]
        assert [[(h.name, h.value) for h in r.headers] for r in batch.records] == [
            h for _, h, _ in records[start:]
        ]
        if start == 0:
            assert response.headers["content-encoding"] == encoding
        else:
            assert "content-encoding" not in response.headers

    # JSON appends may be compressed too.
    document = json.dumps({"records": [{"body": "json " * 300}]}).encode()
    packed = (
        gzip.compress(document)
        if encoding == "gzip"
        else zstandard.ZstdCompressor().compress(document)
    )
    appended = wire.request(
        "POST",
        path,
        content=packed,
        headers=wire.headers(content_type="application/json", content_encoding=encoding),
    )
    assert appended.status_code == 200, appended.text
    assert appended.json()["end"]["seq_num"] == 22
