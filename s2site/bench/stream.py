"""The stream bench, in the manner of the reference CLI's ``s2 bench``.

A temporary stream (retention 1 h, delete-on-empty after 60 s, client-required
uncapped timestamps) receives records of ``record_size`` metered bytes through one
S2S append session at ``target_mibps`` (0: as fast as acknowledgements allow) for
``duration_s`` (records due together share an append input; ``linger_s`` holds a
record that long for more to join it), while a live S2S read session follows it.
After ``catchup_delay_s`` everything is read back from the start. Each record's
timestamp is the moment it was due (microseconds since the bench started), so:

* ack latency = acknowledgement received - record due, which includes any time the
  record waited for the in-flight window or the session (back-pressure shows);
* end-to-end latency = delivered to the live reader - record due.

Both readers verify count, order and the hash chain (``records``); any mismatch
fails the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
import uuid
from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from s2site.bench.records import (
    BATCH_BYTES_MAX,
    BATCH_RECORDS_MAX,
    ChainVerifier,
    ChainWriter,
    VerificationError,
)
from s2site.bench.s2client import AppendSession, Connection, S2Client
from s2site.bench.stats import Latencies, describe

MIB = 1024 * 1024
STREAM_CONFIG = {
    "retention_policy": {"age": 3600},
    "delete_on_empty": {"min_age_secs": 60},
    "timestamping": {"mode": "client-require", "uncapped": True},
}
LIVE_READ_GRACE_S = 30.0
PROGRESS_INTERVAL_S = 0.5


@dataclass(frozen=True, slots=True)
class StreamBenchConfig:
    record_size: int = 8 * 1024
    target_mibps: float = 1.0
    duration_s: float = 60.0
    catchup_delay_s: float = 20.0
    batch_bytes: int = BATCH_BYTES_MAX
    inflight_bytes: int = 16 * MIB
    linger_s: float = 0.0


@dataclass(slots=True)
class Clock:
    """Times relative to the bench start (``perf_counter``)."""

    origin: float = field(default_factory=time.perf_counter)

    def micros(self, at: float) -> int:
        return int((at - self.origin) * 1_000_000)

    def now_micros(self) -> int:
        return self.micros(time.perf_counter())


@dataclass(slots=True)
class Progress:
    written_records: int = 0
    written_bytes: int = 0
    read_records: int = 0
    ack: Latencies = field(default_factory=Latencies)
    e2e: Latencies = field(default_factory=Latencies)


class Writer:
    """Feeds one append session at a target rate and checks its acknowledgements."""

    def __init__(
        self, session: AppendSession, config: StreamBenchConfig, clock: Clock, progress: Progress
    ) -> None:
        self.session = session
        self.config = config
        self.clock = clock
        self.progress = progress
        self.chain = ChainWriter(config.record_size)
        self._inflight: deque[array[float]] = deque()
        self._inflight_bytes = 0
        self._room = asyncio.Event()
        self._acked_seq = 0
        self.elapsed_s = 0.0

    @property
    def records(self) -> int:
        return self.chain.records

    async def run(self) -> None:
        acks = asyncio.ensure_future(self._read_acks())
        try:
            await self._write(acks)
            await self.session.close()
            await acks
        finally:
            if not acks.done():
                acks.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await acks
        if self._acked_seq != self.chain.records:
            raise VerificationError(
                f"{self._acked_seq} records acknowledged, {self.chain.records} written"
            )

    async def _write(self, acks: asyncio.Future[None]) -> None:
        config = self.config
        size = config.record_size
        per_batch = max(1, min(BATCH_RECORDS_MAX, config.batch_bytes // size))
        interval = size / (config.target_mibps * MIB) if config.target_mibps > 0 else 0.0
        start = time.perf_counter()
        deadline = start + config.duration_s
        next_due = start
        while True:
            if acks.done():
                acks.result()
                raise VerificationError("the append session ended early")
            now = time.perf_counter()
            # Paced: every record due before the deadline is written, however late.
            if next_due >= deadline if interval else now >= deadline:
                return
            if interval and next_due > now:
                await asyncio.sleep(next_due - now)
                continue
            if interval and config.linger_s:
                # Hold the first due record up to ``linger_s`` so that more join its batch.
                send_at = min(next_due + config.linger_s, deadline)
                if send_at > now:
                    await asyncio.sleep(send_at - now)
                    now = time.perf_counter()
            if not interval:
                # Unthrottled: a record is ready once there is room to send it.
                await self._wait_for_room(per_batch * size, acks)
                now = time.perf_counter()
            ready = array("d")
            parts = []
            while len(ready) < per_batch:
                if interval:
                    if next_due > now or next_due >= deadline:
                        break
                    due, next_due = next_due, next_due + interval
                else:
                    due = now
                parts.append(self.chain.next_record(self.clock.micros(due)))
                ready.append(due)
            if not ready:
                continue
            await self._wait_for_room(len(ready) * size, acks)
            self._inflight.append(ready)
            self._inflight_bytes += len(ready) * size
            await self.session.send(b"".join(parts))
            self.progress.written_records = self.chain.records
            if not interval:
                await asyncio.sleep(0)

    async def _wait_for_room(self, size: int, acks: asyncio.Future[None]) -> None:
        while self._inflight and self._inflight_bytes + size > self.config.inflight_bytes:
            if acks.done():
                return
            self._room.clear()
            await self._room.wait()

    async def _read_acks(self) -> None:
        size = self.config.record_size
        started = time.perf_counter()
        try:
            async for ack in self.session.acks():
                now = time.perf_counter()
                if not self._inflight:
                    raise VerificationError("an acknowledgement for nothing sent")
                ready = self._inflight.popleft()
                start, end = ack.start.seq_num, ack.end.seq_num
                if start != self._acked_seq or end - start != len(ready):
                    raise VerificationError(
                        f"acknowledged {start}..{end}, expected {self._acked_seq}.."
                        f"{self._acked_seq + len(ready)}"
                    )
                self._acked_seq = end
                self.progress.ack.extend([now - due for due in ready])
                self._inflight_bytes -= len(ready) * size
                self.progress.written_bytes = end * size
                self.elapsed_s = now - started
                self._room.set()
        finally:
            self._room.set()


async def live_read(
    client: S2Client,
    connection: Connection,
    stream: str,
    verifier: ChainVerifier,
    clock: Clock,
    on_record: Callable[[int, float], None],
) -> None:
    """Follow the stream from the start; ``on_record(seq_num, latency_s)`` per record."""
    session = await client.read_session(connection, stream, 0)
    try:
        async for batch in session.batches():
            now = clock.now_micros()
            for record in batch.records:
                verifier.check(record)
                on_record(record.seq_num, (now - record.timestamp) / 1_000_000)
    finally:
        session.cancel()


@dataclass(slots=True)
class CatchUp:
    records: int
    bytes: int
    elapsed_s: float


async def catch_up(
    client: S2Client, connection: Connection, stream: str, record_size: int
) -> tuple[CatchUp, ChainVerifier]:
    verifier = ChainVerifier(record_size)
    session = await client.read_session(connection, stream, 0, wait_s=0)
    started = time.perf_counter()
    async for batch in session.batches():
        for record in batch.records:
            verifier.check(record)
    elapsed = time.perf_counter() - started
    return CatchUp(verifier.records, verifier.records * record_size, elapsed), verifier


async def show_progress(progress: Progress, out: TextIO, started: float) -> None:
    """A status line on a terminal, refreshed twice a second (live-window latencies)."""
    seen_ack = seen_e2e = 0
    while True:
        await asyncio.sleep(PROGRESS_INTERVAL_S)
        elapsed = time.perf_counter() - started
        ack = progress.ack.summary(seen_ack)
        e2e = progress.e2e.summary(seen_e2e)
        seen_ack, seen_e2e = len(progress.ack), len(progress.e2e)
        line = (
            f"{elapsed:6.1f}s  write {progress.written_bytes / MIB / max(elapsed, 1e-9):7.2f} MiB/s"
            f" ({progress.written_records} records)  read {progress.read_records}"
            f"  ack p50/p99 {_pair(ack)}  e2e p50/p99 {_pair(e2e)}"
        )
        out.write("\r" + line[:160].ljust(160))
        out.flush()


def _pair(summary: dict[str, float] | None) -> str:
    return "-" if summary is None else f"{summary['p50']:.1f}/{summary['p99']:.1f} ms"


async def run_stream_bench(
    client: S2Client, config: StreamBenchConfig, progress_out: TextIO | None = None
) -> dict[str, Any]:
    """Run the bench; returns the report. Raises ``VerificationError`` on any mismatch."""
    control = await client.connect()
    sessions = await client.connect()
    stream = f"bench-{uuid.uuid4().hex[:12]}"
    await client.create_stream(control, stream, STREAM_CONFIG)
    try:
        return await _bench(client, control, sessions, stream, config, progress_out)
    finally:
        with contextlib.suppress(Exception):
            await client.delete_stream(control, stream)


async def _bench(
    client: S2Client,
    control: Connection,
    sessions: Connection,
    stream: str,
    config: StreamBenchConfig,
    progress_out: TextIO | None,
) -> dict[str, Any]:
    clock = Clock()
    progress = Progress()
    live_verifier = ChainVerifier(config.record_size)

    def on_live(_seq: int, latency: float) -> None:
        progress.e2e.add(latency)
        progress.read_records += 1

    reader = asyncio.ensure_future(
        live_read(client, sessions, stream, live_verifier, clock, on_live)
    )
    shower = (
        asyncio.ensure_future(show_progress(progress, progress_out, time.perf_counter()))
        if progress_out is not None
        else None
    )
    writer = Writer(await client.append_session(sessions, stream), config, clock, progress)
    try:
        await writer.run()
        await _until_read(reader, live_verifier, writer.records)
    finally:
        for task in (reader, shower):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if progress_out is not None:
            progress_out.write("\n")
    live_verifier.finish(writer.records, writer.chain.digest)
    await asyncio.sleep(config.catchup_delay_s)
    catchup, catchup_verifier = await catch_up(client, control, stream, config.record_size)
    catchup_verifier.finish(writer.records, writer.chain.digest)
    return {
        "stream": stream,
        "record_size": config.record_size,
        "target_mibps": config.target_mibps,
        "linger_ms": config.linger_s * 1000,
        "write": {
            "records": writer.records,
            "bytes": writer.records * config.record_size,
            "elapsed_s": writer.elapsed_s,
            "mibps": _rate(writer.records * config.record_size / MIB, writer.elapsed_s),
            "records_per_s": _rate(writer.records, writer.elapsed_s),
        },
        "ack_latency_ms": progress.ack.summary(),
        "e2e_latency_ms": progress.e2e.summary(),
        "catchup": {
            "records": catchup.records,
            "bytes": catchup.bytes,
            "elapsed_s": catchup.elapsed_s,
            "mibps": _rate(catchup.bytes / MIB, catchup.elapsed_s),
            "records_per_s": _rate(catchup.records, catchup.elapsed_s),
        },
        "verification_errors": 0,
    }


async def _until_read(reader: asyncio.Future[None], verifier: ChainVerifier, records: int) -> None:
    """Wait until the live reader has every written record (or failed)."""
    deadline = time.perf_counter() + LIVE_READ_GRACE_S
    while verifier.records < records:
        if reader.done():
            reader.result()
            raise VerificationError("the live read session ended early")
        if time.perf_counter() > deadline:
            raise VerificationError(f"the live reader got {verifier.records} of {records} records")
        await asyncio.sleep(0.005)
    if reader.done():
        reader.result()


def _rate(amount: float, seconds: float) -> float:
    return amount / seconds if seconds > 0 else 0.0


def report_lines(report: dict[str, Any]) -> list[str]:
    write, catchup = report["write"], report["catchup"]
    return [
        f"stream {report['stream']}: {report['record_size']} B records, "
        f"target {report['target_mibps']:g} MiB/s, linger {report['linger_ms']:g} ms",
        f"write:   {write['mibps']:.2f} MiB/s, {write['records_per_s']:,.0f} records/s "
        f"({write['bytes']:,} bytes, {write['records']:,} records in {write['elapsed_s']:.2f} s)",
        f"ack latency:        {describe(report['ack_latency_ms'])}",
        f"end-to-end latency: {describe(report['e2e_latency_ms'])}",
        f"catch-up: {catchup['mibps']:.2f} MiB/s, {catchup['records_per_s']:,.0f} records/s "
        f"({catchup['records']:,} records in {catchup['elapsed_s']:.2f} s)",
        "verification: every record read back in order, hash chain intact (live and catch-up)",
    ]


def terminal(out: TextIO = sys.stderr) -> TextIO | None:
    return out if out.isatty() else None
