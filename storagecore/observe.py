"""What the engine reports about itself, as a port: ``EngineObserver``.

The engine calls these methods at most once per append batch or per flush, never
per record, and never waits on them. The default, ``NO_OBSERVER``, does nothing;
the server plugs in a Prometheus implementation (``s2site.metrics``). Gauges that
can be read at any moment (active streamers, followers) are not pushed here: the
observer's owner reads them from the engine when it is scraped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol


@dataclass(frozen=True, slots=True)
class FlushStats:
    """One successful flush: a segment written, then its index rows committed."""

    seconds: float  # from the start of the flush to the commit
    segment_write_seconds: float
    index_commit_seconds: float
    segment_bytes: int
    records: int
    streams: int


class EngineObserver(Protocol):
    def append_permit_waited(self, seconds: float) -> None:
        """An append waited this long for room in the in-flight budget."""

    def append_acknowledged(self, seconds: float, records: int, metered_bytes: int) -> None:
        """An append batch became durable ``seconds`` after it arrived at the engine."""

    def flush_done(self, stats: FlushStats) -> None:
        """The committer made a flush durable."""

    def session_opened(self, kind: str) -> None:
        """A streaming session of ``kind`` (e.g. ``append-s2s``, ``read-sse``) started."""

    def session_closed(self, kind: str) -> None: ...


class NoObserver:
    def append_permit_waited(self, seconds: float) -> None:
        pass

    def append_acknowledged(self, seconds: float, records: int, metered_bytes: int) -> None:
        pass

    def flush_done(self, stats: FlushStats) -> None:
        pass

    def session_opened(self, kind: str) -> None:
        pass

    def session_closed(self, kind: str) -> None:
        pass


NO_OBSERVER: Final[EngineObserver] = NoObserver()
