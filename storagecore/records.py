"""Records, command records, metering and batch validation (spec §3.4, §3.6).

A record is an *envelope* (headers and a body) or a *command*: a record with
exactly one header whose name is empty. ``parse_record`` classifies and
validates one record; ``AppendBatch.build`` validates a batch. Every failure is
``Invalid`` (422) with the reference server's message.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from storagecore import limits
from storagecore.errors import Invalid

Header = tuple[bytes, bytes]


class Command(enum.Enum):
    FENCE = b"fence"
    TRIM = b"trim"


@dataclass(slots=True)
class Record:
    """One validated record of an append, before sequencing."""

    timestamp: int | None
    headers: Sequence[Header]
    body: bytes
    metered_bytes: int
    command: Command | None = None
    # The fence command's new token, or the trim command's requested trim point.
    fencing_token: str | None = None
    trim_point: int | None = None
    # An encrypted envelope record (spec §7): its sealed headers and body, stored in
    # their place (``storagecore.crypto``), and the highest sequence number it may get.
    sealed: bytes | None = None
    seq_num_max: int = limits.u64_max


def metered_size(headers: Sequence[Header], body: bytes) -> int:
    size = limits.record_overhead_bytes + len(body)
    for name, value in headers:
        size += limits.header_overhead_bytes + len(name) + len(value)
    return size


def parse_record(timestamp: int | None, headers: Sequence[Header], body: bytes) -> Record:
    command = fencing_token = trim_point = None
    if len(headers) == 1 and headers[0][0] == b"":
        op = headers[0][1]
        if op == Command.FENCE.value:
            command = Command.FENCE
            fencing_token = _fencing_token_payload(body)
        elif op == Command.TRIM.value:
            command = Command.TRIM
            if len(body) != 8:
                raise Invalid(
                    "invalid `trim` command: earliest sequence number to trim to was "
                    f"{len(body)} bytes, must be 8"
                )
            trim_point = int.from_bytes(body, "big")
        else:
            raise Invalid("unknown command")
    else:
        for name, _ in headers:
            if not name:
                raise Invalid("invalid header: empty name")
    size = metered_size(headers, body)
    if size > limits.record_metered_bytes_max:
        raise Invalid("record must have metered size less than 1 MiB")
    return Record(timestamp, headers, body, size, command, fencing_token, trim_point)


def _fencing_token_payload(body: bytes) -> str:
    try:
        token = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid("invalid `fence` command: invalid UTF-8") from None
    if len(body) > limits.fencing_token_bytes_max:
        raise Invalid(
            "invalid `fence` command: fencing token must not exceed "
            f"{limits.fencing_token_bytes_max} bytes in length"
        )
    return token


def fence_record(token: str) -> Record:
    return parse_record(None, [(b"", Command.FENCE.value)], token.encode())


def trim_record(trim_point: int) -> Record:
    return parse_record(None, [(b"", Command.TRIM.value)], trim_point.to_bytes(8, "big"))


@dataclass(slots=True)
class AppendBatch:
    records: list[Record]
    match_seq_num: int | None
    fencing_token: str | None
    metered_bytes: int

    @classmethod
    def build(
        cls, records: list[Record], match_seq_num: int | None, fencing_token: str | None
    ) -> AppendBatch:
        if not records:
            raise Invalid("record batch must not be empty")
        if len(records) > limits.batch_records_max:
            raise Invalid("record batch must not exceed 1000 records")
        total = sum(record.metered_bytes for record in records)
        if total > limits.batch_metered_bytes_max:
            raise Invalid("record batch must not exceed a metered size of 1 MiB")
        return cls(records, match_seq_num, fencing_token, total)


def check_fencing_token(token: str) -> str:
    """A fencing token given with an append: UTF-8, at most 36 bytes."""
    if len(token.encode()) > limits.fencing_token_bytes_max:
        raise Invalid(
            f"fencing token must not exceed {limits.fencing_token_bytes_max} bytes in length"
        )
    return token
