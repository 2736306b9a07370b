"""The record routes as a raw ASGI application (spec §3, §4; ARCHITECTURE §1).

``/v1/streams/{stream}/records``: POST appends, GET reads;
``/v1/streams/{stream}/records/tail``: GET checks the tail. Inputs are extracted in
the reference server's order (spec §1.4), the stream is opened (created on demand
where the basin allows it), and the engine does the rest. Every failure is an
``S2Error`` rendered as JSON. Handlers stay short: parsing lives in
``s2site.api.request`` and ``streams.protocol``, the log in ``storagecore``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Hashable,
    Iterator,
    MutableMapping,
)
from dataclasses import dataclass, replace
from typing import Any, Protocol

from google.protobuf.message import DecodeError
from google.protobuf.unknown_fields import UnknownFieldSet

from s2site.api import request as req
from s2site.api.responses import dumps
from storagecore import limits
from storagecore.crypto import RecordCipher
from storagecore.encoding import encode_position
from storagecore.engine import Engine
from storagecore.errors import (
    BadHeader,
    BadJson,
    BadProto,
    ErrorCode,
    Invalid,
    ReadUnwritten,
    S2Error,
    Unavailable,
)
from storagecore.names import parse_stream_name
from storagecore.positions import AppendAck, StreamPosition
from storagecore.reader import ReadBatch, ReadLimits
from storagecore.records import AppendBatch, Record, check_fencing_token, parse_record
from storagecore.streamer import AppendSession
from streams import encryption, sessions
from streams.directory import AutoCreate, OpenStream, StreamDirectory
from streams.protocol import jsonrecords, messages, s2s

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

ROUTE = re.compile(r"^/v1/streams/([^/]+)/records(/tail)?$")
ENCRYPTION_KEY_HEADER = "s2-encryption-key"
PROTOBUF_TYPES = ("application/protobuf", "application/x-protobuf")
S2S_TYPE = "s2s/proto"
SSE_TYPE = "text/event-stream"


class DataPlane(Protocol):
    """What the record routes need from the running server."""

    @property
    def engine(self) -> Engine: ...

    @property
    def directory(self) -> StreamDirectory: ...

    @property
    def sessions(self) -> sessions.OpenSessions: ...


def is_records_path(path: str) -> bool:
    return ROUTE.match(path) is not None


class RecordsApp:
    def __init__(self, plane: Callable[[], DataPlane | None]) -> None:
        self._plane = plane

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = ROUTE.match(scope["path"])
        assert match is not None, "routed here only for record paths"
        raw_stream, is_tail = match.group(1), bool(match.group(2))
        method = scope["method"]
        allowed = ("GET", "HEAD") if is_tail else ("GET", "HEAD", "POST")
        if method not in allowed:
            await send_response(send, 405, b"", headers=[(b"allow", ",".join(allowed).encode())])
            return
        plane = self._plane()
        try:
            if plane is None:
                raise Unavailable("the server is starting or stopping")
            request = req.RawRequest(scope)
            if is_tail:
                await check_tail(plane, request, raw_stream, send)
            elif method == "POST":
                await append(plane, request, raw_stream, receive, send)
            else:
                await read(plane, request, raw_stream, receive, send)
        except S2Error as error:
            await send_json(send, error.status, error.body())


# Responses.


async def send_response(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    all_headers = list(headers or [])
    if content_type is not None:
        all_headers.append((b"content-type", content_type))
    all_headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": all_headers})
    await send({"type": "http.response.body", "body": body})


async def send_json(send: Send, status: int, value: Any) -> None:
    await send_response(send, status, dumps(value), b"application/json")


def _first_mime(value: str | None) -> str:
    if not value:
        return ""
    return value.split(",", 1)[0].split(";", 1)[0].strip().lower()


def _wants_protobuf(request: req.RawRequest) -> bool:
    return _first_mime(request.META.get("HTTP_ACCEPT")) in PROTOBUF_TYPES


# Shared extraction steps.


def _stream_name(raw: str) -> str:
    return req.path_param(raw, parse_stream_name)


def _encryption_key(request: req.RawRequest) -> str | None:
    """The key header, checked on every append and read even for plaintext streams (§7)."""
    value = req.header(request, ENCRYPTION_KEY_HEADER)
    if value is None:
        return None
    key = value.strip()
    if not 1 <= len(key) <= limits.encryption_key_header_chars_max:
        raise BadHeader.invalid(
            ENCRYPTION_KEY_HEADER,
            f"invalid encryption key: key material length {len(key)} is out of range",
        )
    return key


async def _read_body(receive: Receive, request: req.RawRequest, error: type[S2Error]) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise error("Failed to buffer the request body: client disconnected")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limits.unary_body_bytes_max:
            raise error("Failed to buffer the request body: length limit exceeded")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    problem = req.body_error(request)
    if problem:
        raise error(f"Failed to buffer the request body: {problem}")
    return b"".join(chunks)


@contextlib.contextmanager
def _counted(engine: Engine, kind: str) -> Iterator[None]:
    """Count an open streaming session of ``kind`` (for ``/metrics``)."""
    engine.observer.session_opened(kind)
    try:
        yield
    finally:
        engine.observer.session_closed(kind)


# Append (spec §3).


def parse_protobuf_append(body: bytes) -> AppendBatch:
    try:
        message = messages.AppendInput.FromString(body)
    except DecodeError as exc:
        raise BadProto(f"Failed to decode protobuf: {exc}") from None
    try:
        records, canonical_size = parse_protobuf_records(message.records)
    except Invalid:
        # Decoding comes first: a mistyped field is bad_proto even if a record is invalid.
        _reject_mistyped_fields(message)
        raise
    match = message.match_seq_num if message.HasField("match_seq_num") else None
    token = message.fencing_token if message.HasField("fencing_token") else None
    if match is not None:
        canonical_size += 1 + _varint_len(match)
    if token is not None:
        token_size = len(token.encode())
        canonical_size += 1 + _varint_len(token_size) + token_size
    if canonical_size != len(body):
        # Only a non-canonical body can hold unknown fields: check those (slow path).
        _reject_mistyped_fields(message)
    batch = AppendBatch.build(records, match, token)
    # Like the reference, records and the batch are validated before the token.
    if token is not None:
        check_fencing_token(token)
    return batch


def _varint_len(value: int) -> int:
    return max(1, (value.bit_length() + 6) // 7)


def _field_len(size: int) -> int:
    """Bytes of a length-delimited field holding ``size`` bytes (tag, length, payload)."""
    return 1 + _varint_len(size) + size


def parse_protobuf_records(raw_records: Any) -> tuple[list[Record], int]:
    """Validated records of an ``AppendInput``, and the size their canonical encoding
    would have (equal to the body's size exactly when it has no unknown fields). The
    common header-less record takes a short path: this loop runs once per record."""
    records: list[Record] = []
    add = records.append
    size_max = limits.record_metered_bytes_max
    encoded = 0
    for record in raw_records:
        body = record.body
        record_size = _field_len(len(body)) if body else 0
        if record.HasField("timestamp"):
            timestamp = record.timestamp
            record_size += 1 + _varint_len(timestamp)
        else:
            timestamp = None
        if record.headers:
            headers = [(h.name, h.value) for h in record.headers]
            for name, value in headers:
                header_size = (_field_len(len(name)) if name else 0) + (
                    _field_len(len(value)) if value else 0
                )
                record_size += _field_len(header_size)
            add(parse_record(timestamp, headers, body))
        else:
            size = 8 + len(body)
            if size > size_max:
                raise Invalid("record must have metered size less than 1 MiB")
            add(Record(timestamp, (), body, size))
        encoded += _field_len(record_size)
    return records, encoded


def _reject_mistyped_fields(message: Any) -> None:
    """A known field sent with the wrong wire type is a decode error for the reference
    (prost); the protobuf runtime keeps it as an unknown field instead. Unknown field
    numbers stay allowed."""
    if _has_mistyped_field(message):
        raise BadProto("Failed to decode protobuf: invalid wire type for a known field")


def _has_mistyped_field(message: Any) -> bool:
    known = message.DESCRIPTOR.fields_by_number
    if any(field.field_number in known for field in UnknownFieldSet(message)):
        return True
    for field, value in message.ListFields():
        if field.message_type is not None:
            values = value if field.is_repeated else [value]
            if any(_has_mistyped_field(item) for item in values):
                return True
    return False


async def append(
    plane: DataPlane, request: req.RawRequest, raw_stream: str, receive: Receive, send: Send
) -> None:
    basin = req.basin_header(request)
    name = _stream_name(raw_stream)
    content_type = _first_mime(request.META.get("CONTENT_TYPE"))
    key = _encryption_key(request)
    if content_type == S2S_TYPE:
        stream = await plane.directory.open(basin, name, AutoCreate.ON_APPEND)
        cipher = encryption.record_cipher(stream, key)
        with _counted(plane.engine, "append-s2s"), plane.sessions.track():
            await append_session(
                plane.engine,
                stream,
                request,
                receive,
                send,
                cipher=cipher,
                open_sessions=plane.sessions,
            )
        return
    if content_type in PROTOBUF_TYPES:
        batch = parse_protobuf_append(await _read_body(receive, request, BadProto))
    else:
        # The reference reads `s2-format` before it checks for a JSON content type.
        fmt = jsonrecords.Format.parse(req.header(request, jsonrecords.FORMAT_HEADER))
        if not req.is_json_content_type(request.META.get("CONTENT_TYPE")):
            raise BadJson("Expected request with `Content-Type: application/json`")
        request.body = await _read_body(receive, request, BadJson)
        batch = jsonrecords.parse_append(req.json_body(request), fmt)
    stream = await plane.directory.open(basin, name, AutoCreate.ON_APPEND)
    cipher = encryption.record_cipher(stream, key)
    if cipher is not None:
        batch = cipher.seal_batch(batch)
    ack = await plane.engine.append(stream.stream_id, batch, stream.settings)
    if _wants_protobuf(request):
        await send_response(send, 200, _ack_protobuf(ack), b"application/protobuf")
    else:
        await send_json(send, 200, ack.to_json())


def _ack_protobuf(ack: AppendAck) -> bytes:
    return (
        encode_position(1, ack.start.seq_num, ack.start.timestamp)
        + encode_position(2, ack.end.seq_num, ack.end.timestamp)
        + encode_position(3, ack.tail.seq_num, ack.tail.timestamp)
    )


# Append sessions (spec §5.4).

SESSION_QUEUE_INPUTS_MAX = 32
_END = object()


async def append_session(
    engine: Engine,
    stream: OpenStream,
    request: req.RawRequest,
    receive: Receive,
    send: Send,
    *,
    cipher: RecordCipher | None,
    open_sessions: sessions.OpenSessions | None = None,
) -> None:
    """Full duplex: inputs are decoded and admitted as they arrive, acknowledgements are
    sent in input order once durable. The first failure ends the session: inputs after
    it are never appended, earlier ones are acknowledged, then one terminal frame. When
    the server stops, inputs stop being admitted, those admitted are acknowledged, and a
    retryable ``unavailable`` terminal frame follows."""
    compression = s2s.choose_compression(req.header(request, "accept-encoding"))
    session = AppendSession()
    pending: asyncio.Queue[Any] = asyncio.Queue(maxsize=SESSION_QUEUE_INPUTS_MAX)
    disconnected = asyncio.Event()
    closing = open_sessions.closing if open_sessions is not None else asyncio.Event()

    async def read_inputs() -> None:
        decoder = s2s.FrameDecoder()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                disconnected.set()
                return
            try:
                for frame in decoder.feed(message.get("body", b"")):
                    if closing.is_set():
                        return  # the server is stopping: admit nothing more
                    batch = _session_input(frame)
                    if cipher is not None:
                        batch = cipher.seal_batch(batch)
                    append = engine.append(stream.stream_id, batch, stream.settings, session)
                    await pending.put(asyncio.ensure_future(append))
                if decoder.error is not None:
                    raise decoder.error
                if not message.get("more_body", False) and decoder.pending:
                    raise s2s.FrameError("the body ended inside a frame")
            except (s2s.FrameError, BadProto) as exc:
                await pending.put(
                    S2Error(f"Failed to decode S2S frame: {exc}", ErrorCode.BAD_FRAME)
                )
                break
            except S2Error as exc:
                await pending.put(exc)
                break
            if not message.get("more_body", False):
                break
        await pending.put(_END)
        await _until_disconnect(receive, disconnected)

    async def write_acks() -> None:
        carried: Any = None
        try:
            while True:
                item = carried if carried is not None else await pending.get()
                carried = None
                if item is _END:
                    return
                error = item if isinstance(item, S2Error) else None
                if error is None:
                    try:
                        ack = await item
                    except S2Error as exc:
                        error = exc
                    else:
                        frames = [s2s.encode_message(_ack_protobuf(ack), compression)]
                        # Acknowledgements already due leave in the same chunk (fewer sends).
                        while not pending.empty():
                            carried = pending.get_nowait()
                            if not _succeeded(carried):
                                break
                            ack = carried.result()
                            frames.append(s2s.encode_message(_ack_protobuf(ack), compression))
                            carried = None
                        await _send_chunk(send, b"".join(frames))
                        continue
                await _send_chunk(send, s2s.encode_terminal(error.status, dumps(error.body())))
                return
        finally:
            if isinstance(carried, asyncio.Future) and not carried.done():
                carried.cancel()

    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"s2s/proto"), *_SESSION_HEADERS],
        }
    )

    async def stop_when_closing() -> None:
        await closing.wait()
        # Behind every input already admitted: those are acknowledged first.
        await pending.put(Unavailable("the server is shutting down"))

    reader = asyncio.ensure_future(read_inputs())
    writer = asyncio.ensure_future(write_acks())
    stopper = asyncio.ensure_future(stop_when_closing())
    try:
        # The reader returns once the client has gone (it listens past the body), or when
        # the server stops; then the writer still acknowledges what was admitted.
        await asyncio.wait({writer, reader}, return_when=asyncio.FIRST_COMPLETED)
        if closing.is_set() and not disconnected.is_set():
            await writer
        if writer.done():
            writer.result()
    finally:
        for task in (writer, reader, stopper):
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        while not pending.empty():
            leftover = pending.get_nowait()
            if isinstance(leftover, asyncio.Future) and not leftover.done():
                leftover.cancel()
        if not disconnected.is_set():
            with contextlib.suppress(Exception):
                await send({"type": "http.response.body", "body": b"", "more_body": False})


def _succeeded(item: Any) -> bool:
    return (
        isinstance(item, asyncio.Future)
        and item.done()
        and not item.cancelled()
        and item.exception() is None
    )


def _session_input(frame: s2s.Frame) -> AppendBatch:
    return parse_protobuf_append(frame.message())


async def _until_disconnect(receive: Receive, disconnected: asyncio.Event) -> None:
    """After the body: keep listening, so that a client going away is noticed."""
    while not disconnected.is_set():
        message = await receive()
        if message["type"] == "http.disconnect":
            disconnected.set()


# Check tail (spec §4.5).


async def check_tail(
    plane: DataPlane, request: req.RawRequest, raw_stream: str, send: Send
) -> None:
    basin = req.basin_header(request)
    name = _stream_name(raw_stream)
    stream = await plane.directory.open(basin, name, AutoCreate.ON_READ)
    tail = await plane.engine.tail(stream.stream_id)
    await send_json(send, 200, {"tail": tail.to_json()})


# Read (spec §4).


@dataclass(frozen=True, slots=True)
class ReadRequest:
    seq_num: int | None
    timestamp: int | None
    tail_offset: int | None
    clamp: bool
    count: int | None
    bytes: int | None
    until: int | None
    wait_s: int | None

    @classmethod
    def parse(cls, request: req.RawRequest) -> ReadRequest:
        params = req.query(request)  # type: ignore[arg-type]
        seq_num = req.query_uint(params, "seq_num")
        timestamp = req.query_uint(params, "timestamp")
        tail_offset = req.query_uint(params, "tail_offset")
        clamp = req.query_bool(params, "clamp") or False
        count = req.query_uint(params, "count")
        size = req.query_uint(params, "bytes")
        until = req.query_uint(params, "until")
        wait_s = req.query_uint(params, "wait", limits.u32_max)
        return cls(seq_num, timestamp, tail_offset, clamp, count, size, until, wait_s)

    def validate(self) -> None:
        given = [v for v in (self.seq_num, self.timestamp, self.tail_offset) if v is not None]
        if len(given) > 1:
            raise Invalid("only one of seq_num, timestamp, or tail_offset can be provided")
        if self.timestamp is not None and self.until is not None and self.until <= self.timestamp:
            raise Invalid("start `timestamp` exceeds or equal to `until`")


async def read(
    plane: DataPlane, request: req.RawRequest, raw_stream: str, receive: Receive, send: Send
) -> None:
    basin = req.basin_header(request)
    name = _stream_name(raw_stream)
    read_request = ReadRequest.parse(request)
    if _first_mime(request.META.get("CONTENT_TYPE")) == S2S_TYPE:
        mode = "s2s"
    elif _first_mime(request.META.get("HTTP_ACCEPT")) == SSE_TYPE:
        mode = "sse"
    else:
        mode = "unary"
    key = _encryption_key(request)
    # S2S carries protobuf: the record format header does not apply there (spec §5.3).
    fmt = (
        jsonrecords.Format.RAW
        if mode == "s2s"
        else jsonrecords.Format.parse(req.header(request, jsonrecords.FORMAT_HEADER))
    )
    resume = _last_event_id(request) if mode == "sse" else None
    read_request.validate()
    stream = await plane.directory.open(basin, name, AutoCreate.ON_READ)
    cipher = encryption.record_cipher(stream, key)
    if mode != "unary":
        with _counted(plane.engine, f"read-{mode}"):
            await session_read(
                plane.engine,
                stream,
                read_request,
                mode,
                fmt,
                resume,
                request,
                receive,
                send,
                cipher=cipher,
                open_sessions=plane.sessions,
            )
        return
    batch, tail = await unary_read(plane.engine, stream.stream_id, read_request)
    if cipher is not None:
        batch = encryption.open_batch(cipher, batch)
    if _wants_protobuf(request):
        body = batch.payload
        if tail is not None:
            body += encode_position(2, tail.seq_num, tail.timestamp)
        await send_response(send, 200, body, b"application/protobuf")
        return
    document: dict[str, Any] = {"records": jsonrecords.render_records(batch.payload, fmt)}
    if tail is not None:
        document["tail"] = tail.to_json()
    await send_json(send, 200, document)


# Read sessions (spec §5.1, §5.3).

LAST_EVENT_ID_HEADER = "last-event-id"
_SESSION_HEADERS = [
    (b"cache-control", b"no-cache, no-transform"),
    (b"x-accel-buffering", b"no"),
]


def _last_event_id(request: req.RawRequest) -> tuple[int, int, int] | None:
    value = req.header(request, LAST_EVENT_ID_HEADER)
    if value is None:
        return None
    parts = [p[1:] if p.startswith("+") else p for p in value.split(",")]
    if len(parts) != 3 or not all(p.isascii() and p.isdigit() for p in parts):
        raise BadHeader.invalid(LAST_EVENT_ID_HEADER, f"invalid Last-Event-ID: {value}")
    seq_num, count, size = (int(p) for p in parts)
    if max(seq_num, count, size) > limits.u64_max:
        raise BadHeader.invalid(LAST_EVENT_ID_HEADER, f"invalid Last-Event-ID: {value}")
    return seq_num, count, size


async def session_read(
    engine: Engine,
    stream: OpenStream,
    read_request: ReadRequest,
    mode: str,
    fmt: jsonrecords.Format,
    resume: tuple[int, int, int] | None,
    request: req.RawRequest,
    receive: Receive,
    send: Send,
    *,
    cipher: RecordCipher | None,
    open_sessions: sessions.OpenSessions | None = None,
) -> None:
    wanted = ReadLimits(read_request.count, read_request.bytes, read_request.until)
    if resume is not None:
        # Resume after the last delivered record, with what is left of the limits.
        read_request = replace(
            read_request, seq_num=resume[0] + 1, timestamp=None, tail_offset=None
        )
        wanted = wanted.after(resume[1], resume[2])
    streamer = engine.streamer(stream.stream_id)
    await streamer.load()
    follow = sessions.may_follow(wanted, read_request.wait_s)
    start = await _resolve_start(engine, stream.stream_id, read_request, may_follow=follow)
    events = sessions.read_session(engine, stream.stream_id, start, wanted, read_request.wait_s)
    if cipher is not None:
        events = encryption.open_events(cipher, events)
    stopping = Unavailable("the server is shutting down")
    if mode == "s2s":
        compression = s2s.choose_compression(req.header(request, "accept-encoding"))
        session = _deliver_s2s(events, compression, send)
        content_type = b"s2s/proto"
        goodbye = s2s.encode_terminal(stopping.status, dumps(stopping.body()))
    else:
        session = _deliver_sse(events, fmt, engine, send)
        content_type = b"text/event-stream"
        goodbye = b"event: error\ndata: " + dumps(stopping.body()) + b"\n\n"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", content_type), *_SESSION_HEADERS],
        }
    )
    try:
        await sessions.run_until_disconnect(
            receive, session, open_sessions, lambda: _send_chunk(send, goodbye)
        )
    finally:
        with contextlib.suppress(Exception):
            await send({"type": "http.response.body", "body": b"", "more_body": False})


def _send_chunk(send: Send, data: bytes) -> Awaitable[None]:
    return send({"type": "http.response.body", "body": data, "more_body": True})


def _read_batch_message(records: bytes, tail: StreamPosition | None) -> bytes:
    if tail is None:
        return records
    return records + encode_position(2, tail.seq_num, tail.timestamp)


def _rendered(
    event: sessions.Batch, key: Hashable, render: Callable[[sessions.Batch, Any], bytes], fmt: Any
) -> bytes:
    """``render(event, fmt)``, shared with the other sessions following the same block."""
    if event.renderings is None:
        return render(event, fmt)
    rendered = event.renderings.get(key)
    if rendered is None:
        rendered = event.renderings[key] = render(event, fmt)
    return rendered


def _s2s_frame(event: sessions.Batch, compression: s2s.Compression) -> bytes:
    return s2s.encode_message(_read_batch_message(event.records.payload, event.tail), compression)


def _sse_data(event: sessions.Batch, fmt: jsonrecords.Format) -> bytes:
    """An SSE batch event's data line, with the blank line that ends the event."""
    document: dict[str, Any] = {"records": jsonrecords.render_records(event.records.payload, fmt)}
    if event.tail is not None:
        document["tail"] = event.tail.to_json()
    return dumps(document) + b"\n\n"


async def _deliver_s2s(
    events: AsyncIterator[sessions.SessionEvent], compression: s2s.Compression, send: Send
) -> None:
    try:
        async for event in events:
            if isinstance(event, sessions.Heartbeat):
                frame = s2s.encode_message(_read_batch_message(b"", event.tail), compression)
            else:
                frame = _rendered(event, ("s2s", compression), _s2s_frame, compression)
            await _send_chunk(send, frame)
    except S2Error as error:
        await _send_chunk(send, s2s.encode_terminal(error.status, dumps(error.body())))


async def _deliver_sse(
    events: AsyncIterator[sessions.SessionEvent],
    fmt: jsonrecords.Format,
    engine: Engine,
    send: Send,
) -> None:
    count = size = 0
    try:
        async for event in events:
            if isinstance(event, sessions.Heartbeat):
                ping = {"timestamp": engine.clock.now_ms(), "tail": event.tail.to_json()}
                await _send_chunk(send, b"event: ping\ndata: " + dumps(ping) + b"\n\n")
                continue
            batch = event.records
            count += batch.count
            size += batch.metered
            data = _rendered(event, ("sse", fmt), _sse_data, fmt)
            last_seq = batch.next_seq - 1
            await _send_chunk(
                send, f"event: batch\nid: {last_seq},{count},{size}\ndata: ".encode() + data
            )
    except S2Error as error:
        await _send_chunk(send, b"event: error\ndata: " + dumps(error.body()) + b"\n\n")
        return
    await _send_chunk(send, b"data: [DONE]\n\n")


async def unary_read(
    engine: Engine, stream_id: int, read_request: ReadRequest
) -> tuple[ReadBatch, StreamPosition | None]:
    """One bounded batch (spec §4.4); the tail is returned only for live records."""
    streamer = engine.streamer(stream_id)
    await streamer.load()
    count = min(_or(read_request.count, limits.read_count_max), limits.read_count_max)
    size = min(_or(read_request.bytes, limits.read_bytes_max), limits.read_bytes_max)
    wait_s = min(read_request.wait_s or 0, limits.read_wait_s_max)
    wanted = ReadLimits(count, size, read_request.until)
    start = await _resolve_start(engine, stream_id, read_request, may_follow=wait_s > 0)
    follower = streamer.follow() if wait_s > 0 else None
    try:
        batch = await engine.reader.read(streamer, start, wanted, count, size)
        # A zero limit at the tail still waits, like any read that may follow: the next
        # live batch (or the end of ``wait``) ends it, with nothing delivered.
        at_tail = batch.next_seq >= streamer.tail.seq_num
        if batch.count or follower is None or batch.limit_reached or not at_tail:
            return batch, None
        return await _wait_for_records(engine, streamer, follower, batch.next_seq, wanted, wait_s)
    finally:
        if follower is not None:
            streamer.unfollow(follower)


async def _resolve_start(
    engine: Engine, stream_id: int, read_request: ReadRequest, *, may_follow: bool
) -> int:
    streamer = engine.streamer(stream_id)
    tail = streamer.tail
    if read_request.timestamp is not None:
        if read_request.timestamp <= tail.timestamp:
            return await engine.reader.seq_for_timestamp(streamer, read_request.timestamp)
        if not read_request.clamp:
            raise ReadUnwritten(tail.seq_num, tail.timestamp)
        start = tail.seq_num
    elif read_request.seq_num is not None:
        start = read_request.seq_num
    else:
        start = max(0, tail.seq_num - (read_request.tail_offset or 0))
    if start > tail.seq_num:
        if not read_request.clamp:
            raise ReadUnwritten(tail.seq_num, tail.timestamp)
        start = tail.seq_num
    if start == tail.seq_num and not may_follow:
        raise ReadUnwritten(tail.seq_num, tail.timestamp)
    return start


async def _wait_for_records(
    engine: Engine,
    streamer: Any,
    follower: Any,
    next_seq: int,
    wanted: ReadLimits,
    wait_s: int,
) -> tuple[ReadBatch, StreamPosition | None]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_s
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            return ReadBatch(next_seq=next_seq), None
        if follower.lagging:
            # Fell behind: catch up from storage; such records carry no tail (spec §4.4).
            batch = await engine.reader.read(streamer, next_seq, wanted, wanted.count or 0)
            return batch, None
        cached = await follower.next(deadline)
        if cached is None:
            continue  # the deadline passed, or the follower fell behind
        block = cached.block
        if block.end_seq <= next_seq:
            continue
        batch = engine.reader.take(block, next_seq, wanted, wanted.count or 0, wanted.bytes)
        # A live batch whose first record is beyond a limit or ``until`` ends the read
        # with nothing delivered, hence no tail (like an empty catch-up read).
        return batch, (StreamPosition(block.end_seq, block.last_ts) if batch.count else None)


def _or(value: int | None, default: int) -> int:
    return default if value is None else value
