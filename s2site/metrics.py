"""``GET /metrics``: the Prometheus text exposition (spec §1.2), and the engine observer
that feeds it.

The four append histograms have the reference server's names and buckets. The
others are this server's own: flushes (duration, size), segment writes, index
commits, open sessions by kind, and gauges read when scraped -- active streamers,
followers and how far behind they are, bytes stored -- plus the standard process,
platform and garbage-collector metrics. Instrumentation runs once per append batch
or per flush, never per record.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, Protocol

from asgiref.sync import sync_to_async
from django.db.models import Sum
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from storagecore.engine import Engine
from storagecore.models import StreamLog
from storagecore.observe import FlushStats

logger = logging.getLogger(__name__)

Message = MutableMapping[str, Any]
CONTENT_TYPE = b"text/plain; version=0.0.4"

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)
GCCollector(registry=REGISTRY)

_LATENCY_BUCKETS = (0.005, 0.010, 0.025, 0.050, 0.100, 0.250, 0.500, 1.000, 2.500)
_KIB, _MIB = 1024, 1024 * 1024

APPEND_PERMIT_LATENCY = Histogram(
    "s2_append_permit_latency_seconds",
    "Append permit latency in seconds",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
APPEND_ACK_LATENCY = Histogram(
    "s2_append_ack_latency_seconds",
    "Append ack latency in seconds",
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
APPEND_BATCH_RECORDS = Histogram(
    "s2_append_batch_records",
    "Append batch size in number of records",
    buckets=(1, 10, 50, 100, 250, 500, 1000),
    registry=REGISTRY,
)
APPEND_BATCH_BYTES = Histogram(
    "s2_append_batch_bytes",
    "Append batch size in bytes",
    buckets=(512, _KIB, 4 * _KIB, 16 * _KIB, 64 * _KIB, 256 * _KIB, 512 * _KIB, _MIB),
    registry=REGISTRY,
)
FLUSH_DURATION = Histogram(
    "s2_flush_duration_seconds",
    "Group-commit flush duration in seconds, from the start of encoding to the index commit",
    buckets=(0.001, 0.0025, *_LATENCY_BUCKETS),
    registry=REGISTRY,
)
FLUSH_BYTES = Histogram(
    "s2_flush_bytes",
    "Size of the segment written by a flush, in bytes",
    buckets=(_KIB, 16 * _KIB, 64 * _KIB, 256 * _KIB, _MIB, 4 * _MIB, 16 * _MIB, 64 * _MIB),
    registry=REGISTRY,
)
FLUSH_RECORDS = Histogram(
    "s2_flush_records",
    "Records made durable by a flush",
    buckets=(1, 10, 100, 1000, 10_000, 100_000),
    registry=REGISTRY,
)
FLUSH_STREAMS = Histogram(
    "s2_flush_streams",
    "Streams with records in a flush",
    buckets=(1, 2, 5, 10, 50, 100, 500, 1000),
    registry=REGISTRY,
)
SEGMENT_WRITES = Counter(
    "s2_segment_writes", "Segments written to the object store", registry=REGISTRY
)
SEGMENT_BYTES = Counter(
    "s2_segment_written_bytes", "Bytes of segments written to the object store", registry=REGISTRY
)
SEGMENT_WRITE_DURATION = Histogram(
    "s2_segment_write_duration_seconds",
    "Time to write one segment to the object store",
    buckets=(0.001, 0.0025, *_LATENCY_BUCKETS),
    registry=REGISTRY,
)
INDEX_COMMIT_DURATION = Histogram(
    "s2_index_commit_duration_seconds",
    "Time to commit a flush's index rows and stream states to the database",
    buckets=(0.001, 0.0025, *_LATENCY_BUCKETS),
    registry=REGISTRY,
)
OPEN_SESSIONS = Gauge(
    "s2_open_sessions", "Streaming sessions open, by kind", ["kind"], registry=REGISTRY
)
for _kind in ("append-s2s", "read-s2s", "read-sse"):
    OPEN_SESSIONS.labels(_kind)


class PrometheusObserver:
    """The engine observer behind ``/metrics`` (``storagecore.observe.EngineObserver``)."""

    def append_permit_waited(self, seconds: float) -> None:
        APPEND_PERMIT_LATENCY.observe(seconds)

    def append_acknowledged(self, seconds: float, records: int, metered_bytes: int) -> None:
        APPEND_ACK_LATENCY.observe(seconds)
        APPEND_BATCH_RECORDS.observe(records)
        APPEND_BATCH_BYTES.observe(metered_bytes)

    def flush_done(self, stats: FlushStats) -> None:
        FLUSH_DURATION.observe(stats.seconds)
        FLUSH_BYTES.observe(stats.segment_bytes)
        FLUSH_RECORDS.observe(stats.records)
        FLUSH_STREAMS.observe(stats.streams)
        SEGMENT_WRITES.inc()
        SEGMENT_BYTES.inc(stats.segment_bytes)
        SEGMENT_WRITE_DURATION.observe(stats.segment_write_seconds)
        INDEX_COMMIT_DURATION.observe(stats.index_commit_seconds)

    def session_opened(self, kind: str) -> None:
        OPEN_SESSIONS.labels(kind).inc()

    def session_closed(self, kind: str) -> None:
        OPEN_SESSIONS.labels(kind).dec()


OBSERVER = PrometheusObserver()


@dataclass(frozen=True, slots=True)
class EngineSnapshot:
    """Gauges read from the engine (on its event loop) and the database when scraped."""

    streamers: int = 0
    followers: int = 0
    followers_lagging: int = 0
    follower_lag_batches_max: int = 0
    stored_bytes: int = 0

    @classmethod
    def of(cls, engine: Engine, stored_bytes: int) -> EngineSnapshot:
        streamers = engine.registry.active()
        followers = [f for s in streamers for f in s.followers]
        return cls(
            streamers=len(streamers),
            followers=len(followers),
            followers_lagging=sum(1 for f in followers if f.lagging),
            follower_lag_batches_max=max((f.queued for f in followers), default=0),
            stored_bytes=stored_bytes,
        )


class _SnapshotCollector(Collector):
    def __init__(self) -> None:
        self.snapshot = EngineSnapshot()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        snap = self.snapshot
        yield GaugeMetricFamily(
            "s2_active_streamers", "Streams with an active writer in memory", snap.streamers
        )
        yield GaugeMetricFamily("s2_followers", "Readers following a stream's tail", snap.followers)
        yield GaugeMetricFamily(
            "s2_followers_lagging",
            "Followers that fell behind and are catching up from storage",
            snap.followers_lagging,
        )
        yield GaugeMetricFamily(
            "s2_follower_lag_batches",
            "Largest number of durable batches queued for one follower, not yet delivered",
            snap.follower_lag_batches_max,
        )
        yield GaugeMetricFamily(
            "s2_stored_bytes",
            "Bytes of segment data referenced by the index (records not yet trimmed or expired)",
            snap.stored_bytes,
        )


_SNAPSHOT = _SnapshotCollector()
REGISTRY.register(_SNAPSHOT)


def _stored_bytes() -> int:
    """From the per-stream accounting (one row per stream), not by summing index rows."""
    return int(StreamLog.objects.aggregate(total=Sum("stored_bytes"))["total"] or 0)


class HasEngine(Protocol):
    @property
    def engine(self) -> Engine: ...


async def exposition(plane: HasEngine | None) -> bytes:
    """The text exposition; engine gauges are zero while the server starts or stops."""
    if plane is None:
        _SNAPSHOT.snapshot = EngineSnapshot()
    else:
        stored = await sync_to_async(_stored_bytes, thread_sensitive=False)()
        _SNAPSHOT.snapshot = EngineSnapshot.of(plane.engine, stored)
    return generate_latest(REGISTRY)


class MetricsApp:
    """``/metrics`` as a raw ASGI app (outside ``/v1``: no compression, no S2 errors)."""

    def __init__(self, plane: Callable[[], HasEngine | None]) -> None:
        self._plane = plane

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await _respond(send, 405, b"", [(b"allow", b"GET,HEAD")])
            return
        try:
            body = await exposition(self._plane())
        except Exception:  # the reference answers 500 with an empty body
            logger.exception("encoding the metrics failed")
            await _respond(send, 500, b"", [])
            return
        await _respond(send, 200, body, [(b"content-type", CONTENT_TYPE)])


async def _respond(
    send: Callable[[Message], Awaitable[None]],
    status: int,
    body: bytes,
    headers: list[tuple[bytes, bytes]],
) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
