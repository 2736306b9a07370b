"""Bench records and their verification.

Every record carries one header, ``hash``, 8 bytes: the record's position in the
chain (1, 2, ...; 4 bytes) and the CRC-32C of every body so far, in order (4 bytes;
the CRC of the previous record continued over this body). The value of the last
record stands for every body in order. A reader recomputes the chain: a missing,
repeated, reordered or altered record breaks it. (CRC-32C runs at memory speed, so
the bench client checks at the rates it measures.) Records are encoded to protobuf by
hand (the writer builds thousands per second); readers parse with the protobuf
runtime, so the two sides do not share an encoder.
"""

from __future__ import annotations

import random
from typing import Any

import crc32c

from storagecore.encoding import varint

HASH_HEADER = b"hash"
HASH_BYTES = 8
ZERO_HASH = bytes(HASH_BYTES)
# Metered size (spec §3.2): 8 + per header 2 + name + value, + body.
RECORD_OVERHEAD_BYTES = 8 + 2 + len(HASH_HEADER) + HASH_BYTES
RECORD_SIZE_MIN = 128
BATCH_RECORDS_MAX = 1000
BATCH_BYTES_MAX = 1024 * 1024
_POOL_BYTES = 1024 * 1024


class VerificationError(Exception):
    """What was read back is not what was written (count, order, size or content)."""


def chain_hash(previous: bytes, body: bytes) -> bytes:
    position = int.from_bytes(previous[:4], "big") + 1
    crc = crc32c.crc32c(body, int.from_bytes(previous[4:], "big"))
    return position.to_bytes(4, "big") + crc.to_bytes(4, "big")


def body_size(record_size: int) -> int:
    return record_size - RECORD_OVERHEAD_BYTES


def encode_record(timestamp: int, digest: bytes, body: bytes) -> bytes:
    """One ``AppendInput.records`` entry (field 1) holding an ``AppendRecord``."""
    head = b"".join(
        (
            b"\x08",
            varint(timestamp),
            b"\x12\x10\x0a\x04",  # the header message: 16 bytes, name of 4 bytes
            HASH_HEADER,
            b"\x12\x08",
            digest,
            b"\x1a",
            varint(len(body)),
        )
    )
    return b"".join((b"\x0a", varint(len(head) + len(body)), head, body))


class BodySource:
    """Pseudo-random bodies of one size, cut from a fixed pool at moving offsets."""

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size = size
        self._pool = random.Random(seed).randbytes(_POOL_BYTES + size)
        self._offset = 0

    def next(self) -> bytes:
        body = self._pool[self._offset : self._offset + self.size]
        self._offset = (self._offset + 4099) % _POOL_BYTES
        return body


class ChainWriter:
    """Makes the next record: body, chained digest, encoded entry."""

    def __init__(self, record_size: int, seed: int = 0) -> None:
        self.record_size = record_size
        self.bodies = BodySource(body_size(record_size), seed)
        self.digest = ZERO_HASH
        self.records = 0

    def next_record(self, timestamp: int) -> bytes:
        body = self.bodies.next()
        self.digest = chain_hash(self.digest, body)
        self.records += 1
        return encode_record(timestamp, self.digest, body)


class ChainVerifier:
    """Checks records read from the start of a stream, in order."""

    def __init__(self, record_size: int) -> None:
        self.body_size = body_size(record_size)
        self.next_seq = 0
        self.digest = ZERO_HASH

    @property
    def records(self) -> int:
        return self.next_seq

    def check(self, record: Any) -> None:
        """``record`` is a ``SequencedRecord``; raises ``VerificationError``."""
        seq = record.seq_num
        if seq != self.next_seq:
            raise VerificationError(f"expected seq_num {self.next_seq}, got {seq}")
        body = record.body
        if len(body) != self.body_size:
            raise VerificationError(
                f"record {seq}: body of {len(body)} bytes, expected {self.body_size}"
            )
        headers = record.headers
        if len(headers) != 1 or headers[0].name != HASH_HEADER:
            raise VerificationError(f"record {seq}: no {HASH_HEADER.decode()} header")
        digest = chain_hash(self.digest, body)
        if headers[0].value != digest:
            raise VerificationError(f"record {seq}: hash chain broken")
        self.digest = digest
        self.next_seq = seq + 1

    def finish(self, records: int, digest: bytes) -> None:
        """All was read: the count and the last digest match what was written."""
        if self.next_seq != records:
            raise VerificationError(f"read {self.next_seq} records, {records} were written")
        if self.digest != digest:
            raise VerificationError("the hash chain read differs from the one written")
