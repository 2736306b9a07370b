"""Unary reads over the full HTTP stack with the record log running (spec §1.4, §1.5, §4, §6).

Long polls run the read and a delayed append concurrently on the client's event loop;
the 60-second cap on ``wait`` is observed by moving that loop's clock forward.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from s2site import runtime
from storagecore import limits
from streams.models import Stream
from streams.protocol import messages
from tests.api.support import (
    BASIN,
    assert_empty,
    assert_error,
    create_stream,
    proto_record,
    records_path,
    run_deletion_pass,
    setup,
)
from tests.asgi_client import AsgiClient, Response

JSON = {"content-type": "application/json"}
MIB = 1024 * 1024
ONLY_ONE = "only one of seq_num, timestamp, or tail_offset can be provided"
UNTIL = "start `timestamp` exceeds or equal to `until`"


# Helpers -------------------------------------------------------------------------------------


def append(
    api: AsgiClient, records: list[dict[str, Any]], *, stream: str = "s", fmt: str = "raw"
) -> dict[str, Any]:
    response = api.post(
        records_path(stream),
        json_body={"records": records},
        basin=BASIN,
        headers={"s2-format": fmt},
    )
    assert response.status == 200, (response.status, response.body)
    ack: dict[str, Any] = response.json()
    return ack


def append_proto(api: AsgiClient, *records: Any, stream: str = "s") -> dict[str, Any]:
    body = messages.AppendInput(records=list(records)).SerializeToString()
    response = api.post(
        records_path(stream),
        body=body,
        basin=BASIN,
        headers={"content-type": "application/protobuf"},
    )
    assert response.status == 200, (response.status, response.body)
    ack: dict[str, Any] = response.json()
    return ack


def seed(api: AsgiClient, count: int, *, stream: str = "s", step: int = 10) -> None:
    """Records r0, r1, ... with timestamps step, 2*step, ..."""
    append(
        api, [{"body": f"r{i}", "timestamp": step * (i + 1)} for i in range(count)], stream=stream
    )


def get(
    api: AsgiClient,
    query: str,
    *,
    stream: str = "s",
    headers: dict[str, str] | None = None,
    basin: str = BASIN,
) -> Response:
    return api.get(records_path(stream), query=query, basin=basin, headers=headers)


def read(
    api: AsgiClient, query: str, *, stream: str = "s", headers: dict[str, str] | None = None
) -> dict[str, Any]:
    response = get(api, query, stream=stream, headers=headers)
    assert response.status == 200, (response.status, response.body)
    assert response.header("content-type") == "application/json"
    document: dict[str, Any] = response.json()
    return document


def seqs(api: AsgiClient, query: str, **kwargs: Any) -> list[int]:
    document = read(api, query, **kwargs)
    assert "tail" not in document, document
    return [record["seq_num"] for record in document["records"]]


def assert_416(response: Response, seq_num: int, timestamp: int) -> None:
    assert response.status == 416, (response.status, response.body)
    assert response.header("content-type") == "application/json"
    assert response.json() == {"tail": {"seq_num": seq_num, "timestamp": timestamp}}


def stream_names(api: AsgiClient) -> list[str]:
    response = api.get("/v1/streams", basin=BASIN)
    assert response.status == 200
    return [info["name"] for info in response.json()["streams"]]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def request_async(
    api: AsgiClient,
    method: str,
    path: str,
    *,
    query: str = "",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> Response:
    all_headers = {"s2-basin": BASIN, **{k.lower(): v for k, v in (headers or {}).items()}}
    return await api._run(method, path, query, all_headers, [body])


async def append_async(api: AsgiClient, records: list[dict[str, Any]]) -> Response:
    body = json.dumps({"records": records}).encode()
    return await request_async(api, "POST", records_path(), headers=JSON, body=body)


async def following(pending: asyncio.Future[Response]) -> None:
    """Wait until the pending read follows a stream's tail (its follower is registered).

    From then on its wait deadline is set and new durable records are pushed to it."""
    running = runtime.current()
    assert running is not None
    for _ in range(500):
        assert not pending.done(), "the read did not wait"
        streamers = running.engine.registry._streamers.values()
        if any(streamer.followers for streamer in streamers):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the read never started to follow")


def long_poll(
    api: AsgiClient,
    query: str,
    records: list[dict[str, Any]],
    *,
    headers: dict[str, str] | None = None,
) -> tuple[Response, Response, float]:
    """A read that must still be waiting when ``records`` are appended."""

    async def scenario() -> tuple[Response, Response, float]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        pending = asyncio.ensure_future(
            request_async(api, "GET", records_path(), query=query, headers=headers)
        )
        await following(pending)
        await asyncio.sleep(0.05)
        assert not pending.done(), "the read did not wait"
        ack = await append_async(api, records)
        assert ack.status == 200, ack.body
        response = await asyncio.wait_for(pending, 10)
        return response, ack, loop.time() - started

    result: tuple[Response, Response, float] = api.run(scenario())
    return result


def with_clock_jumps(
    api: AsgiClient,
    monkeypatch: pytest.MonkeyPatch,
    scenario: Callable[[Callable[[float], None]], Coroutine[Any, Any, Any]],
) -> Any:
    """Run ``scenario`` on the client's loop with a clock it can move forward."""
    loop = api.loop
    real_time = loop.time
    offset = [0.0]
    monkeypatch.setattr(loop, "time", lambda: real_time() + offset[0])

    def jump(seconds: float) -> None:
        offset[0] += seconds

    return api.run(scenario(jump))


# Start positions (spec §4.1, §4.2) --------------------------------------------------------------


def test_seq_num_start(records_api: AsgiClient) -> None:
    setup(records_api)
    seed(records_api, 5)
    assert seqs(records_api, "seq_num=0") == [0, 1, 2, 3, 4]
    assert seqs(records_api, "seq_num=3") == [3, 4]
    assert seqs(records_api, "seq_num=4") == [4]
    assert seqs(records_api, "seq_num=%2B2") == [2, 3, 4]  # Rust integers allow a `+`


def test_seq_num_at_or_beyond_the_tail_is_416(records_api: AsgiClient) -> None:
    setup(records_api)
    seed(records_api, 3)
    for seq_num in [3, 4, 1000, 2**64 - 1]:
        assert_416(get(records_api, f"seq_num={seq_num}"), 3, 30)
        assert_416(get(records_api, f"seq_num={seq_num}&clamp=true"), 3, 30)
        assert_416(get(records_api, f"seq_num={seq_num}&clamp=false&wait=0"), 3, 30)


def test_clamped_start_beyond_the_tail_long_polls(records_api: AsgiClient) -> None:
    setup(records_api)
    seed(records_api, 3)
    response, _, _ = long_poll(
        records_api, "seq_num=100&clamp=true&wait=30", [{"body": "n", "timestamp": 40}]
    )
    assert response.json() == {
        "records": [{"seq_num": 3, "timestamp": 40, "body": "n"}],
        "tail": {"seq_num": 4, "timestamp": 40},
    }


def test_start_beyond_the_tail_without_clamp_does_not_wait(records_api: AsgiClient) -> None:
    setup(records_api)
    seed(records_api, 3)
    started = time.monotonic()
    assert_416(get(records_api, "seq_num=4&wait=30"), 3, 30)
    assert_416(get(records_api, "timestamp=31&wait=30"), 3, 30)
    assert time.monotonic() - started < 5


def test_416_body_is_exact_and_always_json(records_api: AsgiClient) -> None:
    setup(records_api)
    seed(records_api, 2)
    for accept in [None, "application/protobuf", "application/x-protobuf"]:
        headers = {} if accept is None else {"accept": accept}
        response = get(records_api, "seq_num=9", headers=headers)
        assert response.status == 416
        assert response.header("content-type") == "application/json"
        assert response.body == b'{"tail":{"seq_num":2,"timestamp":20}}'


def test_no_start_means_the_tail(records_api: AsgiClient) -> None:
    setup(records_api)
    assert_416(get(records_api, ""), 0, 0)
    seed(records_api, 2)
    assert_416(get(records_api, ""), 2, 20)
    assert_416(get(records_api, "count=5&clamp=true"), 2, 20)
    response, _, _ = long_poll(records_api, "wait=5", [{"body": "new", "timestamp": 30}])
    document = response.json()
    assert [r["seq_num"] for r in document["records"]] == [2]
    assert document["tail"] == {"seq_num": 3, "timestamp": 30}


def test_tail_offset(records_api: AsgiClient) -> None:
    setup(records_api)
    seed(records_api, 5)
    assert seqs(records_api, "tail_offset=1") == [4]
    assert seqs(records_api, "tail_offset=2") == [3, 4]
    assert seqs(records_api, "tail_offset=5") == [0, 1, 2, 3, 4]
    # Saturates at 0.
    assert seqs(records_api, "tail_offset=6") == [0, 1, 2, 3, 4]
    assert seqs(records_api, f"tail_offset={2**64 - 1}") == [0, 1, 2, 3, 4]
    assert_416(get(records_api, "tail_offset=0"), 5, 50)
    assert_416(get(records_api, "tail_offset=0&clamp=true"), 5, 50)


def test_tail_offset_on_an_empty_stream_is_416(records_api: AsgiClient) -> None:
    setup(records_api)
    assert_416(get(records_api, "tail_offset=10"), 0, 0)


def test_timestamp_start(records_api: AsgiClient) -> None:
    setup(records_api)
    append(records_api, [{"timestamp": t} for t in [10, 20, 20, 20, 30, 40]])
    assert seqs(records_api, "timestamp=0") == [0, 1, 2, 3, 4, 5]
    assert seqs(records_api, "timestamp=10") == [0, 1, 2, 3, 4, 5]
    assert seqs(records_api, "timestamp=11") == [1, 2, 3, 4, 5]
    # The first of several records with the same timestamp.
    assert seqs(records_api, "timestamp=20") == [1, 2, 3, 4, 5]
    assert seqs(records_api, "timestamp=21") == [4, 5]
    # Equal to the tail's timestamp: not beyond it, so the last record.
    assert seqs(records_api, "timestamp=40") == [5]


def test_timestamp_beyond_the_tail(records_api: AsgiClient) -> None:
    setup(records_api)
    seed(records_api, 3)
    assert_416(get(records_api, "timestamp=31"), 3, 30)
    # Clamped to the tail, which may not be waited on without `wait`.
    assert_416(get(records_api, "timestamp=31&clamp=true"), 3, 30)
    response, _, _ = long_poll(
        records_api, "timestamp=1000&clamp=true&wait=5", [{"body": "x", "timestamp": 35}]
    )
    assert [r["seq_num"] for r in response.json()["records"]] == [3]


def test_timestamp_start_on_an_empty_stream(records_api: AsgiClient) -> None:
    setup(records_api)
    # Not beyond the tail {0, 0}: resolves to the tail and reads nothing (no 416).
    response = get(records_api, "timestamp=0")
    assert response.status == 200
    assert response.body == b'{"records":[]}'
    assert_416(get(records_api, "timestamp=1"), 0, 0)


@pytest.mark.parametrize(
    "query",
    [
        "seq_num=0&timestamp=0",
        "seq_num=0&tail_offset=0",
        "timestamp=0&tail_offset=1",
        "seq_num=1&timestamp=2&tail_offset=3",
        "seq_num=0&timestamp=5&until=5",
    ],
)
def test_more_than_one_start_is_422_before_the_stream_is_opened(
    records_api: AsgiClient, query: str
) -> None:
    setup(records_api, basin_config={"create_stream_on_read": True}, stream=None)
    assert_error(get(records_api, query, stream="auto"), "invalid", ONLY_ONE)
    assert_error(get(records_api, query, basin="missing-basin"), "invalid", ONLY_ONE)
    assert stream_names(records_api) == []


@pytest.mark.parametrize(
    "query", ["timestamp=5&until=5", "timestamp=6&until=5", "timestamp=1&until=0"]
)
def test_until_not_after_timestamp_is_422_before_the_stream_is_opened(
    records_api: AsgiClient, query: str
) -> None:
    setup(records_api, basin_config={"create_stream_on_read": True}, stream=None)
    assert_error(get(records_api, query, stream="auto"), "invalid", UNTIL)
    assert_error(get(records_api, query + "&clamp=true&wait=1", stream="auto"), "invalid", UNTIL)
    assert stream_names(records_api) == []


def test_until_is_only_checked_against_a_timestamp_start(records_api: AsgiClient) -> None:
    setup(records_api)
    seed(records_api, 3)
    assert seqs(records_api, "seq_num=0&until=0") == []
    assert seqs(records_api, "tail_offset=3&until=1") == []
    assert seqs(records_api, "timestamp=5&until=6") == []
    assert seqs(records_api, "timestamp=5&until=11") == [0]


# Limits (spec §4.1, §4.3, §4.4) --------------------------------------------------------------


def test_until(records_api: AsgiClient) -> None:
    setup(records_api)
    seed(records_api, 4)  # timestamps 10, 20, 30, 40
    assert seqs(records_api, "seq_num=0&until=30") == [0, 1]
    assert seqs(records_api, "seq_num=0&until=31") == [0, 1, 2]
    assert seqs(records_api, "seq_num=0&until=10") == []
    assert seqs(records_api, "seq_num=0&until=1000") == [0, 1, 2, 3]
    assert seqs(records_api, "seq_num=2&until=30") == []
    assert seqs(records_api, "timestamp=20&until=40") == [1, 2]


def test_count(records_api: AsgiClient) -> None:
    setup(records_api)
    seed(records_api, 5)
    assert seqs(records_api, "seq_num=0&count=2") == [0, 1]
    assert seqs(records_api, "seq_num=3&count=10") == [3, 4]
    assert seqs(records_api, "seq_num=1&count=1") == [1]
    assert seqs(records_api, f"seq_num=0&count={2**64 - 1}") == [0, 1, 2, 3, 4]


def test_count_zero_and_bytes_zero_mean_nothing(records_api: AsgiClient) -> None:
    setup(records_api)
    seed(records_api, 3)
    for query in ["seq_num=0&count=0", "seq_num=0&bytes=0", "seq_num=1&count=0&bytes=100"]:
        response = get(records_api, query)
        assert response.status == 200
        assert response.body == b'{"records":[]}'
    # At the tail, with nothing to wait for, it is still 416.
    assert_416(get(records_api, "seq_num=3&count=0"), 3, 30)


def test_count_is_clamped_to_1000(records_api: AsgiClient) -> None:
    setup(records_api)
    append(records_api, [{}] * 1000)
    append(records_api, [{}] * 5)
    for query in ["seq_num=0", "seq_num=0&count=1001", "seq_num=0&count=5000"]:
        assert seqs(records_api, query) == list(range(1000))
    assert seqs(records_api, "seq_num=3&count=5000") == list(range(3, 1003))
    assert seqs(records_api, "seq_num=1000") == list(range(1000, 1005))


def test_bytes_limit(records_api: AsgiClient) -> None:
    setup(records_api)
    append(records_api, [{"body": "x" * 92}, {"body": "y" * 42}, {"body": "z"}])  # 100, 50, 9
    assert seqs(records_api, "seq_num=0&bytes=99") == []
    assert seqs(records_api, "seq_num=0&bytes=100") == [0]
    assert seqs(records_api, "seq_num=0&bytes=149") == [0]
    assert seqs(records_api, "seq_num=0&bytes=150") == [0, 1]
    assert seqs(records_api, "seq_num=0&bytes=159") == [0, 1, 2]
    assert seqs(records_api, "seq_num=1&bytes=59") == [1, 2]
    # The read ends at the first record beyond the limit: no skipping ahead to smaller ones.
    assert seqs(records_api, "seq_num=0&bytes=60") == []
    # Both limits: whichever is reached first.
    assert seqs(records_api, "seq_num=0&bytes=1000&count=2") == [0, 1]
    assert seqs(records_api, "seq_num=0&bytes=150&count=3") == [0, 1]


def test_bytes_is_clamped_to_1_mib(records_api: AsgiClient) -> None:
    setup(records_api)
    size = 400 * 1024
    for _ in range(3):
        append(records_api, [{"body": "x" * (size - 8)}])
    # Two records fit in 1 MiB, three do not; a larger limit does not help a unary read.
    for query in ["seq_num=0", f"seq_num=0&bytes={10 * MIB}", f"seq_num=0&bytes={2**64 - 1}"]:
        assert seqs(records_api, query) == [0, 1]
    assert seqs(records_api, "seq_num=2") == [2]


def test_default_limits_allow_a_full_mib(records_api: AsgiClient) -> None:
    setup(records_api)
    append(records_api, [{"body": "x" * (MIB - 8)}])
    append(records_api, [{"body": "y"}])
    assert seqs(records_api, "seq_num=0") == [0]
    assert seqs(records_api, "seq_num=1") == [1]


def test_limits_combined_with_until(records_api: AsgiClient) -> None:
    setup(records_api)
    seed(records_api, 6)
    assert seqs(records_api, "seq_num=0&count=2&until=50") == [0, 1]
    assert seqs(records_api, "seq_num=0&count=10&until=25") == [0, 1]


# Query validation and extraction order (spec §1.4) ------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "seq_num=",
        "seq_num=x",
        "seq_num=-1",
        "seq_num=1.5",
        "seq_num=%2B",
        "seq_num=+1",  # `+` is a space in a query string
        f"seq_num={2**64}",
        "timestamp=abc",
        "tail_offset=-5",
        "clamp=1",
        "clamp=True",
        "clamp=yes",
        "clamp=",
        "count=-1",
        "count=1e3",
        "bytes=x",
        "until=-1",
        f"until={2**64}",
        "wait=-1",
        "wait=1.5",
        f"wait={2**32}",
    ],
)
def test_bad_query(records_api: AsgiClient, query: str) -> None:
    setup(records_api, basin_config={"create_stream_on_read": True}, stream=None)
    assert_error(get(records_api, query, stream="auto"), "bad_query")
    assert stream_names(records_api) == []


def test_unknown_query_parameters_are_ignored(records_api: AsgiClient) -> None:
    setup(records_api)
    seed(records_api, 2)
    assert seqs(records_api, "seq_num=1&foo=bar&limit=x") == [1]


def test_extraction_order(records_api: AsgiClient) -> None:
    setup(records_api)
    seed(records_api, 1)
    path = "/v1/streams/%FF/records"
    bad_headers = {"s2-format": "nope", "s2-encryption-key": ""}
    response = records_api.get(path, query="seq_num=x&seq_num=1", headers=bad_headers)
    assert_error(response, "bad_header", "Missing header `s2-basin`")
    response = records_api.get(path, query="seq_num=x", headers=bad_headers, basin=BASIN)
    assert_error(response, "bad_path")
    response = get(records_api, "seq_num=x&timestamp=1", headers=bad_headers)
    assert_error(response, "bad_query")
    # Start parameters are parsed before end parameters; both before headers.
    response = get(records_api, "count=x&seq_num=0&timestamp=0", headers=bad_headers)
    assert_error(response, "bad_query")
    # The key header comes before the format header.
    response = get(records_api, "seq_num=0&timestamp=0", headers=bad_headers)
    assert_error(
        response,
        "bad_header",
        "Invalid header `s2-encryption-key`: invalid encryption key: "
        "key material length 0 is out of range",
    )
    response = get(records_api, "seq_num=0&timestamp=0", headers={"s2-format": "nope"})
    assert_error(response, "bad_header", "Invalid header `s2-format`: nope")
    # Headers before semantic validation; then the combination of starts before `until`.
    response = get(records_api, "seq_num=0&timestamp=9&until=1")
    assert_error(response, "invalid", ONLY_ONE)


@pytest.mark.parametrize("key", ["", " ", "k" * 45])
def test_bad_encryption_key_length(records_api: AsgiClient, key: str) -> None:
    setup(records_api, basin_config={"create_stream_on_read": True}, stream=None)
    response = get(records_api, "seq_num=0", stream="auto", headers={"s2-encryption-key": key})
    assert_error(
        response,
        "bad_header",
        "Invalid header `s2-encryption-key`: invalid encryption key: "
        f"key material length {len(key.strip())} is out of range",
    )
    assert stream_names(records_api) == []


@pytest.mark.parametrize("fmt", ["RAW", "", "b64", "base64url"])
def test_bad_format_header(records_api: AsgiClient, fmt: str) -> None:
    setup(records_api)
    seed(records_api, 1)
    response = get(records_api, "seq_num=0", headers={"s2-format": fmt})
    assert_error(response, "bad_header", f"Invalid header `s2-format`: {fmt}")
    # Also for a protobuf response, which does not use it.
    response = get(
        records_api, "seq_num=0", headers={"s2-format": fmt, "accept": "application/protobuf"}
    )
    assert_error(response, "bad_header")


# Rendering (spec §4.4) --------------------------------------------------------------------------


def test_json_rendering_is_exact(records_api: AsgiClient) -> None:
    setup(records_api)
    append(records_api, [{"headers": [["k", "v"]], "body": "a", "timestamp": 10}])
    response = get(records_api, "seq_num=0")
    assert response.status == 200
    assert response.header("content-type") == "application/json"
    assert response.body == (
        b'{"records":[{"seq_num":0,"timestamp":10,"headers":[["k","v"]],"body":"a"}]}'
    )


def test_empty_headers_and_bodies_are_omitted(records_api: AsgiClient) -> None:
    setup(records_api)
    append(
        records_api,
        [
            {"timestamp": 1},
            {"body": "b", "timestamp": 2},
            {"headers": [["h", ""]], "timestamp": 3},
            {"headers": [["", "fence"]], "body": "", "timestamp": 4},
            {"headers": [["", "fence"]], "body": "tok", "timestamp": 5},
            {"headers": [["", "trim"]], "body": "\u0000" * 8, "timestamp": 6},
        ],
    )
    records = read(records_api, "seq_num=0")["records"]
    assert records == [
        {"seq_num": 0, "timestamp": 1},
        {"seq_num": 1, "timestamp": 2, "body": "b"},
        {"seq_num": 2, "timestamp": 3, "headers": [["h", ""]]},
        {"seq_num": 3, "timestamp": 4, "headers": [["", "fence"]]},
        {"seq_num": 4, "timestamp": 5, "headers": [["", "fence"]], "body": "tok"},
        {"seq_num": 5, "timestamp": 6, "headers": [["", "trim"]], "body": "\u0000" * 8},
    ]


def test_base64_rendering(records_api: AsgiClient) -> None:
    setup(records_api)
    append_proto(
        records_api,
        proto_record(b"\x00\xff", [(b"n\x80", b"")], timestamp=1),
        proto_record(b"", [(b"", b"fence")], timestamp=2),
        proto_record((0).to_bytes(8, "big"), [(b"", b"trim")], timestamp=3),
        proto_record(b"", timestamp=4),
    )
    for fmt in ["base64", "json-binsafe"]:
        records = read(records_api, "seq_num=0", headers={"s2-format": fmt})["records"]
        assert records == [
            {"seq_num": 0, "timestamp": 1, "headers": [[b64(b"n\x80"), ""]], "body": "AP8="},
            {"seq_num": 1, "timestamp": 2, "headers": [["", "ZmVuY2U="]]},
            {"seq_num": 2, "timestamp": 3, "headers": [["", "dHJpbQ=="]], "body": "AAAAAAAAAAA="},
            {"seq_num": 3, "timestamp": 4},
        ]


@pytest.mark.parametrize("fmt", [None, "raw", "json"])
def test_raw_rendering_is_lossy_utf8(records_api: AsgiClient, fmt: str | None) -> None:
    setup(records_api)
    cases = [
        (b"Hello \xf0\x90\x80World", "Hello \ufffdWorld"),
        (b"\xf0\x80\x80", "\ufffd\ufffd\ufffd"),
        (b"\xe2\x82", "\ufffd"),
        (b"\xed\xa0\x80", "\ufffd\ufffd\ufffd"),
        (b"\xc0\xaf", "\ufffd\ufffd"),
        (b"a\x80b", "a\ufffdb"),
        ("ok ☃ é".encode(), "ok ☃ é"),
    ]
    append_proto(records_api, *(proto_record(data, [(data, data)]) for data, _ in cases))
    headers = {} if fmt is None else {"s2-format": fmt}
    records = read(records_api, "seq_num=0", headers=headers)["records"]
    for record, (_, text) in zip(records, cases, strict=True):
        assert record["body"] == text
        assert record["headers"] == [[text, text]]


def test_protobuf_response(records_api: AsgiClient) -> None:
    setup(records_api)
    append_proto(
        records_api,
        proto_record(b"\x00\xff", [(b"a", b"1"), (b"a", b"")], timestamp=5),
        proto_record(b"", [(b"", b"fence")], timestamp=6),
        proto_record(b"last", timestamp=7),
    )
    for accept in ["application/protobuf", "application/x-protobuf", "application/protobuf, */*"]:
        response = get(records_api, "seq_num=0", headers={"accept": accept, "s2-format": "base64"})
        assert response.status == 200
        assert response.header("content-type") == "application/protobuf"
        batch = messages.ReadBatch.FromString(response.body)
        assert not batch.HasField("tail")
        got = [
            (r.seq_num, r.timestamp, [(h.name, h.value) for h in r.headers], r.body)
            for r in batch.records
        ]
        assert got == [
            (0, 5, [(b"a", b"1"), (b"a", b"")], b"\x00\xff"),
            (1, 6, [(b"", b"fence")], b""),
            (2, 7, [], b"last"),
        ]
    response = get(records_api, "seq_num=0&count=0", headers={"accept": "application/protobuf"})
    assert response.status == 200
    assert response.body == b""


@pytest.mark.parametrize(
    "accept",
    ["application/json", "*/*", "text/html", "application/json, application/protobuf", "garbage"],
)
def test_json_response_unless_protobuf_is_first(records_api: AsgiClient, accept: str) -> None:
    setup(records_api)
    seed(records_api, 1)
    response = get(records_api, "seq_num=0", headers={"accept": accept})
    assert response.status == 200
    assert response.header("content-type") == "application/json"
    assert response.json() == {"records": [{"seq_num": 0, "timestamp": 10, "body": "r0"}]}


# Waiting (spec §4.3, §4.4) ----------------------------------------------------------------------


def test_existing_records_are_returned_at_once_without_tail(records_api: AsgiClient) -> None:
    setup(records_api)
    seed(records_api, 3)
    started = time.monotonic()
    document = read(records_api, "seq_num=1&wait=30")
    assert time.monotonic() - started < 5
    assert document == {
        "records": [
            {"seq_num": 1, "timestamp": 20, "body": "r1"},
            {"seq_num": 2, "timestamp": 30, "body": "r2"},
        ]
    }


def test_long_poll_returns_new_records_with_tail(records_api: AsgiClient) -> None:
    setup(records_api)
    seed(records_api, 2)
    response, ack, elapsed = long_poll(
        records_api, "seq_num=2&wait=30", [{"body": "n1", "timestamp": 50}, {"timestamp": 60}]
    )
    assert elapsed < 10
    assert response.status == 200
    assert response.header("content-type") == "application/json"
    assert response.json() == {
        "records": [
            {"seq_num": 2, "timestamp": 50, "body": "n1"},
            {"seq_num": 3, "timestamp": 60},
        ],
        "tail": {"seq_num": 4, "timestamp": 60},
    }
    assert ack.json()["end"] == {"seq_num": 4, "timestamp": 60}
    # The long-polled records were durable: a plain read sees them.
    assert seqs(records_api, "seq_num=2") == [2, 3]


def test_long_poll_protobuf_has_tail(records_api: AsgiClient) -> None:
    setup(records_api)
    response, _, _ = long_poll(
        records_api,
        "seq_num=0&wait=30",
        [{"body": "x", "timestamp": 7}],
        headers={"accept": "application/protobuf"},
    )
    assert response.header("content-type") == "application/protobuf"
    batch = messages.ReadBatch.FromString(response.body)
    assert batch.HasField("tail")
    assert (batch.tail.seq_num, batch.tail.timestamp) == (1, 7)
    assert [(r.seq_num, r.body) for r in batch.records] == [(0, b"x")]


def test_long_poll_respects_limits(records_api: AsgiClient) -> None:
    setup(records_api)
    response, _, _ = long_poll(
        records_api, "seq_num=0&wait=30&count=2", [{"timestamp": t} for t in (1, 2, 3)]
    )
    document = response.json()
    assert [r["seq_num"] for r in document["records"]] == [0, 1]
    assert document["tail"]["seq_num"] == 3


def test_zero_count_at_the_tail_waits_for_the_next_batch(records_api: AsgiClient) -> None:
    """``count=0`` with ``wait`` at the tail follows like any read that may: it ends when
    the next batch becomes durable, delivering nothing of it."""
    setup(records_api)
    seed(records_api, 3)
    response, _, _ = long_poll(records_api, "seq_num=3&count=0&wait=30", [{"timestamp": 40}])
    assert response.status == 200
    assert response.json() == {"records": []}


def test_zero_count_below_the_tail_returns_at_once(records_api: AsgiClient) -> None:
    setup(records_api)
    seed(records_api, 3)
    response = get(records_api, "seq_num=1&count=0&wait=30")
    assert response.status == 200
    assert response.json() == {"records": []}


def test_long_poll_with_until_beyond_new_records_returns_nothing(
    records_api: AsgiClient,
) -> None:
    setup(records_api)
    response, _, elapsed = long_poll(
        records_api, "seq_num=0&wait=30&until=100", [{"timestamp": 100}, {"timestamp": 101}]
    )
    assert elapsed < 10
    assert response.status == 200
    assert response.json() == {"records": []}


def test_long_poll_on_a_missing_stream_with_create_on_read(records_api: AsgiClient) -> None:
    setup(records_api, basin_config={"create_stream_on_read": True}, stream=None)
    # `records_path()` is stream "s", which does not exist yet.
    response, _, _ = long_poll(records_api, "seq_num=0&wait=30", [{"body": "a", "timestamp": 3}])
    assert response.json() == {
        "records": [{"seq_num": 0, "timestamp": 3, "body": "a"}],
        "tail": {"seq_num": 1, "timestamp": 3},
    }


def test_wait_times_out_with_an_empty_batch(records_api: AsgiClient) -> None:
    setup(records_api)
    seed(records_api, 1)
    started = time.monotonic()
    response = get(records_api, "seq_num=1&wait=1")
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 5
    assert response.status == 200
    assert response.body == b'{"records":[]}'
    response = get(records_api, "seq_num=1&wait=1", headers={"accept": "application/protobuf"})
    assert response.status == 200
    assert not messages.ReadBatch.FromString(response.body).HasField("tail")


def test_wait_on_a_missing_stream_with_create_on_read(records_api: AsgiClient) -> None:
    setup(records_api, basin_config={"create_stream_on_read": True}, stream=None)
    response = get(records_api, "seq_num=0&wait=1", stream="auto")
    assert response.status == 200
    assert response.json() == {"records": []}
    assert stream_names(records_api) == ["auto"]


def test_wait_is_capped_at_60_seconds(
    records_api: AsgiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup(records_api)
    seed(records_api, 1)

    async def scenario(jump: Callable[[float], None]) -> Response:
        pending = asyncio.ensure_future(
            request_async(records_api, "GET", records_path(), query=f"seq_num=1&wait={2**32 - 1}")
        )
        await following(pending)
        jump(58)
        await asyncio.sleep(0.3)
        assert not pending.done(), "gave up before 60 seconds"
        jump(3)
        return await asyncio.wait_for(pending, 5)

    response = with_clock_jumps(records_api, monkeypatch, scenario)
    assert response.status == 200
    assert response.json() == {"records": []}


def test_wait_below_the_cap_is_honoured(
    records_api: AsgiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup(records_api)

    async def scenario(jump: Callable[[float], None]) -> tuple[bool, Response]:
        pending = asyncio.ensure_future(
            request_async(records_api, "GET", records_path(), query="seq_num=0&wait=20")
        )
        await following(pending)
        jump(15)
        await asyncio.sleep(0.3)
        still_waiting = not pending.done()
        jump(6)
        return still_waiting, await asyncio.wait_for(pending, 5)

    still_waiting, response = with_clock_jumps(records_api, monkeypatch, scenario)
    assert still_waiting
    assert response.json() == {"records": []}


def test_wait_zero_does_not_wait(records_api: AsgiClient) -> None:
    setup(records_api)
    seed(records_api, 1)
    assert_416(get(records_api, "seq_num=1&wait=0"), 1, 10)
    assert seqs(records_api, "seq_num=0&wait=0") == [0]


# Trimmed and expired records (spec §4.2, §8) ------------------------------------------------


def test_reads_below_the_trim_point_start_at_the_first_surviving_record(
    records_api: AsgiClient,
) -> None:
    setup(records_api)
    seed(records_api, 6)
    trim = {"headers": [["", "trim"]], "body": "\u0000" * 7 + "\u0004", "timestamp": 70}
    ack = append(records_api, [trim])
    deadline = time.monotonic() + 5
    while seqs(records_api, "seq_num=0")[0] != 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert seqs(records_api, "seq_num=0") == [4, 5, 6]
    assert seqs(records_api, "seq_num=2&count=1") == [4]
    assert seqs(records_api, "timestamp=15") == [4, 5, 6]
    assert seqs(records_api, "tail_offset=7") == [4, 5, 6]
    assert seqs(records_api, "seq_num=0&until=50") == []
    # The tail did not move.
    assert ack["end"] == {"seq_num": 7, "timestamp": 70}
    assert_416(get(records_api, "seq_num=7"), 7, 70)


def test_expired_records_read_as_an_empty_batch(records_api: AsgiClient) -> None:
    setup(records_api, stream_config={"retention_policy": {"age": 1}})
    seed(records_api, 3)
    assert seqs(records_api, "seq_num=0") == [0, 1, 2]
    time.sleep(1.2)
    response = get(records_api, "seq_num=0")
    assert response.status == 200
    assert response.json() == {"records": []}
    assert_416(get(records_api, "seq_num=3"), 3, 30)
    append(records_api, [{"body": "fresh", "timestamp": 40}])
    assert seqs(records_api, "seq_num=0") == [3]


# Missing streams (spec §4.6) ------------------------------------------------------------------


def test_read_missing_stream(records_api: AsgiClient) -> None:
    setup(records_api, basin_config={"create_stream_on_append": True}, stream=None)
    response = get(records_api, "seq_num=0", stream="nope")
    assert_error(response, "stream_not_found", "stream `nope` in basin `test-basin` not found")
    assert stream_names(records_api) == []


def test_read_missing_basin(records_api: AsgiClient) -> None:
    response = get(records_api, "seq_num=0", basin="missing-basin")
    assert_error(response, "basin_not_found", "basin `missing-basin` not found")


def test_read_auto_creates_with_create_stream_on_read(records_api: AsgiClient) -> None:
    setup(
        records_api,
        basin_config={
            "create_stream_on_read": True,
            "default_stream_config": {"storage_class": "standard"},
        },
        stream=None,
    )
    # Created first, then the start is resolved: 416 with the empty tail.
    assert_416(get(records_api, "seq_num=0", stream="auto"), 0, 0)
    assert stream_names(records_api) == ["auto"]
    config = records_api.get("/v1/streams/auto", basin=BASIN).json()
    assert config["storage_class"] == "standard"
    append(records_api, [{"body": "a", "timestamp": 1}], stream="auto")
    assert seqs(records_api, "seq_num=0", stream="auto") == [0]


def test_read_a_stream_being_deleted(records_api: AsgiClient) -> None:
    setup(records_api)
    seed(records_api, 1)
    assert_empty(records_api.delete("/v1/streams/s", basin=BASIN), 202)
    for query in ["seq_num=0", "seq_num=5", "seq_num=0&wait=5"]:
        assert_error(get(records_api, query), "stream_deletion_pending", "stream deletion pending")


def test_read_after_deletion_completes(records_api: AsgiClient) -> None:
    setup(records_api, basin_config={"create_stream_on_read": True})
    seed(records_api, 2)
    assert_empty(records_api.delete("/v1/streams/s", basin=BASIN), 202)
    assert_error(get(records_api, "seq_num=0"), "stream_deletion_pending")
    run_deletion_pass(records_api)
    # Gone, so auto-created again: empty.
    assert_416(get(records_api, "seq_num=0"), 0, 0)
    append(records_api, [{"body": "new", "timestamp": 1}])
    assert read(records_api, "seq_num=0")["records"] == [
        {"seq_num": 0, "timestamp": 1, "body": "new"}
    ]


def test_read_after_deletion_without_auto_create(records_api: AsgiClient) -> None:
    setup(records_api)
    seed(records_api, 2)
    assert_empty(records_api.delete("/v1/streams/s", basin=BASIN), 202)
    run_deletion_pass(records_api)
    assert_error(get(records_api, "seq_num=0"), "stream_not_found")


# Routing and storage paths ----------------------------------------------------------------------


def test_read_stream_with_encoded_slash(records_api: AsgiClient) -> None:
    setup(records_api, stream="a/b")
    create_stream(records_api, "a")
    append(records_api, [{"body": "in a/b", "timestamp": 1}], stream="a/b")
    assert seqs(records_api, "seq_num=0", stream="a/b") == [0]
    response = records_api.get("/v1/streams/a%2Fb/records", query="seq_num=0", basin=BASIN)
    assert response.json()["records"][0]["body"] == "in a/b"
    # "a" is a different, empty stream.
    assert_416(get(records_api, "seq_num=0", stream="a"), 0, 0)
    # An unencoded slash is a different route.
    response = records_api.get("/v1/streams/a/b/records", query="seq_num=0", basin=BASIN)
    assert response.status == 404


def test_head_on_read(records_api: AsgiClient) -> None:
    setup(records_api)
    seed(records_api, 1)
    response = records_api.request("HEAD", records_path(), query="seq_num=0", basin=BASIN)
    assert response.status == 200
    assert response.body == b""


def test_reads_from_segments_after_the_recent_cache_evicted(records_api: AsgiClient) -> None:
    setup(records_api)
    body_size = 50 * 1024
    per_batch = 20  # 20 * (50 KiB + 8) stays under 1 MiB
    batches = 6  # about 6 MiB in all, more than the streamer keeps in memory
    assert batches * per_batch * body_size > limits.streamer_recent_bytes_max
    expected = []
    for b in range(batches):
        records = []
        for i in range(per_batch):
            n = b * per_batch + i
            body = bytes([n % 251]) * body_size
            records.append(proto_record(body, [(b"n", str(n).encode())], timestamp=n))
            expected.append((n, n, body))
        append_proto(records_api, *records)
    running = runtime.current()
    assert running is not None
    stream_id = Stream.objects.get(basin__name=BASIN, name="s").pk
    streamer = running.engine.streamer(stream_id)
    assert streamer.recent_blocks_from(0) is None, "the oldest records are still cached"

    got = []
    seq = 0
    while seq < len(expected):
        response = get(records_api, f"seq_num={seq}", headers={"accept": "application/protobuf"})
        assert response.status == 200
        batch = messages.ReadBatch.FromString(response.body)
        assert batch.records, seq
        for record in batch.records:
            assert [(h.name, h.value) for h in record.headers] == [
                (b"n", str(record.seq_num).encode())
            ]
            got.append((record.seq_num, record.timestamp, record.body))
        seq = got[-1][0] + 1
    assert got == expected
    # JSON reads and the limits work on that path too.
    document = read(records_api, "seq_num=3&count=2", headers={"s2-format": "base64"})
    assert [r["seq_num"] for r in document["records"]] == [3, 4]
    assert base64.b64decode(document["records"][0]["body"]) == bytes([3]) * body_size
    # Metered: 8 + 2 per header + the header's name and value + the body.
    two = 2 * (8 + 2 + 1 + 1 + body_size)
    assert seqs(records_api, f"seq_num=0&bytes={two}") == [0, 1]
    assert seqs(records_api, f"seq_num=0&bytes={two - 1}") == [0]
    assert seqs(records_api, "timestamp=7&count=1") == [7]
    assert seqs(records_api, "seq_num=0&until=2") == [0, 1]
