"""The parts of the S2 API that the bench uses, over HTTP/1.1 (``h1client``, the
default) or HTTP/2 cleartext with prior knowledge (``h2client``).

Streams are created and deleted with JSON requests; records flow through S2S
sessions (spec §5.2): an append session sends ``AppendInput`` frames and receives
``AppendAck`` frames in order, a read session receives ``ReadBatch`` frames.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol
from urllib.parse import quote, urlencode, urlsplit

from s2site.bench.h1client import H1Connection
from s2site.bench.h2client import H2Connection
from streams.protocol import messages, s2s


class HttpStream(Protocol):
    async def status(self) -> int: ...

    async def read(self) -> bytes: ...

    async def send(self, data: bytes, end: bool = False) -> None: ...

    def cancel(self) -> None: ...


async def read_body(stream: HttpStream) -> bytes:
    """The rest of a response body."""
    parts = []
    while chunk := await stream.read():
        parts.append(chunk)
    return b"".join(parts)


class Connection(Protocol):
    async def request(
        self,
        method: str,
        path: str,
        headers: list[tuple[str, str]],
        body: bytes | None = None,
        end: bool = True,
    ) -> HttpStream: ...

    async def close(self) -> None: ...


class S2Failure(Exception):
    """The server answered with an error (HTTP status or a terminal frame)."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> Endpoint:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http":
            raise ValueError(f"only http:// (h2c) endpoints are supported, not {url!r}")
        if not parts.hostname:
            raise ValueError(f"no host in {url!r}")
        return cls(parts.hostname, parts.port or 80)


@dataclass(frozen=True, slots=True)
class Target:
    """Where to send requests: from flags, else the S2 CLI's environment variables."""

    account: Endpoint
    basin_endpoint: Endpoint
    basin: str
    token: str

    @classmethod
    def from_env(cls, basin: str, endpoint: str | None = None) -> Target:
        account = endpoint or os.environ.get("S2_ACCOUNT_ENDPOINT")
        basin_url = endpoint or os.environ.get("S2_BASIN_ENDPOINT") or account
        if not account or not basin_url:
            raise ValueError("give --endpoint or set S2_ACCOUNT_ENDPOINT / S2_BASIN_ENDPOINT")
        return cls(
            Endpoint.parse(account),
            Endpoint.parse(basin_url.replace("{basin}", basin)),
            basin,
            os.environ.get("S2_ACCESS_TOKEN", "ignored"),
        )


class S2Client:
    def __init__(self, target: Target, http2: bool = False) -> None:
        self.target = target
        self.http2 = http2
        self._connections: list[Connection] = []

    async def connect(self) -> Connection:
        """A new connection to the basin endpoint (HTTP/2: sessions share it; HTTP/1.1:
        each request opens its own TCP connection)."""
        endpoint = self.target.basin_endpoint
        connection: Connection
        if self.http2:
            connection = await H2Connection.open(endpoint.host, endpoint.port)
        else:
            connection = H1Connection(endpoint.host, endpoint.port)
        self._connections.append(connection)
        return connection

    async def close(self) -> None:
        for connection in self._connections:
            await connection.close()
        self._connections.clear()

    def _headers(self, content_type: str | None = None) -> list[tuple[str, str]]:
        headers = [
            ("s2-basin", self.target.basin),
            ("authorization", f"Bearer {self.target.token}"),
        ]
        if content_type is not None:
            headers.append(("content-type", content_type))
        return headers

    async def _json(
        self, connection: Connection, method: str, path: str, body: Any = None
    ) -> tuple[int, Any]:
        payload = None if body is None else json.dumps(body).encode()
        content_type = None if body is None else "application/json"
        stream = await connection.request(method, path, self._headers(content_type), payload)
        status = await stream.status()
        raw = await read_body(stream)
        return status, (json.loads(raw) if raw else None)

    async def create_stream(self, connection: Connection, name: str, config: Any) -> None:
        body = {"stream": name, "config": config}
        status, reply = await self._json(connection, "POST", "/v1/streams", body)
        if status == 404 and isinstance(reply, dict) and reply.get("code") == "basin_not_found":
            status, reply = await self._json(
                connection, "POST", "/v1/basins", {"basin": self.target.basin}
            )
            if status not in (201, 409):
                raise S2Failure(f"creating basin {self.target.basin}: {status} {reply}")
            status, reply = await self._json(connection, "POST", "/v1/streams", body)
        if status != 201:
            raise S2Failure(f"creating stream {name}: {status} {reply}")

    async def delete_stream(self, connection: Connection, name: str) -> None:
        status, reply = await self._json(connection, "DELETE", f"/v1/streams/{quote(name)}")
        if status not in (202, 404):
            raise S2Failure(f"deleting stream {name}: {status} {reply}")

    async def append_session(self, connection: Connection, name: str) -> AppendSession:
        stream = await connection.request(
            "POST",
            f"/v1/streams/{quote(name, safe='')}/records",
            self._headers("s2s/proto"),
            end=False,
        )
        return AppendSession(stream)

    async def read_session(
        self, connection: Connection, name: str, seq_num: int, wait_s: int | None = None
    ) -> ReadSession:
        query = {"seq_num": seq_num} if wait_s is None else {"seq_num": seq_num, "wait": wait_s}
        stream = await connection.request(
            "GET",
            f"/v1/streams/{quote(name, safe='')}/records?{urlencode(query)}",
            self._headers("s2s/proto"),
        )
        return ReadSession(stream)

    async def read_session_sse(
        self, connection: Connection, name: str, seq_num: int
    ) -> SseReadSession:
        """A read session as server-sent events, bodies and headers in base64."""
        headers = [*self._headers(), ("accept", "text/event-stream"), ("s2-format", "base64")]
        stream = await connection.request(
            "GET", f"/v1/streams/{quote(name, safe='')}/records?seq_num={seq_num}", headers
        )
        return SseReadSession(stream)


async def _frames(stream: HttpStream) -> AsyncIterator[s2s.Frame]:
    status = await stream.status()
    if status != 200:
        raise S2Failure(f"session refused: {status} {(await read_body(stream))[:300]!r}")
    decoder = s2s.FrameDecoder()
    while chunk := await stream.read():
        for frame in decoder.feed(chunk):
            if frame.terminal:
                code = int.from_bytes(frame.payload[:2], "big")
                raise S2Failure(f"session ended by the server: {code} {frame.payload[2:]!r}")
            yield frame
    if decoder.pending:
        raise S2Failure("the session ended inside a frame")


class AppendSession:
    def __init__(self, stream: HttpStream) -> None:
        self._stream = stream

    async def send(self, append_input: bytes) -> None:
        """Send one serialised ``AppendInput``."""
        await self._stream.send(s2s.encode_message(append_input, s2s.Compression.NONE))

    async def close(self) -> None:
        """No more inputs: the server acknowledges what it has, then ends the response."""
        await self._stream.send(b"", end=True)

    async def acks(self) -> AsyncIterator[Any]:
        async for frame in _frames(self._stream):
            yield messages.AppendAck.FromString(frame.message())

    def cancel(self) -> None:
        self._stream.cancel()


class ReadSession:
    def __init__(self, stream: HttpStream) -> None:
        self._stream = stream

    async def batches(self) -> AsyncIterator[Any]:
        """``ReadBatch`` messages; heartbeats arrive as batches without records."""
        async for frame in _frames(self._stream):
            yield messages.ReadBatch.FromString(frame.message())

    def cancel(self) -> None:
        self._stream.cancel()


class SseHeader(NamedTuple):
    name: bytes
    value: bytes


class SseRecord(NamedTuple):
    """A record of an SSE batch, with the fields of a ``SequencedRecord`` that the bench reads."""

    seq_num: int
    timestamp: int
    headers: list[SseHeader]
    body: bytes


class SseBatch(NamedTuple):
    records: list[SseRecord]


class SseReadSession:
    """Server-sent events as batches shaped like ``ReadBatch`` messages (a ``ping`` as a
    batch without records), so that they are checked like S2S batches."""

    def __init__(self, stream: HttpStream) -> None:
        self._stream = stream

    async def batches(self) -> AsyncIterator[Any]:
        status = await self._stream.status()
        if status != 200:
            raise S2Failure(f"session refused: {status} {(await read_body(self._stream))[:300]!r}")
        buffer = b""
        while chunk := await self._stream.read():
            buffer += chunk
            *events, buffer = buffer.split(b"\n\n")
            for event in events:
                batch = _sse_batch(event)
                if batch is None:
                    return
                yield batch

    def cancel(self) -> None:
        self._stream.cancel()


def _sse_batch(event: bytes) -> SseBatch | None:
    """The ``ReadBatch`` an event stands for; ``None`` at ``[DONE]``."""
    kind, data = "message", b""
    for line in event.split(b"\n"):
        if line.startswith(b"event: "):
            kind = line[7:].decode()
        elif line.startswith(b"data: "):
            data = line[6:]
    if kind == "error":
        raise S2Failure(f"session ended by the server: {data[:300]!r}")
    if kind != "batch":
        return None if data == b"[DONE]" else SseBatch([])
    decode = base64.b64decode
    records = [
        SseRecord(
            item["seq_num"],
            item["timestamp"],
            [SseHeader(decode(name), decode(value)) for name, value in item.get("headers", ())],
            decode(item.get("body", "")),
        )
        for item in json.loads(data)["records"]
    ]
    return SseBatch(records)
