"""ASGI middleware at the HTTP edge: CORS, raw-path routing, compression, body limits.

Order, outermost first (spec §1.6, §1.7):

* ``Cors`` -- applies to every response, including errors and unknown paths;
  any OPTIONS request is a preflight answered here with an empty 200.
* ``HeadWithoutBody`` -- a HEAD response keeps the GET response's headers but
  carries no body, on HTTP/1.1 and HTTP/2 alike (the HTTP/2 layer sends what it
  is given).
* ``V1Edge`` -- only for ``/v1/…``: routes on the raw path, rejects unsupported
  ``Content-Encoding`` with 415, decompresses gzip/zstd request bodies and
  compresses responses of 1 KiB or more (never SSE or S2S) as ``Accept-Encoding``
  allows.
* ``BodyLimit`` -- wraps Django: a unary body larger than 2 MiB is cut off and
  flagged, so the view answers ``bad_json`` / ``bad_proto`` instead of buffering it.

Problems found while reading the body are recorded in ``scope["s2.body_error"]``
for the handler to report with the right S2 error code.
"""

from __future__ import annotations

import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol

import zstandard

from s2site.api.request import BODY_ERROR_SCOPE_KEY
from storagecore import limits

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_V1_PREFIX = "/v1/"
_NO_COMPRESSION_TYPES = (b"text/event-stream", b"s2s/proto")
_SUPPORTED_ENCODINGS = (b"gzip", b"zstd")
_VARY = b"origin, access-control-request-method, access-control-request-headers"


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return None


class Cors:
    """tower-http's ``CorsLayer::very_permissive()``, as the reference configures it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = _header(scope, b"origin")
        common: list[tuple[bytes, bytes]] = []
        if origin is not None:
            common.append((b"access-control-allow-origin", origin))
        common.append((b"access-control-allow-credentials", b"true"))
        common.append((b"vary", _VARY))
        if scope["method"] == "OPTIONS":
            headers = list(common)
            method = _header(scope, b"access-control-request-method")
            if method is not None:
                headers.append((b"access-control-allow-methods", method))
            request_headers = _header(scope, b"access-control-request-headers")
            if request_headers is not None:
                headers.append((b"access-control-allow-headers", request_headers))
            headers.append((b"content-length", b"0"))
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return

        # Plain functions that return the next ``send``'s awaitable: a session's every
        # body message passes through these wrappers unchanged.
        def send_with_cors(message: Message) -> Awaitable[None]:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", ())
                    if k.lower() != b"access-control-allow-origin"
                ]
                message = dict(message, headers=headers + common)
            return send(message)

        await self.app(scope, receive, send_with_cors)


class _Decoder:
    """Incremental gzip/zstd decoding that never produces more than ``limit`` bytes."""

    # Compressed input is fed in small pieces so that one piece cannot expand into
    # more than a few MiB, however well it compresses.
    _PIECE_BYTES = 512

    def __init__(self, encoding: bytes, limit: int) -> None:
        self._zlib = zlib.decompressobj(wbits=31) if encoding == b"gzip" else None
        self._zstd = (
            None if self._zlib is not None else zstandard.ZstdDecompressor().decompressobj()
        )
        self.remaining = limit
        self._fed = False

    def decompress(self, data: bytes) -> bytes:
        self._fed = self._fed or bool(data)
        out = bytearray()
        view = memoryview(data)
        for start in range(0, len(view), self._PIECE_BYTES):
            piece = bytes(view[start : start + self._PIECE_BYTES])
            if self._zlib is not None:
                chunk = self._zlib.decompress(piece, self.remaining + 1)
                if self._zlib.unconsumed_tail:
                    raise _TooLarge()
            else:
                assert self._zstd is not None
                chunk = self._zstd.decompress(piece)
            out += chunk
            self.remaining -= len(chunk)
            if self.remaining < 0:
                raise _TooLarge()
        return bytes(out)

    def check_complete(self) -> None:
        """At the end of the body: a stream cut off before its end is corrupt."""
        if not self._fed:
            return
        if self._zlib is not None and not self._zlib.eof:
            raise zlib.error("unexpected end of gzip stream")
        if self._zstd is not None and not self._zstd.eof:
            raise zstandard.ZstdError("unexpected end of zstd frame")


class _TooLarge(Exception):
    pass


class V1Edge:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(_V1_PREFIX):
            await self.app(scope, receive, send)
            return
        raw_path = scope.get("raw_path")
        scope = dict(scope)
        if raw_path:
            # Route on the path as sent: ``%2F`` inside a stream name stays one segment.
            scope["path"] = bytes(raw_path).split(b"?", 1)[0].decode("latin-1")
        encoding = (_header(scope, b"content-encoding") or b"identity").strip().lower()
        if encoding not in (b"identity", b""):
            if encoding not in _SUPPORTED_ENCODINGS:
                await _send_unsupported_encoding(send)
                return
            receive = _decompressing(
                scope, receive, _Decoder(encoding, limits.unary_body_bytes_max)
            )
        await self.app(scope, receive, _compressing(scope, _without_page_headers(send)))


# Django's security middleware protects the admin's HTML pages; API responses carry
# exactly the reference server's headers.
_PAGE_HEADERS = frozenset(
    (
        b"x-frame-options",
        b"x-content-type-options",
        b"referrer-policy",
        b"cross-origin-opener-policy",
    )
)


def _without_page_headers(send: Send) -> Send:
    def send_api_headers(message: Message) -> Awaitable[None]:
        if message["type"] == "http.response.start":
            headers = [
                (k, v) for k, v in message.get("headers", ()) if k.lower() not in _PAGE_HEADERS
            ]
            message = dict(message, headers=headers)
        return send(message)

    return send_api_headers


async def _send_unsupported_encoding(send: Send) -> None:
    headers = [(b"accept-encoding", b"gzip,zstd"), (b"content-length", b"0")]
    await send({"type": "http.response.start", "status": 415, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def _decompressing(scope: Scope, receive: Receive, decoder: _Decoder) -> Receive:
    async def receive_decompressed() -> Message:
        message = await receive()
        if message["type"] != "http.request":
            return message
        try:
            body = decoder.decompress(message.get("body", b""))
            if not message.get("more_body", False):
                decoder.check_complete()
        except _TooLarge:
            scope.setdefault(BODY_ERROR_SCOPE_KEY, "length limit exceeded")
            return await _end_body_early(message, receive)
        except (zlib.error, zstandard.ZstdError) as exc:
            scope.setdefault(BODY_ERROR_SCOPE_KEY, f"error decompressing the body: {exc}")
            return await _end_body_early(message, receive)
        return {"type": "http.request", "body": body, "more_body": message.get("more_body", False)}

    return receive_decompressed


async def _end_body_early(message: Message, receive: Receive) -> Message:
    """Discard the rest of a body that will not be used; report it as ended."""
    while message["type"] == "http.request" and message.get("more_body", False):
        message = await receive()
    if message["type"] != "http.request":
        return message
    return {"type": "http.request", "body": b"", "more_body": False}


def _response_encoding(scope: Scope) -> bytes | None:
    """The encoding to use: highest q-value among gzip/zstd; ties go to the last listed."""
    accept = _header(scope, b"accept-encoding")
    if not accept:
        return None
    best: tuple[float, bytes] | None = None
    for item in accept.split(b","):
        name, _, params = item.strip().partition(b";")
        name = name.strip().lower()
        if name not in _SUPPORTED_ENCODINGS:
            continue
        quality = 1.0
        params = params.strip()
        if params.startswith(b"q="):
            try:
                quality = float(params[2:])
            except ValueError:
                continue
        if quality > 0 and (best is None or quality >= best[0]):
            best = (quality, name)
    return None if best is None else best[1]


class _Encoder(Protocol):
    def compress(self, data: bytes) -> bytes: ...
    def flush(self) -> bytes: ...


def _response_encoder(encoding: bytes) -> _Encoder:
    if encoding == b"gzip":
        return zlib.compressobj(wbits=31)
    return zstandard.ZstdCompressor().compressobj()


def _compressing(scope: Scope, send: Send) -> Send:
    encoding = _response_encoding(scope)
    if encoding is None or scope["method"] == "HEAD":
        return send
    chosen: bytes = encoding
    encoder: _Encoder | None = None
    # The start message is held back until the size is known: Django sends no
    # ``Content-Length``, but a body that arrives in one message has a known size
    # and is compressed only if it is large enough (spec §1.7).
    pending_start: Message | None = None

    async def start(message: Message, length: int | None) -> None:
        nonlocal encoder
        headers = list(message.get("headers", ()))
        if _compressible(message) and (length is None or length >= limits.compress_body_bytes_min):
            encoder = _response_encoder(chosen)
            headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
            headers += [(b"content-encoding", chosen), (b"vary", b"accept-encoding")]
            message = dict(message, headers=headers)
        await send(message)

    async def send_compressed(message: Message) -> None:
        nonlocal pending_start
        if message["type"] == "http.response.start":
            length = _content_length(message)
            if length is None and _compressible(message):
                pending_start = message
                return
            await start(message, length)
            return
        if message["type"] == "http.response.body":
            more = message.get("more_body", False)
            if pending_start is not None:
                held, pending_start = pending_start, None
                await start(held, None if more else len(message.get("body", b"")))
            if encoder is not None:
                data = encoder.compress(message.get("body", b""))
                if not more:
                    data += encoder.flush()
                message = {"type": "http.response.body", "body": data, "more_body": more}
        await send(message)

    return send_compressed


def _content_length(message: Message) -> int | None:
    for key, value in message.get("headers", ()):
        if key.lower() == b"content-length":
            return int(value)
    return None


def _compressible(message: Message) -> bool:
    """Whether the response may be compressed at all, whatever its size."""
    status = message["status"]
    if status < 200 or status in (204, 304):
        return False
    for key, value in message.get("headers", ()):
        key = key.lower()
        if key == b"content-encoding":
            return False
        if key == b"content-type" and value.split(b";", 1)[0].strip().lower() in (
            _NO_COMPRESSION_TYPES
        ):
            return False
    return True


class HeadWithoutBody:
    """Drops the body of responses to HEAD requests (Django renders it as for GET)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        finished = False

        async def send_without_body(message: Message) -> None:
            nonlocal finished
            if message["type"] == "http.response.body":
                if finished or message.get("more_body", False):
                    return
                finished = True
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app(scope, receive, send_without_body)


class BodyLimit:
    """Stops reading a unary request body once it exceeds 2 MiB and flags the request."""

    def __init__(self, app: ASGIApp, limit_bytes: int = limits.unary_body_bytes_max) -> None:
        self.app = app
        self.limit_bytes = limit_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        received = 0
        finished = False

        async def receive_limited() -> Message:
            nonlocal received, finished
            message = await receive()
            if finished or message["type"] != "http.request":
                return message
            received += len(message.get("body", b""))
            if received > self.limit_bytes:
                finished = True
                scope.setdefault(BODY_ERROR_SCOPE_KEY, "length limit exceeded")
                return await _end_body_early(message, receive)
            if not message.get("more_body", False):
                finished = True
            return message

        await self.app(scope, receive_limited, send)
