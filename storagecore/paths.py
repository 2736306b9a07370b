"""Every object key of the store, built and parsed in one place."""

from __future__ import annotations

import re

_SEGMENT = re.compile(r"segments/([0-9a-f]{16})-([0-9a-f]{16})-([0-9a-f]{16})\.seg$")


def segment_key(prefix: str, epoch: int, writer_nonce: int, flush_number: int) -> str:
    """Unique per writer epoch, writer start and flush. The random nonce keeps two
    databases that share a bucket (or a database restored next to a bucket) from
    choosing the same names."""
    return f"{_normalise(prefix)}segments/{epoch:016x}-{writer_nonce:016x}-{flush_number:016x}.seg"


def compacted_segment_key(prefix: str, epoch: int, writer_nonce: int, number: int) -> str:
    """A segment written by compaction: the writer's epoch and nonce, its own counter."""
    return f"{_normalise(prefix)}segments/{epoch:016x}-{writer_nonce:016x}-{number:016x}.cseg"


def segments_prefix(prefix: str) -> str:
    return f"{_normalise(prefix)}segments/"


def parse_segment_key(key: str) -> tuple[int, int, int] | None:
    """(epoch, writer nonce, flush number) of a segment key."""
    match = _SEGMENT.search(key)
    if match is None:
        return None
    return int(match.group(1), 16), int(match.group(2), 16), int(match.group(3), 16)


def _normalise(prefix: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/" if prefix else ""
