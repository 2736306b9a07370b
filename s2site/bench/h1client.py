"""A small HTTP/1.1 client on asyncio with full-duplex bodies, for streaming sessions.

Each request gets its own TCP connection. The request body is sent with chunked
transfer coding and may stay open while the response is read, which is what an
S2S append session needs. It costs far less per message than HTTP/2 framing done
in Python, so the bench client stays out of the way of what it measures. Same
interface as ``h2client``: ``request`` returns a stream with ``status``, ``read``,
``send`` and ``cancel``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket

READ_LIMIT_BYTES = 4 * 1024 * 1024


class H1Error(Exception):
    """The connection failed or the response is not valid HTTP/1.1."""


class Dechunker:
    """Decodes the chunked transfer coding incrementally (trailers are skipped)."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._chunk_left = 0  # body bytes of the current chunk still to come
        self._crlf_left = 0  # bytes of the CRLF after a chunk still to skip
        self.ended = False

    def feed(self, data: bytes) -> bytes:
        buffer = self._buffer
        buffer += data
        out = bytearray()
        position = 0
        while position < len(buffer) and not self.ended:
            if self._chunk_left:
                take = min(self._chunk_left, len(buffer) - position)
                out += buffer[position : position + take]
                position += take
                self._chunk_left -= take
                if not self._chunk_left:
                    self._crlf_left = 2
            elif self._crlf_left:
                skip = min(self._crlf_left, len(buffer) - position)
                expected = b"\r\n"[2 - self._crlf_left :][:skip]
                if buffer[position : position + skip] != expected:
                    raise H1Error("a chunk does not end with CRLF")
                position += skip
                self._crlf_left -= skip
            else:
                line_end = buffer.find(b"\r\n", position)
                if line_end < 0:
                    if len(buffer) - position > 1024:
                        raise H1Error("a chunk size line is too long")
                    break
                size_field = bytes(buffer[position:line_end]).split(b";", 1)[0].strip()
                try:
                    size = int(size_field, 16)
                except ValueError:
                    raise H1Error(f"invalid chunk size {size_field!r}") from None
                if size == 0:
                    # The last chunk; its trailers end with an empty line.
                    if buffer.find(b"\r\n\r\n", line_end) < 0:
                        break
                    self.ended = True
                    position = len(buffer)
                    break
                position = line_end + 2
                self._chunk_left = size
        del buffer[:position]
        return bytes(out)


class H1Stream:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._head: asyncio.Future[tuple[int, dict[str, str]]] = asyncio.ensure_future(
            self._read_head()
        )
        self._chunked = False
        self._dechunker = Dechunker()
        self._remaining: int | None = None
        self._ended = False

    async def _read_head(self) -> tuple[int, dict[str, str]]:
        try:
            raw = await self._reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError) as exc:
            raise H1Error(f"no response: {exc}") from None
        lines = raw.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise H1Error(f"invalid status line {lines[0]!r}")
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        if not self._chunked and "content-length" in headers:
            self._remaining = int(headers["content-length"])
        return int(parts[1]), headers

    async def status(self) -> int:
        return (await self._head)[0]

    async def response_headers(self) -> dict[str, str]:
        return (await self._head)[1]

    async def read(self) -> bytes:
        """The next piece of the response body; ``b""`` at its end."""
        await self._head
        if self._ended:
            return b""
        try:
            if self._chunked:
                return await self._read_chunk()
            if self._remaining is not None:
                if self._remaining == 0:
                    self._ended = True
                    return b""
                data = await self._reader.read(min(self._remaining, READ_LIMIT_BYTES))
                if not data:
                    raise H1Error("the body ended early")
                self._remaining -= len(data)
                return data
            data = await self._reader.read(READ_LIMIT_BYTES)
            self._ended = not data
            return data
        except (asyncio.IncompleteReadError, OSError) as exc:
            raise H1Error(f"reading the body failed: {exc}") from None

    async def _read_chunk(self) -> bytes:
        # Whatever arrived, de-chunked: one read for many small chunks (a follower's
        # live batches), rather than three awaits per chunk.
        while True:
            data = await self._reader.read(READ_LIMIT_BYTES)
            if not data:
                raise H1Error("the body ended inside its chunked coding")
            body = self._dechunker.feed(data)
            if self._dechunker.ended:
                self._ended = True
            if body or self._ended:
                return body

    async def send(self, data: bytes, end: bool = False) -> None:
        """Send a piece of a chunked request body (``end`` closes it)."""
        if data:
            self._writer.write(b"%x\r\n%b\r\n" % (len(data), data))
        if end:
            self._writer.write(b"0\r\n\r\n")
        await self._writer.drain()

    def cancel(self) -> None:
        self._head.cancel()
        self._writer.close()


class H1Connection:
    """Opens one TCP connection per request (same interface as ``H2Connection``)."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.authority = f"{host}:{port}"
        self._writers: list[asyncio.StreamWriter] = []

    async def request(
        self,
        method: str,
        path: str,
        headers: list[tuple[str, str]],
        body: bytes | None = None,
        end: bool = True,
    ) -> H1Stream:
        """Start a request; with ``end=False`` the body stays open for ``H1Stream.send``."""
        reader, writer = await asyncio.open_connection(self.host, self.port, limit=READ_LIMIT_BYTES)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._writers.append(writer)
        lines = [f"{method} {path} HTTP/1.1", f"host: {self.authority}"]
        lines += [f"{name}: {value}" for name, value in headers]
        if end:
            lines.append(f"content-length: {len(body or b'')}")
        else:
            lines.append("transfer-encoding: chunked")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if end:
            writer.write(head + (body or b""))
        else:
            writer.write(head + (b"%x\r\n%b\r\n" % (len(body), body) if body else b""))
        await writer.drain()
        return H1Stream(reader, writer)

    async def close(self) -> None:
        for writer in self._writers:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
        self._writers.clear()
