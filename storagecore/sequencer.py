"""Sequencing an append against a stream's writer state (spec §3.5–§3.7).

Pure and synchronous: given the state *including* accepted but not yet durable
appends, check the fencing token, then ``match_seq_num``, assign sequence numbers
and timestamps, apply command records, and encode the records for storage (sealed ones as they
are: encryption happens before, in ``storagecore.crypto``). Nothing is changed
when the batch is rejected.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, replace

from storagecore import limits
from storagecore.config import TimestampingMode
from storagecore.encoding import encode_record, encode_sealed_record, varint
from storagecore.errors import AppendConditionFailed, Invalid, StreamDeletionPending
from storagecore.positions import StreamPosition
from storagecore.records import AppendBatch, Command

# A trim point of u64::MAX marks a stream whose deletion is under way.
DELETION_TRIM_POINT = limits.u64_max


@dataclass(frozen=True, slots=True)
class WriterState:
    """What the single writer of a stream owns; ``next_seq``/``last_ts`` form the tail."""

    next_seq: int = 0
    last_ts: int = 0
    fencing_token: str = ""
    trim_point: int = 0

    @property
    def tail(self) -> StreamPosition:
        return StreamPosition(self.next_seq, self.last_ts)

    @property
    def deleting(self) -> bool:
        return self.trim_point == DELETION_TRIM_POINT


@dataclass(frozen=True, slots=True)
class TimestampPolicy:
    mode: TimestampingMode = TimestampingMode.CLIENT_PREFER
    uncapped: bool = False


@dataclass(slots=True)
class SequencedRun:
    """An accepted batch, encoded: the records of one append, ready to be stored."""

    start: StreamPosition
    end: StreamPosition
    timestamps: array  # type: ignore[type-arg]
    metered: array  # type: ignore[type-arg]
    lengths: array  # type: ignore[type-arg]
    payload: bytes
    metered_bytes: int
    # The state after this run, and whether this run changed the token or trim point.
    state: WriterState
    trimmed: bool


def sequence(
    state: WriterState, batch: AppendBatch, policy: TimestampPolicy, now_ms: int
) -> SequencedRun:
    if state.deleting:
        raise StreamDeletionPending()
    if batch.fencing_token is not None and batch.fencing_token != state.fencing_token:
        raise AppendConditionFailed.fencing_token_mismatch(state.fencing_token)
    if batch.match_seq_num is not None and batch.match_seq_num != state.next_seq:
        raise AppendConditionFailed.seq_num_mismatch(state.next_seq)
    if policy.mode is TimestampingMode.CLIENT_REQUIRE and any(
        record.timestamp is None for record in batch.records
    ):
        raise Invalid("record timestamp was required but was missing")

    seq = state.next_seq
    prev = state.last_ts
    fencing_token = state.fencing_token
    trim_point = state.trim_point
    timestamps, metered, lengths = array("Q"), array("I"), array("I")
    parts: list[bytes] = []
    add_parts = parts.extend
    arrival = policy.mode is TimestampingMode.ARRIVAL
    uncapped = policy.uncapped
    start_ts: int | None = None
    ts_part = b""
    ts_encoded_for = -1
    for record in batch.records:
        ts = now_ms if arrival or record.timestamp is None else record.timestamp
        if ts > now_ms and not uncapped:
            ts = now_ms
        if ts < prev:
            ts = prev
        prev = ts
        if start_ts is None:
            start_ts = ts
        if record.command is not None:
            if record.command is Command.FENCE:
                fencing_token = record.fencing_token or ""
            elif record.trim_point is not None:
                trim_point = max(trim_point, min(record.trim_point, seq + 1))
        if record.sealed is not None:
            if seq > record.seq_num_max:
                raise Invalid(
                    f"max assignable sequence number is {record.seq_num_max}; attempted {seq}"
                )
            encoded = encode_sealed_record(seq, ts, record.sealed)
            parts.append(encoded)
            lengths.append(len(encoded))
        elif record.headers:
            encoded = encode_record(seq, ts, record.headers, record.body)
            parts.append(encoded)
            lengths.append(len(encoded))
        else:
            # The common header-less record, encoded inline (see storagecore.encoding):
            # the parts go straight into the payload, with no per-record copy.
            if ts != ts_encoded_for:
                ts_encoded_for = ts
                ts_part = b"\x10" + varint(ts) if ts else b""
            seq_part = b"\x08" + varint(seq) if seq else b""
            body = record.body
            body_len = len(body)
            body_head = b'"' + varint(body_len) if body_len else b""
            inner = len(seq_part) + len(ts_part) + len(body_head) + body_len
            head = varint(inner)
            add_parts((b"\n", head, seq_part, ts_part, body_head, body))
            lengths.append(1 + len(head) + inner)
        timestamps.append(ts)
        metered.append(record.metered_bytes)
        seq += 1
    assert start_ts is not None
    new_state = replace(
        state, next_seq=seq, last_ts=prev, fencing_token=fencing_token, trim_point=trim_point
    )
    return SequencedRun(
        start=StreamPosition(state.next_seq, start_ts),
        end=StreamPosition(seq, prev),
        timestamps=timestamps,
        metered=metered,
        lengths=lengths,
        payload=b"".join(parts),
        metered_bytes=batch.metered_bytes,
        state=new_state,
        trimmed=trim_point != state.trim_point,
    )


def terminal_trim(state: WriterState, now_ms: int) -> SequencedRun:
    """The record that marks a stream as being deleted (spec §2.8): trim to u64::MAX."""
    from storagecore.records import trim_record

    run = sequence(
        state,
        AppendBatch.build([trim_record(DELETION_TRIM_POINT)], None, None),
        TimestampPolicy(TimestampingMode.ARRIVAL),
        now_ms,
    )
    run.state = replace(run.state, trim_point=DELETION_TRIM_POINT)
    return run
