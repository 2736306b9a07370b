"""A small HTTP/2 cleartext (prior knowledge) client on asyncio, for streaming sessions.

General-purpose clients send a request body before they read the response; an S2S
append session needs both directions at once. This client keeps that simple: one
connection multiplexes many requests; each ``H2Stream`` can send body data and read
response data independently. Received data is acknowledged (re-opening the flow
control window) only when the caller takes it, so what is buffered per stream is
bounded by the window.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import deque

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

WINDOW_BYTES = 16 * 1024 * 1024
READ_BYTES = 256 * 1024


class H2Error(Exception):
    """The connection or the stream failed."""


class H2Stream:
    def __init__(self, connection: H2Connection, stream_id: int) -> None:
        self._connection = connection
        self.stream_id = stream_id
        self._headers: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()
        self._chunks: deque[tuple[bytes, int]] = deque()
        self._readable = asyncio.Event()
        self._ended = False
        self._error: Exception | None = None

    async def response_headers(self) -> dict[str, str]:
        return await self._headers

    async def status(self) -> int:
        return int((await self._headers)[":status"])

    async def read(self) -> bytes:
        """The next piece of the response body; ``b""`` at its end."""
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self._ended:
                return b""
            self._readable.clear()
            await self._readable.wait()
        data, flow_length = self._chunks.popleft()
        self._connection.acknowledge(self.stream_id, flow_length)
        return data

    async def send(self, data: bytes, end: bool = False) -> None:
        await self._connection.send_data(self.stream_id, data, end)

    def cancel(self) -> None:
        self._connection.reset(self.stream_id)

    # Connection callbacks.

    def _on_headers(self, headers: list[tuple[bytes, bytes]]) -> None:
        if not self._headers.done():
            self._headers.set_result({k.decode(): v.decode() for k, v in headers})

    def _on_data(self, data: bytes, flow_length: int) -> None:
        self._chunks.append((data, flow_length))
        self._readable.set()

    def _on_end(self) -> None:
        self._ended = True
        self._readable.set()

    def _on_error(self, error: Exception) -> None:
        if self._ended:
            return
        self._error = error
        if not self._headers.done():
            self._headers.set_exception(error)
            self._headers.exception()  # retrieved; a reader still sees it
        self._readable.set()


class H2Connection:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, authority: str
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.authority = authority
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self._conn = h2.connection.H2Connection(config=config)
        self._streams: dict[int, H2Stream] = {}
        self._window_open = asyncio.Event()
        self._error: Exception | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, host: str, port: int) -> H2Connection:
        reader, writer = await asyncio.open_connection(host, port, limit=READ_BYTES)
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = cls(reader, writer, f"{host}:{port}")
        connection._start()
        return connection

    def _start(self) -> None:
        self._conn.initiate_connection()
        self._conn.update_settings(
            {
                h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: WINDOW_BYTES,
                h2.settings.SettingCodes.ENABLE_PUSH: 0,
            }
        )
        self._conn.increment_flow_control_window(WINDOW_BYTES)
        self._flush()
        self._task = asyncio.get_running_loop().create_task(self._read_loop())

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close_connection()
            self._flush()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._writer.close()
        with contextlib.suppress(Exception):
            await self._writer.wait_closed()

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    async def request(
        self,
        method: str,
        path: str,
        headers: list[tuple[str, str]],
        body: bytes | None = None,
        end: bool = True,
    ) -> H2Stream:
        """Start a request; with ``end=False`` the body stays open for ``H2Stream.send``."""
        if self._error is not None:
            raise self._error
        stream_id = self._conn.get_next_available_stream_id()
        stream = H2Stream(self, stream_id)
        self._streams[stream_id] = stream
        all_headers = [
            (":method", method),
            (":scheme", "http"),
            (":authority", self.authority),
            (":path", path),
            *headers,
        ]
        self._conn.send_headers(stream_id, all_headers, end_stream=end and not body)
        if body:
            await self.send_data(stream_id, body, end)
        else:
            self._flush()
        return stream

    async def send_data(self, stream_id: int, data: bytes, end: bool) -> None:
        view = memoryview(data)
        while view:
            if self._error is not None:
                raise self._error
            window = min(
                self._conn.local_flow_control_window(stream_id), self._conn.max_outbound_frame_size
            )
            if window <= 0:
                self._window_open.clear()
                await self._window_open.wait()
                continue
            self._conn.send_data(stream_id, bytes(view[:window]))
            view = view[window:]
            self._flush()
        if end:
            self._conn.end_stream(stream_id)
        self._flush()
        await self._writer.drain()

    def acknowledge(self, stream_id: int, flow_length: int) -> None:
        if flow_length and self._error is None:
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self._conn.acknowledge_received_data(flow_length, stream_id)
                self._flush()

    def reset(self, stream_id: int) -> None:
        stream = self._streams.pop(stream_id, None)
        if stream is not None and self._error is None:
            with contextlib.suppress(h2.exceptions.ProtocolError):
                self._conn.reset_stream(stream_id)
                self._flush()
            stream._on_error(H2Error("cancelled"))

    def _flush(self) -> None:
        data = self._conn.data_to_send()
        if data:
            self._writer.write(data)

    async def _read_loop(self) -> None:
        try:
            while True:
                data = await self._reader.read(READ_BYTES)
                if not data:
                    raise H2Error("the server closed the connection")
                for event in self._conn.receive_data(data):
                    self._dispatch(event)
                self._flush()
        except asyncio.CancelledError:
            self._fail(H2Error("connection closed"))
            raise
        except (OSError, H2Error, h2.exceptions.H2Error) as exc:
            # Any failure ends every stream on this connection.
            self._fail(exc if isinstance(exc, H2Error) else H2Error(str(exc)))

    def _dispatch(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.ResponseReceived):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                stream._on_headers(event.headers)
        elif isinstance(event, h2.events.DataReceived):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                stream._on_data(event.data, event.flow_controlled_length)
            else:
                self.acknowledge(event.stream_id, event.flow_controlled_length)
        elif isinstance(event, h2.events.StreamEnded):
            stream = self._streams.pop(event.stream_id, None)
            if stream is not None:
                stream._on_end()
        elif isinstance(event, h2.events.StreamReset):
            stream = self._streams.pop(event.stream_id, None)
            if stream is not None:
                stream._on_error(H2Error(f"stream reset by the server ({event.error_code})"))
            self._window_open.set()
        elif isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            self._window_open.set()
        elif isinstance(event, h2.events.ConnectionTerminated):
            raise H2Error(f"the server ended the connection ({event.error_code})")

    def _fail(self, error: Exception) -> None:
        self._error = error
        streams, self._streams = self._streams, {}
        for stream in streams.values():
            stream._on_error(error)
        self._window_open.set()
