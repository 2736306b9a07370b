"""Compaction: a stream's small runs rewritten into one larger block (ARCHITECTURE §2).

Every flush writes one block per stream that had appends, so a stream with a
steady trickle of small appends leaves many small index rows and objects behind.
``plan`` picks groups of consecutive small rows of one stream; ``rewrite``
reads a group's blocks and writes them as one block in a new segment, whose
index row covers exactly the same sequence numbers. The caller switches the
rows in one transaction, so a reader sees either the old rows or the new one,
never a gap or a duplicate; the old segments become garbage.

A row carries one expiry time for all its records. Rows are merged only when
their expiry times are all absent (infinite retention) or lie within
``expiry_slack_ms`` of each other; the merged row takes the latest, so a record
may stay readable up to that slack after its retention ran out.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass

from storagecore import limits
from storagecore.ports import ChunkRef
from storagecore.segment import Block, BlockIndex, encode_segment_header


@dataclass(frozen=True, slots=True)
class CompactionSettings:
    target_bytes: int = limits.compaction_target_bytes
    expiry_slack_ms: int = limits.compaction_expiry_slack_ms
    # A stream's newest rows are merged by size tier (see ``plan``): this many
    # consecutive rows of one tier at a time.
    tail_runs_min: int = limits.compaction_tail_runs_min

    @property
    def small_bytes(self) -> int:
        """Rows at least this large are left alone."""
        return max(1, self.target_bytes // 2)


@dataclass(frozen=True, slots=True)
class Row:
    """An index row as the compactor sees it: its database id and where it points."""

    row_id: int
    chunk: ChunkRef


def plan(rows: Sequence[Row], settings: CompactionSettings, complete: bool) -> list[list[Row]]:
    """Groups of at least two consecutive small rows of one stream, each within the target
    size. ``rows`` are in sequence order; ``complete`` says they reach the stream's tail.

    A group that can no longer grow (something follows it) is merged at once. The last
    group, which grows with every append, is merged whole once it reaches half the target
    size; before that, only runs of ``tail_runs_min`` consecutive rows of the same size
    tier (a factor of 8) are merged, each into one row of the next tier. So a byte is
    rewritten about once per tier, and a stream keeps fewer than ``tail_runs_min`` small
    rows per tier, however slowly it is appended to."""
    groups: list[list[Row]] = []
    current: list[Row] = []
    size = 0
    # The current group's earliest and latest expiry (None: its rows never expire).
    low: int | None = None
    high: int | None = None

    def close(trailing: bool) -> None:
        nonlocal current, size
        if len(current) >= 2:
            if not trailing or size >= settings.small_bytes:
                groups.append(current)
            else:
                groups.extend(_tiered(current, settings.tail_runs_min))
        current, size = [], 0

    for row in rows:
        chunk = row.chunk
        if chunk.length >= settings.small_bytes:
            close(False)
            continue
        expiry = chunk.expires_at_ms
        if current:
            joined = _joins(current[-1].chunk, chunk, size, low, high, settings)
            if joined is None:
                close(False)
            else:
                low, high = joined
        if not current:
            low = high = expiry
        current.append(row)
        size += chunk.length
    close(complete)
    return groups


def _joins(
    last: ChunkRef,
    chunk: ChunkRef,
    size: int,
    low: int | None,
    high: int | None,
    settings: CompactionSettings,
) -> tuple[int | None, int | None] | None:
    """The group's expiry range with ``chunk`` added, or None if ``chunk`` cannot join it.

    A group's rows either all never expire or all expire within ``expiry_slack_ms``."""
    if last.end_seq != chunk.start_seq or size + chunk.length > settings.target_bytes:
        return None
    expiry = chunk.expires_at_ms
    if low is None or high is None or expiry is None:
        return (None, None) if low is None and expiry is None else None
    low, high = min(low, expiry), max(high, expiry)
    return (low, high) if high - low <= settings.expiry_slack_ms else None


def _tier(length: int) -> int:
    return max(0, length.bit_length() - 1) // 3


def _tiered(rows: list[Row], runs: int) -> list[list[Row]]:
    """Runs of at least ``runs`` consecutive rows of one size tier."""
    groups: list[list[Row]] = []
    start = 0
    for end in range(1, len(rows) + 1):
        if end == len(rows) or _tier(rows[end].chunk.length) != _tier(rows[start].chunk.length):
            if end - start >= max(2, runs):
                groups.append(rows[start:end])
            start = end
    return groups


def merge(blocks: Sequence[Block]) -> Block:
    """One block holding the records of consecutive blocks of one stream."""
    timestamps, metered, lengths = array("Q"), array("I"), array("I")
    for block in blocks:
        timestamps.extend(block.index.timestamps)
        metered.extend(block.index.metered)
        lengths.extend(block.index.lengths)
    first = blocks[0]
    return Block(
        stream_id=first.stream_id,
        start_seq=first.start_seq,
        first_ts=first.first_ts,
        last_ts=blocks[-1].last_ts,
        metered_bytes=sum(b.metered_bytes for b in blocks),
        index=BlockIndex(timestamps, metered, lengths),
        payload=b"".join(bytes(b.payload) for b in blocks),
    )


def encode(
    group: Sequence[Row], blocks: Sequence[Block], key: str, epoch: int, number: int
) -> tuple[bytes, ChunkRef]:
    """The new segment's bytes and its one index row, which replaces ``group``'s rows."""
    for row, block in zip(group, blocks, strict=True):
        if block.stream_id != row.chunk.stream_id or block.start_seq != row.chunk.start_seq:
            raise ValueError(f"index and block disagree in {row.chunk.segment_key}")
    block = merge(blocks)
    header = encode_segment_header(epoch, number, 1)
    parts = block.encoded_parts()
    expiries = [r.chunk.expires_at_ms for r in group]
    chunk = ChunkRef(
        stream_id=block.stream_id,
        start_seq=block.start_seq,
        end_seq=block.end_seq,
        first_ts=block.first_ts,
        last_ts=block.last_ts,
        metered_bytes=block.metered_bytes,
        expires_at_ms=None if None in expiries else max(e for e in expiries if e is not None),
        segment_key=key,
        offset=len(header),
        length=sum(len(p) for p in parts),
    )
    return header + b"".join(parts), chunk
