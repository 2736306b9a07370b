"""The stored encoding of a sequenced record, which is also its wire encoding.

Each stored record is a protobuf ``SequencedRecord`` framed as one ``records``
entry of a ``ReadBatch`` (field 1, length-delimited)::

    0x0a len(record) | [0x08 seq_num] | [0x10 timestamp] | (0x1a len header)* | [0x22 len body]
    header = [0x0a len name] [0x12 len value]

so a run of stored records *is* the body of a protobuf ``ReadBatch`` and is sent
to protobuf and S2S readers without re-encoding. Integers are protobuf varints.
As in canonical proto3 (and the reference server's output), zero integers and
empty byte strings are left out, so responses are byte-identical to the reference.

Sealed records (record layout version 1). In a stream with a cipher (spec §7) an
envelope record is stored *sealed*: its headers and body are replaced by one field
that the wire format does not have::

    0x0a len(record) | [0x08 seq_num] | [0x10 timestamp] | 0x2a len sealed

``sealed`` is laid out and produced by ``storagecore.crypto``; decrypting it yields
the record's ``(0x1a len header)* [0x22 len body]`` bytes, so a reader rebuilds the
wire record by putting them back behind the position. Sealed records are never sent
as stored: readers of encrypted streams always go through ``storagecore.crypto``.
Command records are stored as above, in plaintext, in every stream.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from storagecore.records import Header

_SMALL = [bytes((n,)) for n in range(128)]


def varint(value: int) -> bytes:
    if value < 128:
        return _SMALL[value]
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


SEALED_FIELD_TAG = b"\x2a"  # field 5, length-delimited


def encode_record(seq_num: int, timestamp: int, headers: Sequence[Header], body: bytes) -> bytes:
    """One framed stored record."""
    parts: list[bytes] = []
    if seq_num:
        parts += [b"\x08", varint(seq_num)]
    if timestamp:
        parts += [b"\x10", varint(timestamp)]
    parts += _envelope_parts(headers, body)
    length = sum(len(part) for part in parts)
    return b"".join([b"\x0a", varint(length), *parts])


def encode_envelope(headers: Sequence[Header], body: bytes) -> bytes:
    """The headers and body of a record as they follow its position: what is sealed."""
    return b"".join(_envelope_parts(headers, body))


def encode_sealed_record(seq_num: int, timestamp: int, sealed: bytes) -> bytes:
    """One framed stored record whose envelope is sealed."""
    return frame_record(
        position_fields(seq_num, timestamp), SEALED_FIELD_TAG + varint(len(sealed)) + sealed
    )


def position_fields(seq_num: int, timestamp: int) -> bytes:
    return (b"\x08" + varint(seq_num) if seq_num else b"") + (
        b"\x10" + varint(timestamp) if timestamp else b""
    )


def frame_record(position: bytes | memoryview, fields: bytes | memoryview) -> bytes:
    """A framed record from its position fields and the fields after them."""
    return b"".join((b"\x0a", varint(len(position) + len(fields)), position, fields))


def _envelope_parts(headers: Sequence[Header], body: bytes) -> list[bytes]:
    parts: list[bytes] = []
    for name, value in headers:
        size = (1 + len(varint(len(name))) + len(name) if name else 0) + (
            1 + len(varint(len(value))) + len(value) if value else 0
        )
        parts += [b"\x1a", varint(size)]
        if name:
            parts += [b"\x0a", varint(len(name)), name]
        if value:
            parts += [b"\x12", varint(len(value)), value]
    if body:
        parts += [b"\x22", varint(len(body)), body]
    return parts


def encode_position(tag: int, seq_num: int, timestamp: int) -> bytes:
    """A ``StreamPosition`` as field ``tag`` of an enclosing message."""
    inner = position_fields(seq_num, timestamp)
    return bytes((tag << 3 | 2,)) + varint(len(inner)) + inner


class DecodeError(ValueError):
    pass


def _read_varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    if pos < len(data) and data[pos] < 0x80:
        return data[pos], pos + 1
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise DecodeError("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def split_records(payload: bytes | memoryview) -> list[tuple[bytes, bytes, bytes | None]]:
    """Each framed stored record as (whole frame, position fields, sealed envelope or
    None). Only the leading fields are looked at: the rest is passed on untouched."""
    data = payload if isinstance(payload, bytes) else bytes(payload)
    out: list[tuple[bytes, bytes, bytes | None]] = []
    add = out.append
    pos = 0
    end = len(data)
    try:
        while pos < end:
            if data[pos] != 0x0A:
                raise DecodeError("expected a framed record")
            length, start = _read_varint(data, pos + 1)
            stop = start + length
            if stop > end:
                raise DecodeError("truncated record")
            inner = start
            if inner < stop and data[inner] == 0x08:
                inner = _skip_varint(data, inner + 1)
            if inner < stop and data[inner] == 0x10:
                inner = _skip_varint(data, inner + 1)
            sealed = None
            if inner < stop and data[inner] == 0x2A:
                size, sealed_start = _read_varint(data, inner + 1)
                if sealed_start + size != stop:
                    raise DecodeError("a sealed record holds one field after its position")
                sealed = data[sealed_start:stop]
            if inner > stop:
                raise DecodeError("truncated position")
            add((data[pos:stop], data[start:inner], sealed))
            pos = stop
    except IndexError:
        raise DecodeError("truncated record") from None
    return out


def _skip_varint(data: bytes, pos: int) -> int:
    while data[pos] & 0x80:
        pos += 1
    return pos + 1


def _fields(data: bytes | memoryview) -> Iterator[tuple[int, int | bytes]]:
    pos = 0
    while pos < len(data):
        key, pos = _read_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, pos = _read_varint(data, pos)
            yield number, value
        elif wire_type == 2:
            length, pos = _read_varint(data, pos)
            if pos + length > len(data):
                raise DecodeError("truncated field")
            yield number, bytes(data[pos : pos + length])
            pos += length
        else:
            raise DecodeError(f"unexpected wire type {wire_type}")


def decode_records(
    payload: bytes | memoryview,
) -> Iterator[tuple[int, int, list[Header], bytes]]:
    """Decode framed stored records (used by tests and tools; readers pass bytes through)."""
    for number, record in _fields(payload):
        if number != 1 or not isinstance(record, bytes):
            raise DecodeError("expected a framed record")
        seq_num = timestamp = 0
        headers: list[Header] = []
        body = b""
        for field, value in _fields(record):
            if field == 1 and isinstance(value, int):
                seq_num = value
            elif field == 2 and isinstance(value, int):
                timestamp = value
            elif field == 3 and isinstance(value, bytes):
                name = val = b""
                for h_field, h_value in _fields(value):
                    if h_field == 1 and isinstance(h_value, bytes):
                        name = h_value
                    elif h_field == 2 and isinstance(h_value, bytes):
                        val = h_value
                headers.append((name, val))
            elif field == 4 and isinstance(value, bytes):
                body = value
        yield seq_num, timestamp, headers, body
