"""The unary modes of ``s2bench`` (plain HTTP requests, ``--unary MODE``).

* ``latency``    -- serial appends of one 128-byte record; ack latency percentiles.
* ``throughput`` -- back-to-back protobuf appends of ``--batch-bytes`` batches of
  ``--record-size`` records, ``--concurrency`` requests in flight; acknowledged MiB/s.
* ``read``       -- fill a stream with ``--total-mib`` MiB, then read it back from
  the start with unary protobuf reads; MiB/s and records/s.
* ``fanin``      -- one append to each of ``--streams`` streams at once; appends/s.

Each run creates its own streams and checks sequence numbers and counts.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
import uuid
from typing import Any

import httpx

from streams.protocol import messages

PROTOBUF = "application/protobuf"
logging.getLogger("httpx").setLevel(logging.WARNING)
MIB = 1024 * 1024
MODES = ("latency", "throughput", "read", "fanin")


class BenchFailure(Exception):
    """A request failed or returned something unexpected."""


async def run_unary(options: dict[str, Any]) -> list[str]:
    return await _run(options)


def _client(options: dict[str, Any], connections: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=options["endpoint"].rstrip("/"),
        headers={"s2-basin": options["basin"], "authorization": "Bearer ignored"},
        http1=not options["http2"],
        http2=options["http2"],
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        timeout=60.0,
    )


def _batch(record_size: int, count: int, tag: bytes) -> bytes:
    body = (tag * (record_size // max(1, len(tag)) + 1))[:record_size]
    records = [messages.AppendRecord(body=body) for _ in range(count)]
    return messages.AppendInput(records=records).SerializeToString()


async def _append(client: httpx.AsyncClient, stream: str, payload: bytes) -> Any:
    response = await client.post(
        f"/v1/streams/{stream}/records",
        content=payload,
        headers={"content-type": PROTOBUF, "accept": PROTOBUF},
    )
    if response.status_code != 200:
        raise BenchFailure(f"append failed: {response.status_code} {response.text[:200]}")
    return messages.AppendAck.FromString(response.content)


async def _new_stream(client: httpx.AsyncClient) -> str:
    name = f"bench-{uuid.uuid4().hex[:12]}"
    response = await client.post(
        "/v1/streams",
        json={"stream": name, "config": {"retention_policy": {"age": 3600}}},
    )
    if response.status_code != 201:
        raise BenchFailure(f"creating the stream failed: {response.status_code} {response.text}")
    return name


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return (
        f"min {ordered[0] * 1000:.2f} ms, p50 {at(0.50):.2f} ms, p90 {at(0.90):.2f} ms, "
        f"p99 {at(0.99):.2f} ms, max {ordered[-1] * 1000:.2f} ms"
    )


async def _run(options: dict[str, Any]) -> list[str]:
    mode = options["unary"]
    connections = max(options["concurrency"], 1 if mode != "fanin" else 64)
    async with _client(options, connections) as client:
        if mode == "latency":
            return await _latency(client, options)
        if mode == "throughput":
            return await _throughput(client, options)
        if mode == "read":
            return await _read(client, options)
        return await _fanin(client, options)


async def _latency(client: httpx.AsyncClient, options: dict[str, Any]) -> list[str]:
    stream = await _new_stream(client)
    payload = _batch(128 - 8, 1, b"l")
    samples = []
    for i in range(options["count"]):
        started = time.perf_counter()
        ack = await _append(client, stream, payload)
        samples.append(time.perf_counter() - started)
        if ack.start.seq_num != i:
            raise BenchFailure(f"expected seq {i}, got {ack.start.seq_num}")
    samples = samples[len(samples) // 20 :]  # drop the warm-up
    return [f"serial 128-byte appends ({len(samples)}): {_percentiles(samples)}"]


async def _throughput(client: httpx.AsyncClient, options: dict[str, Any]) -> list[str]:
    stream = await _new_stream(client)
    per_batch = max(1, min(1000, options["batch_bytes"] // (options["record_size"] + 8)))
    payload = _batch(options["record_size"], per_batch, b"t")
    metered = per_batch * (options["record_size"] + 8)
    deadline = time.perf_counter() + options["duration"]
    acked = 0
    latencies: list[float] = []

    async def worker() -> None:
        nonlocal acked
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await _append(client, stream, payload)
            latencies.append(time.perf_counter() - started)
            acked += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(options["concurrency"])))
    elapsed = time.perf_counter() - started
    tail = (await client.get(f"/v1/streams/{stream}/records/tail")).json()["tail"]["seq_num"]
    if tail != acked * per_batch:
        raise BenchFailure(f"tail {tail} != acknowledged records {acked * per_batch}")
    return [
        f"{acked} batches x {per_batch} records x {options['record_size']} B, "
        f"concurrency {options['concurrency']}: {acked * metered / MIB / elapsed:.1f} MiB/s, "
        f"{acked * per_batch / elapsed:,.0f} records/s; ack {_percentiles(latencies)}"
    ]


async def _read(client: httpx.AsyncClient, options: dict[str, Any]) -> list[str]:
    stream = await _new_stream(client)
    per_batch = max(1, min(1000, options["batch_bytes"] // (options["record_size"] + 8)))
    payload = _batch(options["record_size"], per_batch, b"r")
    batches = max(1, options["total_mib"] * MIB // (per_batch * (options["record_size"] + 8)))
    semaphore = asyncio.Semaphore(8)

    async def fill() -> None:
        async with semaphore:
            await _append(client, stream, payload)

    await asyncio.gather(*(fill() for _ in range(batches)))
    total = batches * per_batch
    seq, read_bytes = 0, 0
    started = time.perf_counter()
    while seq < total:
        response = await client.get(
            f"/v1/streams/{stream}/records",
            params={"seq_num": seq},
            headers={"accept": PROTOBUF},
        )
        if response.status_code != 200:
            raise BenchFailure(f"read failed: {response.status_code} {response.text[:200]}")
        batch = messages.ReadBatch.FromString(response.content)
        if not batch.records or batch.records[0].seq_num != seq:
            raise BenchFailure(f"read from {seq} returned the wrong records")
        seq += len(batch.records)
        read_bytes += sum(len(r.body) + 8 for r in batch.records)
    elapsed = time.perf_counter() - started
    return [
        f"read {total:,} records ({read_bytes / MIB:.0f} MiB) in {elapsed:.2f} s: "
        f"{read_bytes / MIB / elapsed:.1f} MiB/s, {total / elapsed:,.0f} records/s"
    ]


async def _fanin(client: httpx.AsyncClient, options: dict[str, Any]) -> list[str]:
    names = [f"fanin-{uuid.uuid4().hex[:8]}-{i}" for i in range(options["streams"])]
    semaphore = asyncio.Semaphore(64)
    payload = _batch(128 - 8, 1, b"f")

    async def create(name: str) -> None:
        async with semaphore:
            response = await client.post("/v1/streams", json={"stream": name})
            if response.status_code != 201:
                raise BenchFailure(f"create failed: {response.status_code}")

    await asyncio.gather(*(create(n) for n in names))
    latencies: list[float] = []

    async def one(name: str) -> None:
        async with semaphore:
            started = time.perf_counter()
            ack = await _append(client, name, payload)
            latencies.append(time.perf_counter() - started)
            if ack.start.seq_num != 0:
                raise BenchFailure("unexpected sequence number")

    segments_before = _segment_count(options["count_segments"])
    started = time.perf_counter()
    await asyncio.gather(*(one(n) for n in names))
    elapsed = time.perf_counter() - started
    lines = [
        f"{len(names)} streams, one append each (64 in flight): "
        f"{len(names) / elapsed:,.0f} appends/s; ack {_percentiles(latencies)}; "
        f"mean {statistics.mean(latencies) * 1000:.2f} ms"
    ]
    if options["count_segments"]:
        written = _segment_count(options["count_segments"]) - segments_before
        lines.append(f"segments written for {len(names)} appends: {written}")
    return lines


def _segment_count(local_root: str | None) -> int:
    if not local_root:
        return 0
    from pathlib import Path

    return sum(1 for _ in (Path(local_root) / "objects").rglob("*.seg"))
