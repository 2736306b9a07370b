"""The segment format: one immutable object per flush, one block per stream in it.

A segment is a header followed by blocks; every block is self-describing and
checksummed, so it is read alone with one ranged read (offset and length come
from the chunk index). All integers are little-endian.

Segment header (32 bytes)::

    0   4  magic b"S2SG"
    4   1  version (1)
    5   3  reserved, zero
    8   8  writer epoch
    16  8  flush number
    24  4  block count
    28  4  CRC32C of bytes 0..28

Block (version 2; version 1, with a row-wise index, was never released)::

    0   4  magic b"S2BK"
    4   1  version (1)
    5   3  reserved, zero
    8   8  stream id
    16  8  first sequence number
    24  4  record count n
    28  4  payload length p
    32  8  first timestamp
    40  8  last timestamp
    48  8  metered bytes
    56  8n   index: every record's timestamp (u64), in order
    ..  4n   index: every record's metered size (u32), in order
    ..  4n   index: every record's stored length (u32), in order
    ..  p  payload: the stored records (``storagecore.encoding``), in order
    ..  4  CRC32C (Castagnoli) of everything before it

A block that fails any check (length, magic, version, lengths, checksum) raises
``CorruptBlock``; corrupt bytes are never returned as records.

Records of encrypted streams (spec §7). The block layout is the same; in the
payload, envelope records are *sealed* (record layout version 1, field ``0x2a``
in place of headers and body, ``storagecore.encoding``), and the sealed envelope is
``format id | nonce | ciphertext | tag`` (``storagecore.crypto``; format id 0x01 is
AEGIS-256 v1 with a 32-byte nonce and 32-byte tag, 0x02 is AES-256-GCM v1 with a
12-byte nonce and 16-byte tag). The format id is the layout's version. The index's
metered sizes are those of the plaintext records; stored lengths are the sealed
records' own. Command records are stored in plaintext.
"""

from __future__ import annotations

import struct
import sys
from array import array
from dataclasses import dataclass
from itertools import accumulate

import crc32c

SEGMENT_MAGIC = b"S2SG"
BLOCK_MAGIC = b"S2BK"
VERSION = 2

_SEGMENT_HEADER = struct.Struct("<4sB3xQQI")
SEGMENT_HEADER_BYTES = _SEGMENT_HEADER.size + 4
_BLOCK_HEADER = struct.Struct("<4sB3xQQIIQQQ")
BLOCK_HEADER_BYTES = _BLOCK_HEADER.size
# The index is columnar so that it is written and read as three array copies.
INDEX_ENTRY_BYTES = 16
_CRC = struct.Struct("<I")


class CorruptBlock(ValueError):
    """Stored bytes failed validation."""


@dataclass(frozen=True, slots=True)
class BlockIndex:
    """Per-record timestamps, metered sizes and stored lengths, in record order."""

    timestamps: array  # type: ignore[type-arg]
    metered: array  # type: ignore[type-arg]
    lengths: array  # type: ignore[type-arg]


@dataclass(slots=True)
class Block:
    stream_id: int
    start_seq: int
    first_ts: int
    last_ts: int
    metered_bytes: int
    index: BlockIndex
    payload: bytes
    _offsets: list[int] | None = None

    @property
    def record_count(self) -> int:
        return len(self.index.lengths)

    @property
    def end_seq(self) -> int:
        return self.start_seq + self.record_count

    def offsets(self) -> list[int]:
        """Start offset of every record in the payload, plus the payload length."""
        if self._offsets is None:
            self._offsets = [0, *accumulate(self.index.lengths)]
        return self._offsets

    def encoded_parts(self) -> tuple[bytes, bytes, bytes]:
        """This block as a segment holds it: (header and index, payload, checksum)."""
        index = self.index
        return encode_block_parts(
            self.stream_id,
            self.start_seq,
            index.timestamps,
            index.metered,
            index.lengths,
            self.payload,
        )


def encode_block(
    stream_id: int,
    start_seq: int,
    timestamps: array,  # type: ignore[type-arg]
    metered: array,  # type: ignore[type-arg]
    lengths: array,  # type: ignore[type-arg]
    payload: bytes,
) -> bytes:
    return b"".join(encode_block_parts(stream_id, start_seq, timestamps, metered, lengths, payload))


def encode_block_parts(
    stream_id: int,
    start_seq: int,
    timestamps: array,  # type: ignore[type-arg]
    metered: array,  # type: ignore[type-arg]
    lengths: array,  # type: ignore[type-arg]
    payload: bytes,
) -> tuple[bytes, bytes, bytes]:
    """A block as (header and index, payload, checksum): joined once by the caller."""
    count = len(lengths)
    if not (count == len(timestamps) == len(metered)) or count == 0:
        raise ValueError("index arrays must be non-empty and of equal length")
    index = _le(timestamps, "Q") + _le(metered, "I") + _le(lengths, "I")
    head = (
        _BLOCK_HEADER.pack(
            BLOCK_MAGIC,
            VERSION,
            stream_id,
            start_seq,
            count,
            len(payload),
            timestamps[0],
            timestamps[-1],
            sum(metered),
        )
        + index
    )
    crc = crc32c.crc32c(payload, crc32c.crc32c(head))
    return bytes(head), payload, _CRC.pack(crc)


def decode_block(data: bytes) -> Block:
    if len(data) < BLOCK_HEADER_BYTES + 4:
        raise CorruptBlock("block too short")
    (expected_crc,) = _CRC.unpack_from(data, len(data) - 4)
    if crc32c.crc32c(memoryview(data)[:-4]) != expected_crc:
        raise CorruptBlock("block checksum mismatch")
    magic, version, stream_id, start_seq, count, payload_len, first_ts, last_ts, metered = (
        _BLOCK_HEADER.unpack_from(data, 0)
    )
    if magic != BLOCK_MAGIC:
        raise CorruptBlock("bad block magic")
    if version != VERSION:
        raise CorruptBlock(f"unsupported block version {version}")
    index_end = BLOCK_HEADER_BYTES + count * INDEX_ENTRY_BYTES
    if count == 0 or index_end + payload_len + 4 != len(data):
        raise CorruptBlock("block lengths are inconsistent")
    view = memoryview(data)
    ts_end = BLOCK_HEADER_BYTES + 8 * count
    metered_end = ts_end + 4 * count
    timestamps = _from_le(view[BLOCK_HEADER_BYTES:ts_end], "Q")
    metered_sizes = _from_le(view[ts_end:metered_end], "I")
    lengths = _from_le(view[metered_end:index_end], "I")
    if sum(lengths) != payload_len or sum(metered_sizes) != metered:
        raise CorruptBlock("block index does not match its payload")
    if timestamps[0] != first_ts or timestamps[-1] != last_ts:
        raise CorruptBlock("block timestamps do not match its index")
    payload = data[index_end : index_end + payload_len]
    return Block(
        stream_id,
        start_seq,
        first_ts,
        last_ts,
        metered,
        BlockIndex(timestamps, metered_sizes, lengths),
        payload,
    )


def encode_segment_header(epoch: int, flush_number: int, block_count: int) -> bytes:
    header = _SEGMENT_HEADER.pack(SEGMENT_MAGIC, VERSION, epoch, flush_number, block_count)
    return header + _CRC.pack(crc32c.crc32c(header))


def decode_segment_header(data: bytes) -> tuple[int, int, int]:
    """(epoch, flush number, block count) of a segment, from its first 32 bytes."""
    if len(data) < SEGMENT_HEADER_BYTES:
        raise CorruptBlock("segment header too short")
    (expected_crc,) = _CRC.unpack_from(data, _SEGMENT_HEADER.size)
    if crc32c.crc32c(data[: _SEGMENT_HEADER.size]) != expected_crc:
        raise CorruptBlock("segment header checksum mismatch")
    magic, version, epoch, flush_number, block_count = _SEGMENT_HEADER.unpack_from(data, 0)
    if magic != SEGMENT_MAGIC or version != VERSION:
        raise CorruptBlock("bad segment magic or version")
    return epoch, flush_number, block_count


_LITTLE = sys.byteorder == "little"


def _le(values: array, typecode: str) -> bytes:  # type: ignore[type-arg]
    """An array's items as little-endian bytes of the given width."""
    column = values if values.typecode == typecode else array(typecode, values)
    if column.itemsize != struct.calcsize(typecode):
        raise ValueError(f"array typecode {typecode} has an unexpected item size")
    if not _LITTLE:
        column = array(typecode, column)
        column.byteswap()
    return column.tobytes()


def _from_le(data: memoryview, typecode: str) -> array:  # type: ignore[type-arg]
    column = array(typecode)
    column.frombytes(data)
    if not _LITTLE:
        column.byteswap()
    return column
