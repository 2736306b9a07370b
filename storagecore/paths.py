"""Every object key of the store, built and parsed in one place."""

from __future__ import annotations

import re

_SEGMENT = re.compile(r"segments/([0-9a-f]{16})-([0-9a-f]{16})\.seg$")


def segment_key(prefix: str, epoch: int, flush_number: int) -> str:
    """Unique per writer epoch and flush, so segment writes never collide."""
    return f"{_normalise(prefix)}segments/{epoch:016x}-{flush_number:016x}.seg"


def segments_prefix(prefix: str) -> str:
    return f"{_normalise(prefix)}segments/"


def parse_segment_key(key: str) -> tuple[int, int] | None:
    match = _SEGMENT.search(key)
    if match is None:
        return None
    return int(match.group(1), 16), int(match.group(2), 16)


def _normalise(prefix: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/" if prefix else ""
