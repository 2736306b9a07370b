"""S2S framing (spec §5.2), sans-IO: bytes in, frames out; messages in, bytes out.

Frame layout (integers big-endian)::

    length (3 bytes) | flags (1 byte) | payload
    length = 1 + len(payload)           -- counts the flag byte, not itself
    flags: bit 7 terminal; bits 6..5 compression (00 none, 01 zstd, 10 gzip, 11 invalid);
           bit 4 "reconnect advised" (never set here); bits 3..0 reserved
    regular payload:  a protobuf message, optionally compressed
    terminal payload: 2-byte HTTP status + UTF-8 JSON error body, never compressed

Outgoing messages are compressed only when the client accepts zstd (preferred) or gzip
and the encoded message is at least 1 KiB.
"""

from __future__ import annotations

import enum
import gzip
import zlib
from dataclasses import dataclass

import zstandard

from storagecore import limits

FRAME_LENGTH_MAX = 2 * 1024 * 1024
PAYLOAD_BYTES_MAX = FRAME_LENGTH_MAX - 1
_TERMINAL = 0x80
_COMPRESSION_SHIFT = 5
_COMPRESSION_MASK = 0x60


class Compression(enum.IntEnum):
    NONE = 0
    ZSTD = 1
    GZIP = 2


class FrameError(ValueError):
    """The bytes are not a valid S2S frame stream (reported as ``bad_frame``)."""


@dataclass(frozen=True, slots=True)
class Frame:
    terminal: bool
    compression: Compression
    payload: bytes

    def message(self) -> bytes:
        """The protobuf message of a regular frame, decompressed."""
        if self.terminal:
            raise FrameError("unexpected terminal frame from the client")
        if self.compression is Compression.NONE:
            return self.payload
        try:
            if self.compression is Compression.ZSTD:
                # Streamed, across concatenated frames, never past the limit: the size a
                # frame header declares is not trusted.
                out = _zstd_decompress(self.payload)
            else:
                decoder = zlib.decompressobj(wbits=31)
                out = decoder.decompress(self.payload, PAYLOAD_BYTES_MAX + 1)
                if decoder.unconsumed_tail or not decoder.eof:
                    raise FrameError("gzip payload too large or truncated")
        except (zstandard.ZstdError, zlib.error) as exc:
            raise FrameError(f"invalid compressed payload: {exc}") from None
        if len(out) > PAYLOAD_BYTES_MAX:
            raise FrameError("decompressed payload too large")
        return out


_ZSTD_PIECE_BYTES = 1024


def _zstd_decompress(payload: bytes) -> bytes:
    """Every concatenated zstd frame, streamed in small pieces so that output stops at the
    limit whatever a frame header claims; a truncated frame or trailing garbage fails."""
    decompressor = zstandard.ZstdDecompressor()
    out = bytearray()
    data = payload
    if not data:
        raise FrameError("empty zstd payload")
    while data:
        decoder = decompressor.decompressobj()
        rest = b""
        for start in range(0, len(data), _ZSTD_PIECE_BYTES):
            out += decoder.decompress(data[start : start + _ZSTD_PIECE_BYTES])
            if len(out) > PAYLOAD_BYTES_MAX:
                raise FrameError("decompressed payload too large")
            if decoder.eof:
                rest = decoder.unused_data + data[start + _ZSTD_PIECE_BYTES :]
                break
        if not decoder.eof:
            raise FrameError("truncated zstd frame")
        data = rest
    return bytes(out)


class FrameDecoder:
    """Incremental decoder: ``feed`` bytes as they arrive, get the complete frames.

    Frames before a malformed one are still returned; the error is kept in ``error``
    and every later ``feed`` raises it."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.error: FrameError | None = None

    def feed(self, data: bytes) -> list[Frame]:
        if self.error is not None:
            raise self.error
        self._buffer += data
        frames: list[Frame] = []
        buffer = self._buffer
        try:
            while len(buffer) >= 3:
                length = int.from_bytes(buffer[:3], "big")
                if length < 1 or length > FRAME_LENGTH_MAX:
                    raise FrameError(f"invalid frame length {length}")
                if len(buffer) < 3 + length:
                    break
                flags = buffer[3]
                compression_bits = (flags & _COMPRESSION_MASK) >> _COMPRESSION_SHIFT
                if compression_bits == 3:
                    raise FrameError("invalid compression bits")
                frames.append(
                    Frame(
                        terminal=bool(flags & _TERMINAL),
                        compression=Compression(compression_bits),
                        payload=bytes(buffer[4 : 3 + length]),
                    )
                )
                del buffer[: 3 + length]
        except FrameError as exc:
            self.error = exc
        return frames

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame (non-zero at the end of the body means truncation)."""
        return len(self._buffer)


def choose_compression(accept_encoding: str | None) -> Compression:
    """zstd if the client lists it anywhere, else gzip, else none (q-values ignored)."""
    if not accept_encoding:
        return Compression.NONE
    names = {part.split(";", 1)[0].strip().lower() for part in accept_encoding.split(",")}
    if "zstd" in names:
        return Compression.ZSTD
    if "gzip" in names:
        return Compression.GZIP
    return Compression.NONE


def _frame(flags: int, payload: bytes) -> bytes:
    length = 1 + len(payload)
    if length > FRAME_LENGTH_MAX:
        raise FrameError("frame too large")
    return length.to_bytes(3, "big") + bytes((flags,)) + payload


def encode_message(message: bytes, compression: Compression) -> bytes:
    if compression is Compression.NONE or len(message) < limits.compress_body_bytes_min:
        return _frame(0, message)
    if compression is Compression.ZSTD:
        payload = zstandard.ZstdCompressor().compress(message)
    else:
        payload = gzip.compress(message, compresslevel=6, mtime=0)
    return _frame(compression << _COMPRESSION_SHIFT, payload)


def encode_terminal(status: int, body_json: bytes) -> bytes:
    return _frame(_TERMINAL, status.to_bytes(2, "big") + body_json)
