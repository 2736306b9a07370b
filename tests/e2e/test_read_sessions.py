"""Read sessions end to end (spec §4.2, §4.3, §5.1-§5.3) on the real server.

SSE sessions are read with httpx over HTTP/1.1 (some also over h2c), S2S sessions with
httpx over both protocols (``Content-Type: s2s/proto`` on a GET, frames parsed with our
own sans-IO decoder and checked byte for byte against canonical protobuf encodings), and
finally through the official Python SDK's ``read_session`` (h2c). Every test is bounded:
the first heartbeat of a session is immediate, and only one test waits for the periodic
heartbeat (5-15 s).

Where the reference server (s2-lite, ``lite/src/backend/read.rs`` and
``lite/src/handlers/v1/records.rs``) is more precise than the spec, the docstrings say so.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import pytest
from s2_sdk import (
    S2,
    AppendInput,
    Endpoints,
    ReadLimit,
    ReadUnwrittenError,
    Record,
    Retry,
    S2Stream,
    SeqNum,
    StreamPosition,
    TailOffset,
    Timeout,
)

from streams.protocol import messages
from streams.protocol.s2s import Compression, Frame, FrameDecoder
from tests.e2e.conftest import ServerProcess

pytestmark = pytest.mark.e2e

T = TypeVar("T")
SSE = "text/event-stream"
S2S = "s2s/proto"
PROTOCOLS = pytest.mark.parametrize("http_version", ["HTTP/1.1", "HTTP/2"], ids=["h1", "h2c"])

# Three records with client timestamps (kept as sent: they are in the past).
# Metered sizes: 8 + 1 = 9; 8 + 2 + 2 + 1 = 13; 8 + 1 = 9.
THREE = [
    {"body": "a", "timestamp": 1000},
    {"body": "b", "timestamp": 2000, "headers": [["h", "v"]]},
    {"body": "c", "timestamp": 3000},
]
THREE_JSON = [
    {"seq_num": 0, "timestamp": 1000, "body": "a"},
    {"seq_num": 1, "timestamp": 2000, "headers": [["h", "v"]], "body": "b"},
    {"seq_num": 2, "timestamp": 3000, "body": "c"},
]
THREE_SIZES = [9, 13, 9]


def now_ms() -> int:
    return int(time.time() * 1000)


# A basin with streams, driven over plain HTTP/1.1.


class Basin:
    def __init__(self, base_url: str, name: str) -> None:
        self.base_url = base_url
        self.name = name
        self.http = httpx.Client(base_url=base_url, timeout=10.0)
        created = self.http.post("/v1/basins", json={"basin": name})
        assert created.status_code == 201, created.text

    def headers(self, **extra: Any) -> dict[str, Any]:
        return {"s2-basin": self.name, **{k.replace("_", "-"): v for k, v in extra.items()}}

    def stream(self, name: str, records: list[dict[str, Any]] | None = None) -> str:
        created = self.http.post("/v1/streams", json={"stream": name}, headers=self.headers())
        assert created.status_code == 201, created.text
        path = f"/v1/streams/{name}/records"
        if records:
            self.append(path, records)
        return path

    def append(self, path: str, records: list[dict[str, Any]], **headers: str) -> dict[str, Any]:
        response = self.http.post(path, json={"records": records}, headers=self.headers(**headers))
        assert response.status_code == 200, response.text
        ack: dict[str, Any] = response.json()
        return ack

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def basin(server_url: str, unique: str) -> Iterator[Basin]:
    b = Basin(server_url, f"rs-{unique}")
    yield b
    b.close()


def session_client(
    base_url: str, http_version: str = "HTTP/1.1", read_s: float = 10.0
) -> httpx.Client:
    h2 = http_version == "HTTP/2"
    # http1=False over http:// makes httpx speak h2c with prior knowledge.
    client = httpx.Client(
        base_url=base_url, http1=not h2, http2=h2, timeout=httpx.Timeout(10.0, read=read_s)
    )
    # httpx offers gzip, deflate (and zstd) by default; tests opt in explicitly.
    del client.headers["accept-encoding"]
    return client


# SSE parsing: one event per blank-line-terminated block, fields kept in order.


@dataclass
class Event:
    raw: bytes
    fields: list[tuple[str, str]]
    at: float

    @property
    def name(self) -> str:
        """``done`` for the nameless ``data: [DONE]`` event."""
        names = [v for k, v in self.fields if k == "event"]
        if not names:
            assert self.fields == [("data", "[DONE]")], self.raw
            return "done"
        return names[0]

    @property
    def id(self) -> str | None:
        ids = [v for k, v in self.fields if k == "id"]
        return ids[0] if ids else None

    @property
    def data(self) -> Any:
        [data] = [v for k, v in self.fields if k == "data"]
        return json.loads(data)


class SseReader:
    def __init__(self, response: httpx.Response) -> None:
        assert response.status_code == 200, response.read()
        self.response = response
        self._chunks = response.iter_raw()
        self._buffer = b""
        self.ended = False

    def next(self) -> Event | None:
        """The next event, or ``None`` once the body has ended (it must end on a boundary)."""
        while b"\n\n" not in self._buffer:
            try:
                self._buffer += next(self._chunks)
            except StopIteration:
                assert self._buffer == b"", self._buffer
                self.ended = True
                return None
        block, self._buffer = self._buffer.split(b"\n\n", 1)
        fields = []
        for line in block.decode().split("\n"):
            name, sep, value = line.partition(": ")
            assert sep and name in ("event", "id", "data"), line
            fields.append((name, value))
        return Event(block + b"\n\n", fields, time.monotonic())

    def rest(self) -> list[Event]:
        events = []
        while (event := self.next()) is not None:
            events.append(event)
        return events


def sse_request(
    client: Any, basin: Basin, path: str, headers: dict[str, Any] | None = None, **params: Any
) -> Any:
    return client.stream(
        "GET", path, params=params, headers=basin.headers(accept=SSE, **(headers or {}))
    )


def sse_events(
    basin: Basin, path: str, headers: dict[str, Any] | None = None, **params: Any
) -> list[Event]:
    """All events of a session that ends by itself."""
    with (
        session_client(basin.base_url) as client,
        sse_request(client, basin, path, headers, **params) as response,
    ):
        return SseReader(response).rest()


def names(events: list[Event]) -> list[str]:
    return [e.name for e in events]


# S2S parsing.


class S2sReader:
    def __init__(self, response: httpx.Response) -> None:
        assert response.status_code == 200, response.read()
        self.response = response
        self._chunks = response.iter_raw()
        self._decoder = FrameDecoder()
        self._frames: list[Frame] = []

    def next_frame(self) -> Frame | None:
        while not self._frames:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                assert self._decoder.pending == 0
                return None
            self._frames += self._decoder.feed(chunk)
            assert self._decoder.error is None, self._decoder.error
        return self._frames.pop(0)

    def next_batch(self) -> Any:
        """The next ``ReadBatch``, or ``None`` at the end of the body; no terminal frames."""
        frame = self.next_frame()
        if frame is None:
            return None
        assert not frame.terminal, frame.payload
        return messages.ReadBatch.FromString(frame.message())

    def rest(self) -> list[Any]:
        batches = []
        while (batch := self.next_batch()) is not None:
            batches.append(batch)
        return batches


def s2s_request(
    client: Any, basin: Basin, path: str, headers: dict[str, Any] | None = None, **params: Any
) -> Any:
    return client.stream(
        "GET", path, params=params, headers=basin.headers(content_type=S2S, **(headers or {}))
    )


def position(seq_num: int, timestamp: int) -> Any:
    return messages.StreamPosition(seq_num=seq_num, timestamp=timestamp)


def proto_records(json_records: list[dict[str, Any]]) -> list[Any]:
    return [
        messages.SequencedRecord(
            seq_num=r["seq_num"],
            timestamp=r["timestamp"],
            headers=[
                messages.Header(name=n.encode(), value=v.encode()) for n, v in r.get("headers", [])
            ],
            body=r.get("body", "").encode(),
        )
        for r in json_records
    ]


def heartbeat(tail: Any) -> bytes:
    return messages.ReadBatch(tail=tail).SerializeToString()


def json_error(response: httpx.Response) -> tuple[int, Any]:
    response.read()
    assert response.headers["content-type"] == "application/json"
    return response.status_code, response.json()


# SSE over HTTP/1.1.


@PROTOCOLS
def test_sse_response_headers_and_catch_up(basin: Basin, http_version: str) -> None:
    big = [{"body": "x" * 600, "timestamp": 1000 + i} for i in range(3)]
    path = basin.stream("big", big)
    with (
        session_client(basin.base_url, http_version) as client,
        sse_request(
            client, basin, path, {"accept-encoding": "gzip, zstd"}, seq_num=0, count=3
        ) as response,
    ):
        assert response.http_version == http_version
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        assert response.headers["cache-control"] == "no-cache, no-transform"
        assert response.headers["x-accel-buffering"] == "no"
        # Never HTTP-compressed, though the body is well above 1 KiB.
        assert "content-encoding" not in response.headers
        assert "content-length" not in response.headers
        events = SseReader(response).rest()
    assert names(events) == ["batch", "done"]
    batch, done = events
    assert [k for k, _ in batch.fields] == ["event", "id", "data"]
    assert batch.id == f"2,3,{3 * (8 + 600)}"
    assert batch.data == {
        "records": [{"seq_num": i, "timestamp": 1000 + i, "body": "x" * 600} for i in range(3)]
    }
    assert batch.raw.startswith(b'event: batch\nid: 2,3,1824\ndata: {"records":[{"seq_num":0,')
    assert done.raw == b"data: [DONE]\n\n"


def test_sse_ids_are_cumulative_within_a_response(basin: Basin) -> None:
    """Catch-up batches hold at most 1000 records; ids count records and metered bytes
    delivered so far in this response."""
    records = [{"body": f"{i:04d}", "timestamp": 5} for i in range(1000)]
    path = basin.stream("many", records)
    basin.append(path, records[:500])
    events = sse_events(basin, path, seq_num=10, count=1200)
    assert names(events) == ["batch", "batch", "done"]
    first, second = events[0].data["records"], events[1].data["records"]
    assert (len(first), len(second)) == (1000, 200)
    assert first[0]["seq_num"] == 10 and second[-1]["seq_num"] == 1209
    assert "tail" not in events[0].data and "tail" not in events[1].data
    assert events[0].id == f"1009,1000,{1000 * 12}"
    assert events[1].id == f"1209,1200,{1200 * 12}"


@pytest.mark.parametrize(
    ("params", "expected_seqs"),
    [
        ({"count": 2}, [0, 1]),
        ({"count": 3}, [0, 1, 2]),
        ({"count": 10}, [0, 1, 2]),  # fewer records than the limit: ends at the tail
        ({"bytes": 22}, [0, 1]),
        ({"bytes": 21}, [0]),  # no partial batches beyond a limit
        ({"bytes": 8}, []),  # even the first record is too big: nothing at all
        ({"count": 0}, []),
        ({"count": 2, "bytes": 9}, [0]),
        ({"until": 3000}, [0, 1]),
        ({"until": 1001}, [0]),
        ({"wait": 0, "count": 2}, [0, 1]),
    ],
)
def test_sse_session_ends_with_done_at_limits(
    basin: Basin, params: dict[str, Any], expected_seqs: list[int]
) -> None:
    path = basin.stream("limits", THREE)
    started = time.monotonic()
    events = sse_events(basin, path, seq_num=0, **params)
    assert time.monotonic() - started < 2
    # Bounded reads without ``wait`` never follow: no ping, just the records and done.
    assert names(events) == ["batch"] * bool(expected_seqs) + ["done"]
    if expected_seqs:
        batch = events[0]
        assert batch.data == {"records": [THREE_JSON[s] for s in expected_seqs]}
        size = sum(THREE_SIZES[s] for s in expected_seqs)
        assert batch.id == f"{expected_seqs[-1]},{len(expected_seqs)},{size}"


def test_sse_wait_zero_stops_at_the_tail(basin: Basin) -> None:
    path = basin.stream("wait0", THREE)
    started = time.monotonic()
    events = sse_events(basin, path, seq_num=0, wait=0)
    assert time.monotonic() - started < 2
    delivered = [e for e in events if e.name != "ping"]
    assert names(delivered) == ["batch", "done"]
    assert delivered[0].data == {"records": THREE_JSON}
    # Unbounded with wait=0 may start at the tail (it "may follow"): no 416, just done.
    at_tail = [e for e in sse_events(basin, path, seq_num=3, wait=0) if e.name != "ping"]
    assert names(at_tail) == ["done"]


def test_sse_wait_zero_sends_no_ping(basin: Basin) -> None:
    path = basin.stream("wait0ping", THREE)
    assert names(sse_events(basin, path, seq_num=0, wait=0)) == ["batch", "done"]
    assert names(sse_events(basin, path, seq_num=3, wait=0)) == ["done"]


@PROTOCOLS
def test_sse_follow_ping_then_live_batches(basin: Basin, http_version: str) -> None:
    path = basin.stream("follow", THREE)
    with (
        session_client(basin.base_url, http_version) as client,
        sse_request(client, basin, path, seq_num=1) as response,
    ):
        assert response.http_version == http_version
        reader = SseReader(response)
        catch_up = reader.next()
        assert catch_up is not None and catch_up.name == "batch"
        assert catch_up.data == {"records": THREE_JSON[1:]}  # stored records: no tail
        assert catch_up.id == "2,2,22"

        before = now_ms()
        ping = reader.next()
        assert ping is not None and ping.name == "ping"
        assert [k for k, _ in ping.fields] == ["event", "data"]
        assert ping.id is None
        assert ping.data["tail"] == {"seq_num": 3, "timestamp": 3000}
        assert list(ping.data) == ["timestamp", "tail"]
        assert before - 2000 <= ping.data["timestamp"] <= now_ms()
        # The ping is immediate on switching to following.
        assert ping.at - catch_up.at < 1.0

        ack = basin.append(path, [{"body": "d", "timestamp": 4000}, {"body": "e"}])
        live = reader.next()
        assert live is not None and live.name == "batch"
        tail = ack["tail"]
        assert tail["seq_num"] == 5
        assert live.data == {
            "records": [
                {"seq_num": 3, "timestamp": 4000, "body": "d"},
                {"seq_num": 4, "timestamp": tail["timestamp"], "body": "e"},
            ],
            "tail": tail,
        }
        assert live.id == "4,4,40"  # cumulative: 2 + 2 records, 22 + 18 bytes

        basin.append(path, [{"body": "f", "timestamp": 1}])
        second = reader.next()
        assert second is not None and second.name == "batch"
        assert second.data["tail"]["seq_num"] == 6
        # Monotonic timestamps: the client's 1 is raised to the previous record's.
        assert second.data["records"] == [
            {"seq_num": 5, "timestamp": tail["timestamp"], "body": "f"}
        ]
        assert second.id == "5,5,49"


def test_sse_follow_from_the_tail_starts_with_a_ping(basin: Basin) -> None:
    path = basin.stream("tail", THREE)
    with (
        session_client(basin.base_url) as client,
        sse_request(client, basin, path, tail_offset=0) as response,
    ):
        reader = SseReader(response)
        ping = reader.next()
        assert ping is not None and ping.name == "ping"
        assert ping.data["tail"] == {"seq_num": 3, "timestamp": 3000}
        basin.append(path, [{"body": "d", "timestamp": 3500}])
        live = reader.next()
        assert live is not None
        assert live.data == {
            "records": [{"seq_num": 3, "timestamp": 3500, "body": "d"}],
            "tail": {"seq_num": 4, "timestamp": 3500},
        }
        assert live.id == "3,1,9"


def test_sse_empty_stream_pings_with_the_zero_tail(basin: Basin) -> None:
    path = basin.stream("empty")
    with (
        session_client(basin.base_url) as client,
        sse_request(client, basin, path, seq_num=0) as response,
    ):
        ping = SseReader(response).next()
        assert ping is not None and ping.name == "ping"
        assert ping.data["tail"] == {"seq_num": 0, "timestamp": 0}


def test_sse_wait_is_an_inactivity_budget(basin: Basin) -> None:
    """``wait`` is re-armed by every delivered batch, not counted from the start."""
    path = basin.stream("budget", THREE)
    with (
        session_client(basin.base_url) as client,
        sse_request(client, basin, path, seq_num=3, wait=2) as response,
    ):
        reader = SseReader(response)
        started = time.monotonic()
        ping = reader.next()
        assert ping is not None and ping.name == "ping"
        time.sleep(1.2)
        basin.append(path, [{"body": "d", "timestamp": 4000}])
        live = reader.next()
        assert live is not None and live.name == "batch"
        assert live.data["tail"] == {"seq_num": 4, "timestamp": 4000}
        done = reader.next()
        assert done is not None and done.name == "done"
        assert reader.next() is None
    assert done.at - live.at >= 1.8
    assert done.at - started >= 2.9
    assert done.at - started < 5


def test_sse_bounded_read_with_wait_follows(basin: Basin) -> None:
    """A limit stops following, unless ``wait`` > 0 (spec §4.3)."""
    path = basin.stream("bounded", THREE)
    with (
        session_client(basin.base_url) as client,
        sse_request(client, basin, path, seq_num=0, count=4, wait=5) as response,
    ):
        reader = SseReader(response)
        first, ping = reader.next(), reader.next()
        assert first is not None and ping is not None
        assert (first.name, ping.name) == ("batch", "ping")
        basin.append(path, [{"body": "d", "timestamp": 4000}, {"body": "e", "timestamp": 4000}])
        live = reader.next()
        assert live is not None
        # Only what keeps the running count within the limit; then the session is over.
        assert live.data == {
            "records": [{"seq_num": 3, "timestamp": 4000, "body": "d"}],
            "tail": {"seq_num": 5, "timestamp": 4000},
        }
        assert live.id == "3,4,40"
        rest = reader.rest()
    assert names(rest) == ["done"]
    assert rest[0].at - live.at < 1


def test_sse_until_stops_a_live_session(basin: Basin) -> None:
    path = basin.stream("until", THREE)
    with (
        session_client(basin.base_url) as client,
        sse_request(client, basin, path, seq_num=2, until=5000, wait=5) as response,
    ):
        reader = SseReader(response)
        assert names([reader.next(), reader.next()]) == ["batch", "ping"]  # type: ignore[list-item]
        basin.append(path, [{"body": "d", "timestamp": 4999}, {"body": "e", "timestamp": 5000}])
        live = reader.next()
        assert live is not None
        assert [r["seq_num"] for r in live.data["records"]] == [3]
        assert live.data["tail"]["seq_num"] == 5
        assert names(reader.rest()) == ["done"]


def test_sse_records_in_base64_format(basin: Basin) -> None:
    path = basin.stream("b64")
    records = [
        {"body": base64.b64encode(b"\xff\x00bin").decode(), "timestamp": 10},
        {
            "headers": [[base64.b64encode(b"\x80k").decode(), base64.b64encode(b"").decode()]],
            "timestamp": 11,
        },
    ]
    basin.append(path, records, s2_format="base64")
    events = sse_events(basin, path, {"s2-format": "base64"}, seq_num=0, count=2)
    assert names(events) == ["batch", "done"]
    assert events[0].data == {
        "records": [
            {"seq_num": 0, "timestamp": 10, "body": "/wBiaW4="},
            {"seq_num": 1, "timestamp": 11, "headers": [["gGs=", ""]]},
        ]
    }
    # The same records in the raw format: invalid UTF-8 becomes U+FFFD.
    raw = sse_events(basin, path, {"s2-format": "raw"}, seq_num=0, count=2)
    assert raw[0].data["records"][0]["body"] == "\ufffd\x00bin"
    assert raw[0].data["records"][1]["headers"] == [["\ufffdk", ""]]
    with (
        session_client(basin.base_url) as client,
        sse_request(client, basin, path, {"s2-format": "hex"}, seq_num=0) as response,
    ):
        status, body = json_error(response)
    assert (status, body["code"]) == (400, "bad_header")


def test_sse_416_before_streaming(basin: Basin) -> None:
    path = basin.stream("range", THREE)
    tail_body = {"tail": {"seq_num": 3, "timestamp": 3000}}
    with session_client(basin.base_url) as client:
        cases: list[dict[str, Any]] = [
            {"seq_num": 4},
            {"seq_num": 3, "count": 1},  # at the tail and not allowed to follow
            {"tail_offset": 0, "until": 9000},
            {"timestamp": 3001},
        ]
        for params in cases:
            with sse_request(client, basin, path, **params) as response:
                assert json_error(response) == (416, tail_body), params
        # With clamp the start becomes the tail, and an unbounded read follows.
        with sse_request(client, basin, path, seq_num=99, clamp="true") as response:
            ping = SseReader(response).next()
            assert ping is not None and ping.name == "ping"
        # A timestamp start at the last record's timestamp is no 416.
        at_last = sse_events(basin, path, timestamp=3000, count=5)
        assert names(at_last) == ["batch", "done"]
        assert at_last[0].data == {"records": THREE_JSON[2:]}
        with sse_request(client, basin, "/v1/streams/missing/records", seq_num=0) as response:
            status, body = json_error(response)
        assert (status, body["code"]) == (404, "stream_not_found")


def test_sse_never_sends_error_events_in_normal_runs(basin: Basin) -> None:
    path = basin.stream("noerr", THREE)
    events = sse_events(basin, path, seq_num=0, count=3)
    events += sse_events(basin, path, seq_num=0, wait=1)
    assert "error" not in names(events)
    assert all(b"event: error" not in e.raw for e in events)


# Last-Event-ID resumption.


@pytest.mark.parametrize(
    ("last_event_id", "params", "expected_seqs", "expected_id"),
    [
        ("0,1,9", {"seq_num": 0, "count": 3}, [1, 2], "2,2,22"),
        ("0,1,9", {"seq_num": 0, "bytes": 31}, [1, 2], "2,2,22"),
        ("0,1,9", {"seq_num": 0, "bytes": 30}, [1], "1,1,13"),
        # The header overrides any start parameter.
        ("1,2,22", {"tail_offset": 3, "count": 3}, [2], "2,1,9"),
        ("1,2,22", {"timestamp": 1000, "count": 3}, [2], "2,1,9"),
        ("0,0,0", {"count": 1}, [1], "1,1,13"),
        # Limits saturate at zero: nothing left to deliver.
        ("0,5,0", {"seq_num": 0, "count": 3}, [], None),
        ("0,0,500", {"seq_num": 0, "bytes": 40}, [], None),
        # Without limits there is nothing to reduce.
        ("0,7,7", {"seq_num": 0, "until": 3000}, [1], "1,1,13"),
    ],
)
def test_sse_last_event_id_resumes_after_the_last_record(
    basin: Basin,
    last_event_id: str,
    params: dict[str, int],
    expected_seqs: list[int],
    expected_id: str | None,
) -> None:
    path = basin.stream("resume", THREE)
    events = sse_events(basin, path, {"last-event-id": last_event_id}, **params)
    assert names(events) == ["batch"] * bool(expected_seqs) + ["done"]
    if expected_seqs:
        assert events[0].data == {"records": [THREE_JSON[s] for s in expected_seqs]}
        assert events[0].id == expected_id


def test_sse_last_event_id_at_the_tail(basin: Basin) -> None:
    path = basin.stream("resume-tail", THREE)
    with session_client(basin.base_url) as client:
        # Bounded and at the tail: 416, like any other start at the tail.
        with sse_request(client, basin, path, {"last-event-id": "2,3,31"}, count=5) as response:
            assert json_error(response) == (416, {"tail": {"seq_num": 3, "timestamp": 3000}})
        # Unbounded: follows from the tail.
        with sse_request(client, basin, path, {"last-event-id": "2,3,31"}, seq_num=0) as response:
            ping = SseReader(response).next()
            assert ping is not None and ping.name == "ping"
        # Beyond the tail: 416 unless clamped.
        with sse_request(client, basin, path, {"last-event-id": "7,0,0"}) as response:
            assert json_error(response)[0] == 416
        with sse_request(
            client, basin, path, {"last-event-id": "7,0,0"}, clamp="true", wait=0
        ) as response:
            assert names([e for e in SseReader(response).rest() if e.name != "ping"]) == ["done"]


@pytest.mark.parametrize(
    "value",
    [
        "",
        "1",
        "1,2",
        "1,2,3,4",
        "a,b,c",
        "-1,0,0",
        "1.0,0,0",
        "1, 2,3",
        "1,,3",
        "0x1,0,0",
        "18446744073709551616,0,0",  # seq_num beyond u64
        "١,0,0".encode(),  # a non-ASCII digit (sent as UTF-8)
    ],
)
def test_sse_malformed_last_event_id_is_bad_header(basin: Basin, value: str | bytes) -> None:
    path = basin.stream("badid", THREE)
    with (
        session_client(basin.base_url) as client,
        sse_request(client, basin, path, {"last-event-id": value}, seq_num=0) as response,
    ):
        status, body = json_error(response)
    assert (status, body["code"]) == (400, "bad_header")
    assert set(body) == {"code", "message"}
    assert "last-event-id" in body["message"].lower()


@pytest.mark.parametrize(
    ("value", "expected_status"),
    [
        pytest.param(
            "+1,0,0",
            200,
        ),
        pytest.param(
            "1,18446744073709551616,0",
            400,
        ),
    ],
)
def test_sse_last_event_id_number_syntax_matches_the_reference(
    basin: Basin, value: str, expected_status: int
) -> None:
    path = basin.stream("numid", THREE)
    with (
        session_client(basin.base_url) as client,
        sse_request(client, basin, path, {"last-event-id": value}, count=5) as response,
    ):
        response.read()
        assert response.status_code == expected_status


def test_last_event_id_is_ignored_outside_sse(basin: Basin) -> None:
    path = basin.stream("lei-unary", THREE)
    unary = basin.http.get(
        path, params={"seq_num": 0}, headers=basin.headers(last_event_id="garbage")
    )
    assert unary.status_code == 200
    assert unary.json() == {"records": THREE_JSON}
    with (
        session_client(basin.base_url) as client,
        s2s_request(
            client, basin, path, {"last-event-id": "1,1,1"}, seq_num=0, count=3
        ) as response,
    ):
        batches = S2sReader(response).rest()
    assert [len(b.records) for b in batches] == [3]


def test_sse_zero_count_with_wait_at_the_tail_pings_then_waits(basin: Basin) -> None:
    path = basin.stream("zero-wait", THREE)
    started = time.monotonic()
    events = sse_events(basin, path, seq_num=3, count=0, wait=1)
    assert names(events) == ["ping", "done"]
    assert time.monotonic() - started >= 0.9


# S2S read sessions over HTTP/1.1 and h2c.


@PROTOCOLS
def test_s2s_catch_up_heartbeat_and_live_batches(basin: Basin, http_version: str) -> None:
    path = basin.stream("s2s", THREE)
    with (
        session_client(basin.base_url, http_version) as client,
        s2s_request(client, basin, path, {"accept-encoding": "gzip"}, seq_num=0) as response,
    ):
        assert response.http_version == http_version
        assert response.headers["content-type"] == "s2s/proto"
        assert response.headers["cache-control"] == "no-cache, no-transform"
        assert response.headers["x-accel-buffering"] == "no"
        assert "content-encoding" not in response.headers
        reader = S2sReader(response)

        catch_up = reader.next_frame()
        assert catch_up is not None
        assert (catch_up.terminal, catch_up.compression) == (False, Compression.NONE)
        # Stored records, canonical encoding, no tail.
        assert catch_up.message() == (
            messages.ReadBatch(records=proto_records(THREE_JSON)).SerializeToString()
        )

        beat = reader.next_frame()
        assert beat is not None and not beat.terminal
        assert beat.message() == heartbeat(position(3, 3000))

        ack = basin.append(path, [{"body": "d", "timestamp": 4000, "headers": [["k", ""]]}])
        live = reader.next_batch()
        assert live == messages.ReadBatch(
            records=proto_records(
                [{"seq_num": 3, "timestamp": 4000, "headers": [["k", ""]], "body": "d"}]
            ),
            tail=position(4, 4000),
        )
        assert ack["tail"] == {"seq_num": 4, "timestamp": 4000}


@PROTOCOLS
def test_s2s_empty_stream_heartbeat_is_byte_exact(basin: Basin, http_version: str) -> None:
    path = basin.stream("s2s-empty")
    with (
        session_client(basin.base_url, http_version) as client,
        s2s_request(client, basin, path, seq_num=0) as response,
    ):
        frame = S2sReader(response).next_frame()
    assert frame is not None
    # A set but all-default tail is still present on the wire: field 2, length 0.
    assert frame.message() == b"\x12\x00" == heartbeat(position(0, 0))


@PROTOCOLS
@pytest.mark.parametrize(
    ("params", "expected_seqs"),
    [
        ({"count": 2}, [0, 1]),
        ({"count": 3}, [0, 1, 2]),
        ({"bytes": 22}, [0, 1]),
        ({"until": 2000}, [0]),
        ({"wait": 0, "count": 5}, [0, 1, 2]),
        ({"bytes": 1}, []),
    ],
)
def test_s2s_session_ends_without_terminal_frame_at_limits(
    basin: Basin, http_version: str, params: dict[str, Any], expected_seqs: list[int]
) -> None:
    path = basin.stream("s2s-limits", THREE)
    started = time.monotonic()
    with (
        session_client(basin.base_url, http_version) as client,
        s2s_request(client, basin, path, seq_num=0, **params) as response,
    ):
        batches = S2sReader(response).rest()  # asserts: no terminal frame, nothing left over
    assert time.monotonic() - started < 2
    expected = [messages.ReadBatch(records=proto_records([THREE_JSON[s] for s in expected_seqs]))]
    assert batches == (expected if expected_seqs else [])


def test_s2s_bounded_with_wait_heartbeats_then_ends(basin: Basin) -> None:
    path = basin.stream("s2s-wait", THREE)
    with (
        session_client(basin.base_url) as client,
        s2s_request(client, basin, path, seq_num=0, count=10, wait=1) as response,
    ):
        reader = S2sReader(response)
        started = time.monotonic()
        batches = reader.rest()
        elapsed = time.monotonic() - started
    assert [len(b.records) for b in batches] == [3, 0]
    assert not batches[0].HasField("tail")
    assert batches[1].tail == position(3, 3000)
    assert 0.8 <= elapsed < 3


def test_s2s_catch_up_batches_hold_at_most_1000_records(basin: Basin) -> None:
    records = [{"body": "r", "timestamp": 7} for _ in range(1000)]
    path = basin.stream("s2s-many", records)
    basin.append(path, records[:700])
    with (
        session_client(basin.base_url) as client,
        s2s_request(client, basin, path, seq_num=0, count=1700) as response,
    ):
        batches = S2sReader(response).rest()
    assert [len(b.records) for b in batches] == [1000, 700]
    assert [b.HasField("tail") for b in batches] == [False, False]
    assert [r.seq_num for b in batches for r in b.records] == list(range(1700))


def test_s2s_catch_up_batches_hold_at_most_one_mib(basin: Basin) -> None:
    """The reference cuts a catch-up batch before a record that would take it past 1 MiB."""
    body = "y" * (400 * 1024 - 8)  # metered 400 KiB
    path = basin.stream("s2s-mib")
    for _ in range(2):
        basin.append(path, [{"body": body, "timestamp": 1}, {"body": body, "timestamp": 1}])
    with (
        session_client(basin.base_url, read_s=20) as client,
        s2s_request(client, basin, path, seq_num=0, count=4) as response,
    ):
        batches = S2sReader(response).rest()
    assert [len(b.records) for b in batches] == [2, 2]


@PROTOCOLS
@pytest.mark.parametrize(
    ("accept_encoding", "compression"),
    [
        ("zstd", Compression.ZSTD),
        ("gzip", Compression.GZIP),
        ("gzip, zstd", Compression.ZSTD),
        ("gzip;q=1.0, zstd;q=0", Compression.ZSTD),  # q-values are ignored
        ("br, deflate", Compression.NONE),
        (None, Compression.NONE),
    ],
)
def test_s2s_per_message_compression(
    basin: Basin, http_version: str, accept_encoding: str | None, compression: Compression
) -> None:
    """Frames of messages of at least 1 KiB carry the compression flag bits (01 zstd,
    10 gzip) chosen from Accept-Encoding; the HTTP body itself is never encoded."""
    big = [{"body": "z" * 700, "timestamp": 100}, {"body": "z" * 700, "timestamp": 100}]
    path = basin.stream("s2s-zstd", big)
    headers = {} if accept_encoding is None else {"accept-encoding": accept_encoding}
    with (
        session_client(basin.base_url, http_version) as client,
        s2s_request(client, basin, path, headers, seq_num=0) as response,
    ):
        assert "content-encoding" not in response.headers
        reader = S2sReader(response)
        catch_up = reader.next_frame()
        beat = reader.next_frame()
        assert catch_up is not None and beat is not None
        message = catch_up.message()
        assert len(message) >= 1024
        assert catch_up.compression is compression
        if compression is not Compression.NONE:
            assert len(catch_up.payload) < len(message)
        assert messages.ReadBatch.FromString(message) == messages.ReadBatch(
            records=proto_records(
                [{"seq_num": i, "timestamp": 100, "body": "z" * 700} for i in range(2)]
            )
        )
        # Messages under 1 KiB (heartbeats, small live batches) are never compressed.
        assert beat.compression is Compression.NONE
        assert beat.message() == heartbeat(position(2, 100))
        basin.append(path, [{"body": "small", "timestamp": 100}])
        small = reader.next_frame()
        assert small is not None and small.compression is Compression.NONE
        big_live = [{"body": "q" * 2000, "timestamp": 100}]
        basin.append(path, big_live)
        live = reader.next_frame()
        assert live is not None and live.compression is compression
        assert messages.ReadBatch.FromString(live.message()).tail == position(4, 100)


def test_followers_of_one_block_each_get_their_own_format(basin: Basin) -> None:
    """Sessions following the same live block share its rendering per wire format only:
    SSE raw and base64, S2S plain and zstd, and a session whose limit cuts the block
    each receive exactly their own form."""
    path = basin.stream("shared-renderings", [{"body": "old", "timestamp": 100}])
    live = [{"body": "\u00e9" * 600, "timestamp": 200}, {"body": "tail", "timestamp": 200}]
    with contextlib.ExitStack() as stack:

        def open_session(headers: dict[str, str], s2s_mode: bool, **params: Any) -> Any:
            client = stack.enter_context(session_client(basin.base_url))
            request = s2s_request if s2s_mode else sse_request
            response = stack.enter_context(
                request(client, basin, path, headers, seq_num=1, **params)
            )
            return S2sReader(response) if s2s_mode else SseReader(response)

        sse_raw = open_session({}, False)
        sse_b64 = open_session({"s2-format": "base64"}, False)
        sse_cut = open_session({}, False, count=1, wait=30)
        s2s_plain = open_session({}, True)
        s2s_zstd = open_session({"accept-encoding": "zstd"}, True)
        for sse in (sse_raw, sse_b64, sse_cut):
            assert sse.next().name == "ping"
        for s2s_reader in (s2s_plain, s2s_zstd):
            assert not s2s_reader.next_batch().records
        basin.append(path, live)

        expected_tail = {"seq_num": 3, "timestamp": 200}
        raw = sse_raw.next()
        assert raw.name == "batch" and raw.id == "2,2,1220"
        assert raw.data == {
            "records": [
                {"seq_num": 1, "timestamp": 200, "body": "\u00e9" * 600},
                {"seq_num": 2, "timestamp": 200, "body": "tail"},
            ],
            "tail": expected_tail,
        }
        encoded = sse_b64.next().data
        assert [base64.b64decode(r["body"]) for r in encoded["records"]] == [
            ("\u00e9" * 600).encode(),
            b"tail",
        ]
        cut = sse_cut.next()
        assert cut.id == "1,1,1208"
        assert [r["seq_num"] for r in cut.data["records"]] == [1]
        assert sse_cut.next().name == "done"
        frames = [s2s_plain.next_frame(), s2s_zstd.next_frame()]
        assert frames[0] is not None and frames[0].compression is Compression.NONE
        assert frames[1] is not None and frames[1].compression is Compression.ZSTD
        batches = [messages.ReadBatch.FromString(f.message()) for f in frames if f is not None]
        assert batches[0] == batches[1]
        assert [r.body for r in batches[0].records] == [("\u00e9" * 600).encode(), b"tail"]
        assert batches[0].tail == position(3, 200)


@PROTOCOLS
def test_s2s_errors_before_the_session_are_json(basin: Basin, http_version: str) -> None:
    path = basin.stream("s2s-416", THREE)
    with session_client(basin.base_url, http_version) as client:
        with s2s_request(client, basin, path, seq_num=4) as response:
            assert json_error(response) == (416, {"tail": {"seq_num": 3, "timestamp": 3000}})
        with s2s_request(client, basin, path, seq_num=3, count=1) as response:
            assert json_error(response)[0] == 416
        with s2s_request(client, basin, path, seq_num=0, timestamp=0) as response:
            status, body = json_error(response)
            assert (status, body["code"]) == (422, "invalid")
        with s2s_request(client, basin, path, seq_num="x") as response:
            status, body = json_error(response)
            assert (status, body["code"]) == (400, "bad_query")


def test_s2s_read_ignores_the_s2_format_header(basin: Basin) -> None:
    path = basin.stream("s2s-fmt", THREE)
    with (
        session_client(basin.base_url) as client,
        s2s_request(client, basin, path, {"s2-format": "nonsense"}, seq_num=0, count=3) as response,
    ):
        response.read()
        assert response.status_code == 200, response.text


def test_s2s_wait_zero_sends_no_heartbeat(basin: Basin) -> None:
    path = basin.stream("s2s-wait0", THREE)
    with (
        session_client(basin.base_url) as client,
        s2s_request(client, basin, path, seq_num=0, wait=0) as response,
    ):
        batches = S2sReader(response).rest()
    assert [len(b.records) for b in batches] == [3]


def test_s2s_heartbeats_repeat_after_5_to_15_s_of_silence(basin: Basin) -> None:
    """The one test that waits for a periodic heartbeat (up to 15 s)."""
    path = basin.stream("s2s-beat", THREE)
    with (
        session_client(basin.base_url, read_s=20) as client,
        s2s_request(client, basin, path, seq_num=3) as response,
    ):
        reader = S2sReader(response)
        first = reader.next_batch()
        first_at = time.monotonic()
        second = reader.next_batch()
        gap = time.monotonic() - first_at
    assert first == second == messages.ReadBatch(tail=position(3, 3000))
    assert 4.9 <= gap <= 15.5


@PROTOCOLS
def test_s2s_lagging_follower_falls_back_to_storage(basin: Basin, http_version: str) -> None:
    """A follower that stops reading falls behind while ~19 MiB are appended (more blocks
    than its queue holds, more bytes than the sockets buffer); it then catches up from
    storage (batches without a tail), heartbeats at the tail and follows again, without
    losing or repeating a record. Records of 64 KiB metered fill catch-up batches of
    exactly 1 MiB (see test_catch_up_from_storage_with_batches_not_filled_exactly)."""
    path = basin.stream("lag")
    body = "L" * (64 * 1024 - 8)
    count = 300
    with (
        session_client(basin.base_url, http_version) as client,
        s2s_request(client, basin, path, seq_num=0) as response,
    ):
        reader = S2sReader(response)
        assert reader.next_batch() == messages.ReadBatch(tail=position(0, 0))
        for _ in range(count):  # one durable batch each; the session is not read meanwhile
            basin.append(path, [{"body": body, "timestamp": 1}])
        kinds: list[str] = []
        seqs: list[int] = []
        while len(seqs) < count:
            batch = reader.next_batch()
            assert batch is not None
            assert batch.records, "no heartbeat before the stream's tail is reached"
            seqs += [r.seq_num for r in batch.records]
            kinds.append("live" if batch.HasField("tail") else "storage")
        assert seqs == list(range(count))
        assert "storage" in kinds, kinds
        first_storage = kinds.index("storage")
        assert set(kinds[:first_storage]) == {"live"}
        assert set(kinds[first_storage:]) == {"storage"}
        # Caught up again: a heartbeat, then live batches.
        assert reader.next_batch() == messages.ReadBatch(tail=position(count, 1))
        basin.append(path, [{"body": "again", "timestamp": 2}])
        live = reader.next_batch()
        assert [r.seq_num for r in live.records] == [count]
        assert live.tail == position(count + 1, 2)


def test_catch_up_from_storage_with_batches_not_filled_exactly(
    server_logs: Path, unique: str
) -> None:
    """Records of 50,008 metered bytes: 20 fit in a 1 MiB catch-up batch, a 21st does not.
    120 of them (6 MB) are more than the streamer's 4 MiB of recent blocks, so the session
    reads them from the stored segments."""
    server = ServerProcess(server_logs)
    try:
        server.wait_healthy()
        b = Basin(server.url, f"rs-store-{unique}")
        try:
            path = b.stream("big")
            for _ in range(6):
                b.append(path, [{"body": "x" * 50_000, "timestamp": 1}] * 20)
            with (
                session_client(server.url, read_s=5) as client,
                s2s_request(client, b, path, seq_num=0, count=120) as response,
            ):
                batches = S2sReader(response).rest()
            assert [len(batch.records) for batch in batches] == [20] * 6
            assert httpx.get(f"{server.url}/health", timeout=2).status_code == 200
        finally:
            b.close()
    finally:
        server.kill()


# The official Python SDK (h2c, S2S read sessions).


def run_sdk(url: str, body: Callable[[S2], Awaitable[T]]) -> T:
    async def main() -> T:
        async with S2(
            "ignored",
            endpoints=Endpoints(account=url, basin=url),
            timeout=Timeout(request=timedelta(seconds=10)),
            retry=Retry(max_attempts=1),
        ) as s2:
            return await asyncio.wait_for(body(s2), 20)

    return asyncio.run(main())


async def sdk_stream(s2: S2, basin: str, name: str) -> S2Stream:
    await s2.create_basin(basin)
    b = s2.basin(basin)
    await b.create_stream(name)
    return b.stream(name)


def test_sdk_read_session_catch_up_then_live(server_url: str, unique: str) -> None:
    async def body(s2: S2) -> None:
        stream = await sdk_stream(s2, f"rs-sdk-live-{unique}", "s")
        ack = await stream.append(
            AppendInput(records=[Record(body=b"one"), Record(body=b"two", headers=[(b"k", b"v")])])
        )
        session = stream.read_session(start=SeqNum(0))
        async with session:
            first = await session.__anext__()
            assert [(r.seq_num, r.body, r.headers) for r in first.records] == [
                (0, b"one", []),
                (1, b"two", [(b"k", b"v")]),
            ]
            assert first.tail is None
            # The heartbeat sent on switching to following tells the SDK it is caught up.
            caught_up = await asyncio.wait_for(session.caught_up(), 5)
            assert caught_up == ack.tail == StreamPosition(2, ack.end.timestamp)

            later = await stream.append(AppendInput(records=[Record(body=b"three")]))
            live = await asyncio.wait_for(session.__anext__(), 5)
            assert [(r.seq_num, r.body) for r in live.records] == [(2, b"three")]
            assert live.tail == later.tail == StreamPosition(3, later.end.timestamp)
            assert session.is_caught_up()

    run_sdk(server_url, body)


def test_sdk_read_session_stops_at_limits(server_url: str, unique: str) -> None:
    async def body(s2: S2) -> None:
        stream = await sdk_stream(s2, f"rs-sdk-lim-{unique}", "s")
        await stream.append(AppendInput(records=[Record(body=b"%d" % i) for i in range(5)]))

        async def collect(**kwargs: Any) -> list[bytes]:
            out: list[bytes] = []
            async with stream.read_session(**kwargs) as session:
                async for batch in session:
                    out += [r.body for r in batch.records]
            return out

        assert await collect(start=SeqNum(1), limit=ReadLimit(count=3)) == [b"1", b"2", b"3"]
        assert await collect(start=SeqNum(0), limit=ReadLimit(bytes=9 * 2)) == [b"0", b"1"]
        assert await collect(start=TailOffset(2), limit=ReadLimit(count=100)) == [b"3", b"4"]

        # A bounded session with wait follows: the record appended later ends it.
        async def append_later() -> None:
            await asyncio.sleep(0.5)
            await stream.append(AppendInput(records=[Record(body=b"5"), Record(body=b"6")]))

        started = time.monotonic()
        appender = asyncio.create_task(append_later())
        got = await collect(start=SeqNum(3), limit=ReadLimit(count=3), wait=5)
        await appender
        assert got == [b"3", b"4", b"5"]
        assert time.monotonic() - started < 4

        with pytest.raises(ReadUnwrittenError) as caught:
            await collect(start=SeqNum(99))
        assert caught.value.tail == StreamPosition(7, (await stream.check_tail()).timestamp)
        assert await collect(start=SeqNum(99), clamp_to_tail=True, wait=1) == []

    run_sdk(server_url, body)


# Clients that go away.


def server_log(server_logs: Path, server_url: str) -> Path:
    port = urlsplit(server_url).port
    return server_logs / f"serve-{port}.log"


@pytest.mark.parametrize("http_version", ["HTTP/1.1", "HTTP/2"], ids=["h1", "h2c"])
@pytest.mark.parametrize("mode", ["sse", "s2s"])
def test_disconnect_mid_follow(
    basin: Basin, server_url: str, server_logs: Path, http_version: str, mode: str
) -> None:
    path = basin.stream("gone", THREE)
    log = server_log(server_logs, server_url)
    log_start = log.stat().st_size

    for _ in range(5):
        client = session_client(basin.base_url, http_version)
        request = sse_request if mode == "sse" else s2s_request
        with request(client, basin, path, seq_num=0) as response:
            if mode == "sse":
                reader: Any = SseReader(response)
                assert names([reader.next(), reader.next()]) == ["batch", "ping"]
            else:
                reader = S2sReader(response)
                assert [len(reader.next_batch().records) for _ in range(2)] == [3, 0]
        # Leaving the block closes the response mid-session; closing the client drops
        # the connection (HTTP/1.1) or resets the stream and the connection (h2c).
        client.close()

    # The server goes on serving, and appends are not held up by departed followers.
    assert basin.http.get("/health").status_code == 200
    started = time.monotonic()
    for i in range(30):
        basin.append(path, [{"body": f"after-{i}"}])
    assert time.monotonic() - started < 5
    with (
        session_client(basin.base_url, http_version) as client,
        s2s_request(client, basin, path, seq_num=0, count=33) as response,
    ):
        assert sum(len(b.records) for b in S2sReader(response).rest()) == 33
    # A live follower still gets new records.
    with (
        session_client(basin.base_url, http_version) as client,
        sse_request(client, basin, path, seq_num=33) as response,
    ):
        reader = SseReader(response)
        assert names([reader.next()]) == ["ping"]  # type: ignore[list-item]
        basin.append(path, [{"body": "live"}])
        live = reader.next()
        assert live is not None and live.data["records"][0]["body"] == "live"

    time.sleep(0.3)
    with log.open("rb") as f:
        f.seek(log_start)
        new_output = f.read().decode(errors="replace")
    for marker in ("Traceback", "ERROR", "Exception", "exception"):
        assert marker not in new_output, new_output
