"""Sessions under adverse clients and at shutdown (spec §5, issue: robustness).

* On one HTTP/2 connection, a read session whose client stops consuming (its stream's
  flow-control window stays closed) must not hold up another session that keeps reading.
* Stopping the server ends open following sessions promptly and cleanly.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
import uuid
from pathlib import Path

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import httpx
import pytest

from streams.protocol import messages
from streams.protocol.s2s import Compression, Frame, FrameDecoder, encode_message
from tests.e2e.conftest import SHUTDOWN_TIMEOUT_S, ServerProcess

pytestmark = pytest.mark.e2e

RECORD = b"r" * (16 * 1024 - 8)  # 16 KiB metered
RECORDS = 64  # 1 MiB in all: far beyond a 64 KiB stream window


def _setup(url: str) -> tuple[str, str]:
    basin = f"rob-{uuid.uuid4().hex[:12]}"
    with httpx.Client(base_url=url) as client:
        assert client.post("/v1/basins", json={"basin": basin}).status_code == 201
        created = client.post("/v1/streams", json={"stream": "s"}, headers={"s2-basin": basin})
        assert created.status_code == 201
    return basin, "/v1/streams/s/records"


def _append(url: str, basin: str, path: str, count: int) -> None:
    body = RECORD.decode()
    with httpx.Client(base_url=url) as client:
        for _ in range(count):
            response = client.post(
                path, json={"records": [{"body": body}]}, headers={"s2-basin": basin}
            )
            assert response.status_code == 200, response.text


def test_a_stalled_stream_does_not_hold_up_its_connection(server_url: str) -> None:
    basin, path = _setup(server_url)
    port = int(server_url.rsplit(":", 1)[1])
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    # Default 64 KiB stream windows: the stalled stream's window closes after 4 records.
    conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 65_535})
    headers = [
        (":method", "GET"),
        (":scheme", "http"),
        (":authority", "localhost"),
        (":path", f"{path}?seq_num=0"),
        ("s2-basin", basin),
        ("content-type", "s2s/proto"),
    ]
    stalled = conn.get_next_available_stream_id()
    conn.send_headers(stalled, headers)
    reading = conn.get_next_available_stream_id()
    conn.send_headers(reading, headers)
    decoder = FrameDecoder()
    seen: list[int] = []
    stalled_bytes = 0
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(20)
        sock.sendall(conn.data_to_send())
        appender = threading.Thread(target=_append, args=(server_url, basin, path, RECORDS))
        appender.start()
        try:
            while len(seen) < RECORDS:
                data = sock.recv(1 << 20)
                assert data, "the server closed the connection"
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.DataReceived):
                        # The connection window is always given back; only the reading
                        # stream's own window is reopened.
                        conn.increment_flow_control_window(event.flow_controlled_length)
                        if event.stream_id == reading:
                            conn.increment_flow_control_window(
                                event.flow_controlled_length, stream_id=reading
                            )
                            for frame in decoder.feed(event.data):
                                assert not frame.terminal, frame.payload
                                batch = messages.ReadBatch.FromString(frame.message())
                                seen += [r.seq_num for r in batch.records]
                        else:
                            stalled_bytes += event.flow_controlled_length
                    elif isinstance(event, h2.events.StreamEnded | h2.events.StreamReset):
                        raise AssertionError(f"a session ended: {event}")
                sock.sendall(conn.data_to_send())
        finally:
            appender.join()
    assert seen == list(range(RECORDS))
    # The other session got no more than its window allowed.
    assert 0 < stalled_bytes <= 65_535
    assert httpx.get(f"{server_url}/health").status_code == 200


def test_stopping_the_server_ends_following_sessions(tmp_path: Path) -> None:
    """Followers are told the server is going away -- a retryable 503 ``unavailable``,
    as an SSE ``error`` event or an S2S terminal frame -- and the server exits at once
    rather than after its grace period."""
    server = ServerProcess(tmp_path)
    try:
        server.wait_healthy()
        basin, path = _setup(server.url)
        bodies: dict[str, bytes] = {}

        def follow(kind: str, http2: bool, accept: dict[str, str]) -> None:
            received = b""
            with (
                httpx.Client(
                    base_url=server.url, http1=not http2, http2=http2, timeout=30
                ) as client,
                client.stream(
                    "GET", path, params={"seq_num": 0}, headers={"s2-basin": basin, **accept}
                ) as response,
            ):
                assert response.status_code == 200
                try:
                    for chunk in response.iter_raw():
                        received += chunk
                except (httpx.RemoteProtocolError, h2.exceptions.ProtocolError):
                    # httpx's HTTP/2 client can trip over a PING that follows GOAWAY.
                    pass
            bodies[kind] = received

        threads = [
            threading.Thread(target=follow, args=("sse", False, {"accept": "text/event-stream"})),
            threading.Thread(target=follow, args=("s2s", True, {"content-type": "s2s/proto"})),
        ]
        for thread in threads:
            thread.start()
        time.sleep(1.0)  # both are following the (empty) stream's tail
        started = time.monotonic()
        code = server.stop(signal.SIGTERM)
        elapsed = time.monotonic() - started
        for thread in threads:
            thread.join(SHUTDOWN_TIMEOUT_S)
    finally:
        server.kill()
    assert code == 0, server.output()
    assert elapsed < SHUTDOWN_TIMEOUT_S / 2
    goodbye = {"code": "unavailable", "message": "the server is shutting down"}
    sse_events = bodies["sse"].split(b"\n\n")
    assert sse_events[0].startswith(b"event: ping")
    assert (
        sse_events[-2]
        == b"event: error\ndata: " + json.dumps(goodbye, separators=(",", ":")).encode()
    )
    frames = FrameDecoder().feed(bodies["s2s"])
    assert not frames[0].terminal  # the heartbeat
    last = frames[-1]
    assert last.terminal
    assert int.from_bytes(last.payload[:2], "big") == 503
    assert json.loads(last.payload[2:]) == goodbye


def _append_input(body: bytes) -> bytes:
    return messages.AppendInput(records=[messages.AppendRecord(body=body)]).SerializeToString()


def test_stopping_the_server_ends_an_open_append_session(tmp_path: Path) -> None:
    """An append session still sending when the server stops: what it sent is
    acknowledged, then a 503 ``unavailable`` terminal frame ends it; the server exits at
    once and nothing acknowledged is lost."""
    local = tmp_path / "data"
    server = ServerProcess(tmp_path, "--local-root", str(local))
    try:
        server.wait_healthy()
        basin, path = _setup(server.url)
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        conn.initiate_connection()
        stream_id = conn.get_next_available_stream_id()
        conn.send_headers(
            stream_id,
            [
                (":method", "POST"),
                (":scheme", "http"),
                (":authority", "localhost"),
                (":path", path),
                ("s2-basin", basin),
                ("content-type", "s2s/proto"),
            ],
        )
        frames: list[Frame] = []
        decoder = FrameDecoder()
        ended = False

        def pump(sock: socket.socket) -> None:
            nonlocal ended
            data = sock.recv(1 << 16)
            if not data:
                ended = True
                return
            try:
                events = conn.receive_data(data)
            except h2.exceptions.ProtocolError:
                ended = True
                return
            for event in events:
                if isinstance(event, h2.events.DataReceived) and event.stream_id == stream_id:
                    conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
                    frames.extend(decoder.feed(event.data))
                elif isinstance(event, h2.events.StreamEnded) and event.stream_id == stream_id:
                    ended = True
            sock.sendall(conn.data_to_send())

        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.settimeout(10)
            for i in range(5):
                conn.send_data(
                    stream_id, encode_message(_append_input(b"before-%d" % i), Compression.NONE)
                )
            sock.sendall(conn.data_to_send())
            while len(frames) < 5:
                pump(sock)
            started = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            while not ended:
                pump(sock)
        code = server.wait_exit(SHUTDOWN_TIMEOUT_S)
        elapsed = time.monotonic() - started
    finally:
        server.kill()
    assert code == 0, server.output()
    assert elapsed < SHUTDOWN_TIMEOUT_S / 2
    acks = [messages.AppendAck.FromString(f.message()) for f in frames if not f.terminal]
    assert [(a.start.seq_num, a.end.seq_num) for a in acks] == [(i, i + 1) for i in range(5)]
    last = frames[-1]
    assert last.terminal and int.from_bytes(last.payload[:2], "big") == 503
    assert json.loads(last.payload[2:])["code"] == "unavailable"
    # What was acknowledged is there after a restart on the same storage.
    again = ServerProcess(tmp_path, "--local-root", str(local))
    try:
        again.wait_healthy()
        tail = httpx.get(f"{again.url}{path}/tail", headers={"s2-basin": basin})
        assert tail.json()["tail"]["seq_num"] == 5
    finally:
        again.kill()
