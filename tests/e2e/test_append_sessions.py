"""S2S append sessions (spec §5.4) against the real server: the official SDK, and raw
frames over HTTP/1.1 and h2c for ordering, poisoning and error frames."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from s2_sdk import S2, AppendInput, Compression, Endpoints, ReadLimit, Record, Retry, SeqNum

from streams.protocol import messages, s2s

pytestmark = pytest.mark.e2e


def _create(url: str, basin: str, stream: str) -> None:
    with httpx.Client(base_url=url) as client:
        assert client.post("/v1/basins", json={"basin": basin}).status_code == 201
        created = client.post("/v1/streams", json={"stream": stream}, headers={"s2-basin": basin})
        assert created.status_code == 201


def _input(*bodies: bytes, match: int | None = None, records: Any = None) -> bytes:
    message = messages.AppendInput(
        records=records if records is not None else [messages.AppendRecord(body=b) for b in bodies]
    )
    if match is not None:
        message.match_seq_num = match
    return s2s.encode_message(message.SerializeToString(), s2s.Compression.NONE)


def _session(url: str, basin: str, stream: str, body: bytes, http2: bool) -> httpx.Response:
    with httpx.Client(base_url=url, http1=not http2, http2=http2, timeout=30) as client:
        return client.post(
            f"/v1/streams/{stream}/records",
            content=body,
            headers={"s2-basin": basin, "content-type": "s2s/proto"},
        )


def _frames(response: httpx.Response) -> list[s2s.Frame]:
    decoder = s2s.FrameDecoder()
    frames = decoder.feed(response.content)
    assert decoder.pending == 0
    return frames


def _tail(url: str, basin: str, stream: str) -> int:
    with httpx.Client(base_url=url) as client:
        response = client.get(f"/v1/streams/{stream}/records/tail", headers={"s2-basin": basin})
        return int(response.json()["tail"]["seq_num"])


@pytest.fixture(params=[False, True], ids=["http1", "h2c"])
def http2(request: pytest.FixtureRequest) -> Iterator[bool]:
    yield request.param


def test_pipelined_inputs_are_acknowledged_in_order(
    server_url: str, unique: str, http2: bool
) -> None:
    basin = f"as-order-{unique}"
    _create(server_url, basin, "s")
    body = b"".join(_input(f"r{i}".encode(), f"r{i}b".encode()) for i in range(50))
    response = _session(server_url, basin, "s", body, http2)
    assert response.status_code == 200
    assert response.headers["content-type"] == "s2s/proto"
    frames = _frames(response)
    assert len(frames) == 50 and not any(f.terminal for f in frames)
    acks = [messages.AppendAck.FromString(f.message()) for f in frames]
    assert [(a.start.seq_num, a.end.seq_num) for a in acks] == [
        (2 * i, 2 * i + 2) for i in range(50)
    ]
    assert all(a.tail.seq_num >= a.end.seq_num for a in acks)
    assert _tail(server_url, basin, "s") == 100


def test_a_failed_condition_poisons_the_session(server_url: str, unique: str, http2: bool) -> None:
    basin = f"as-poison-{unique}"
    _create(server_url, basin, "s")
    body = _input(b"a") + _input(b"b", match=1) + _input(b"c", match=7) + _input(b"d")
    frames = _frames(_session(server_url, basin, "s", body, http2))
    assert [f.terminal for f in frames] == [False, False, True]
    status = int.from_bytes(frames[-1].payload[:2], "big")
    assert status == 412
    assert json.loads(frames[-1].payload[2:]) == {"seq_num_mismatch": 2}
    # The input after the failure was never appended.
    assert _tail(server_url, basin, "s") == 2


def test_decode_and_validation_errors_end_with_terminal_frames(
    server_url: str, unique: str, http2: bool
) -> None:
    basin = f"as-errors-{unique}"
    _create(server_url, basin, "s")
    garbage = b"\x00\x00\x02\x60\x00"  # compression bits 11
    frames = _frames(_session(server_url, basin, "s", _input(b"ok") + garbage, http2))
    assert [f.terminal for f in frames] == [False, True]
    assert int.from_bytes(frames[1].payload[:2], "big") == 400
    assert json.loads(frames[1].payload[2:])["code"] == "bad_frame"

    empty = _input(records=[])
    frames = _frames(_session(server_url, basin, "s", _input(b"x") + empty, http2))
    assert [f.terminal for f in frames] == [False, True]
    assert int.from_bytes(frames[1].payload[:2], "big") == 422
    assert json.loads(frames[1].payload[2:])["code"] == "invalid"

    truncated = _input(b"whole")[:-2]
    frames = _frames(_session(server_url, basin, "s", truncated, http2))
    assert len(frames) == 1 and frames[0].terminal
    assert json.loads(frames[0].payload[2:])["code"] == "bad_frame"
    assert _tail(server_url, basin, "s") == 2


def test_empty_body_and_errors_before_the_session(
    server_url: str, unique: str, http2: bool
) -> None:
    basin = f"as-empty-{unique}"
    _create(server_url, basin, "s")
    response = _session(server_url, basin, "s", b"", http2)
    assert response.status_code == 200 and response.content == b""
    missing = _session(server_url, basin, "nope", _input(b"x"), http2)
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/json"
    assert missing.json()["code"] == "stream_not_found"


def test_compressed_inputs_are_accepted(server_url: str, unique: str) -> None:
    basin = f"as-zstd-{unique}"
    _create(server_url, basin, "s")
    import zstandard

    message = messages.AppendInput(records=[messages.AppendRecord(body=b"z" * 4000)])
    payload = zstandard.ZstdCompressor().compress(message.SerializeToString())
    frame = (1 + len(payload)).to_bytes(3, "big") + bytes((0x20,)) + payload
    frames = _frames(_session(server_url, basin, "s", frame, False))
    assert len(frames) == 1 and not frames[0].terminal
    assert messages.AppendAck.FromString(frames[0].message()).end.seq_num == 1


def test_official_sdk_append_session_and_producer(server_url: str, unique: str) -> None:
    basin_name = f"as-sdk-{unique}"

    async def main() -> None:
        async with S2(
            "ignored",
            endpoints=Endpoints(account=server_url, basin=server_url),
            retry=Retry(max_attempts=1),
        ) as client:
            await client.create_basin(basin_name)
            basin = client.basin(basin_name)
            await basin.create_stream("s")
            stream = basin.stream("s")
            async with stream.append_session() as session:
                tickets = [
                    await session.submit(AppendInput(records=[Record(body=f"{i}".encode())]))
                    for i in range(200)
                ]
                acks = [await ticket for ticket in tickets]
            assert [a.start.seq_num for a in acks] == list(range(200))
            async with stream.producer() as producer:
                record_tickets = [
                    await producer.submit(Record(body=f"p{i}".encode())) for i in range(300)
                ]
                indexed = [await ticket for ticket in record_tickets]
            assert [i.seq_num for i in indexed] == list(range(200, 500))
            tail = await stream.check_tail()
            assert tail.seq_num == 500

    asyncio.run(main())


@pytest.mark.parametrize("compression", [Compression.ZSTD, Compression.GZIP], ids=["zstd", "gzip"])
def test_official_sdk_sessions_with_compression(
    server_url: str, unique: str, compression: Compression
) -> None:
    """The SDK compresses its session messages of 1 KiB or more and asks for compressed
    ones back: 40 batches of four 4 KiB records go through an append session and come
    back, byte for byte, through a read session."""
    basin_name = f"as-sdk-{compression.value}-{unique}"
    body = bytes(range(256)) * 16

    async def main() -> None:
        async with S2(
            "ignored",
            endpoints=Endpoints(account=server_url, basin=server_url),
            retry=Retry(max_attempts=1),
            compression=compression,
        ) as client:
            await client.create_basin(basin_name)
            basin = client.basin(basin_name)
            await basin.create_stream("s")
            stream = basin.stream("s")
            async with stream.append_session() as session:
                tickets = [
                    await session.submit(
                        AppendInput(
                            records=[Record(body=b"%d:%d:" % (i, j) + body) for j in range(4)]
                        )
                    )
                    for i in range(40)
                ]
                acks = [await ticket for ticket in tickets]
            assert [a.end.seq_num for a in acks] == list(range(4, 164, 4))
            received = []
            async with stream.read_session(start=SeqNum(0), limit=ReadLimit(count=160)) as reader:
                async for batch in reader:
                    received += [r.body for r in batch.records]
            assert received == [b"%d:%d:" % (i // 4, i % 4) + body for i in range(160)]

    asyncio.run(asyncio.wait_for(main(), 60))
