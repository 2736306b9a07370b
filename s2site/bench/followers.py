"""The followers bench: many read sessions (S2S, or SSE with ``sse``) follow one stream;
how long until a new append has reached all of them?

``followers`` sessions are opened from the start of a fresh stream (spread over
several HTTP/2 connections) and the bench waits until each is following (its first
heartbeat). Then one record is appended every ``interval_s`` for ``duration_s``
through an append session. Each record's timestamp is the moment it was due; every
follower verifies the hash chain and notes when each record arrived. Reported:
delivery latency over all deliveries, and per record the latency to the last
follower ("all delivered").
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from s2site.bench.records import ChainVerifier, ChainWriter, VerificationError
from s2site.bench.s2client import Connection, ReadSession, S2Client, SseReadSession
from s2site.bench.stats import Latencies, describe, summarize
from s2site.bench.stream import STREAM_CONFIG, Clock

SESSIONS_PER_CONNECTION = 200
READY_TIMEOUT_S = 60.0
DELIVERY_GRACE_S = 30.0


@dataclass(frozen=True, slots=True)
class FollowersConfig:
    followers: int = 1000
    record_size: int = 1024
    interval_s: float = 0.1
    duration_s: float = 10.0
    sse: bool = False


class _Follower:
    def __init__(self, record_size: int) -> None:
        self.verifier = ChainVerifier(record_size)
        self.following = asyncio.Event()


async def _follow(
    client: S2Client,
    connection: Connection,
    stream: str,
    follower: _Follower,
    clock: Clock,
    deliveries: Latencies,
    worst: list[float],
    sse: bool,
) -> None:
    session: ReadSession | SseReadSession
    if sse:
        session = await client.read_session_sse(connection, stream, 0)
    else:
        session = await client.read_session(connection, stream, 0)
    try:
        async for batch in session.batches():
            if not batch.records:
                follower.following.set()  # a heartbeat: the session is at the tail
                continue
            now = clock.now_micros()
            for record in batch.records:
                follower.verifier.check(record)
                latency = (now - record.timestamp) / 1_000_000
                deliveries.add(latency)
                seq = record.seq_num
                if seq < len(worst) and latency > worst[seq]:
                    worst[seq] = latency
    finally:
        session.cancel()


async def run_followers_bench(client: S2Client, config: FollowersConfig) -> dict[str, Any]:
    control = await client.connect()
    stream = f"bench-followers-{uuid.uuid4().hex[:8]}"
    await client.create_stream(control, stream, STREAM_CONFIG)
    try:
        return await _bench(client, control, stream, config)
    finally:
        with contextlib.suppress(Exception):
            await client.delete_stream(control, stream)


async def _bench(
    client: S2Client, control: Connection, stream: str, config: FollowersConfig
) -> dict[str, Any]:
    clock = Clock()
    expected = max(1, int(config.duration_s / config.interval_s))
    worst = [0.0] * expected
    deliveries = Latencies()
    connections = [
        await client.connect() for _ in range(math.ceil(config.followers / SESSIONS_PER_CONNECTION))
    ]
    followers = [_Follower(config.record_size) for _ in range(config.followers)]
    tasks = [
        asyncio.ensure_future(
            _follow(
                client,
                connections[i // SESSIONS_PER_CONNECTION],
                stream,
                follower,
                clock,
                deliveries,
                worst,
                config.sse,
            )
        )
        for i, follower in enumerate(followers)
    ]
    try:
        opened = time.perf_counter()
        await _all_following(followers, tasks)
        open_s = time.perf_counter() - opened
        chain = ChainWriter(config.record_size)
        session = await client.append_session(control, stream)
        acks = session.acks()
        start = time.perf_counter()
        for i in range(expected):
            due = start + i * config.interval_s
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            await session.send(chain.next_record(clock.micros(due)))
            ack = await anext(acks)
            if ack.start.seq_num != i:
                raise VerificationError(f"record {i} acknowledged at {ack.start.seq_num}")
        await session.close()
        await _all_delivered(followers, tasks, expected)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for follower in followers:
        follower.verifier.finish(expected, chain.digest)
    return {
        "stream": stream,
        "followers": config.followers,
        "protocol": "sse" if config.sse else "s2s",
        "records": expected,
        "record_size": config.record_size,
        "interval_s": config.interval_s,
        "sessions_open_s": open_s,
        "deliveries": len(deliveries),
        "delivery_latency_ms": deliveries.summary(),
        "all_delivered_latency_ms": summarize(worst),
        "verification_errors": 0,
    }


async def _all_following(followers: list[_Follower], tasks: Sequence[asyncio.Future[None]]) -> None:
    deadline = time.perf_counter() + READY_TIMEOUT_S
    while not all(f.following.is_set() for f in followers):
        _raise_failed(tasks)
        if time.perf_counter() > deadline:
            ready = sum(f.following.is_set() for f in followers)
            raise VerificationError(f"only {ready} of {len(followers)} sessions are following")
        await asyncio.sleep(0.01)


async def _all_delivered(
    followers: list[_Follower], tasks: Sequence[asyncio.Future[None]], expected: int
) -> None:
    deadline = time.perf_counter() + DELIVERY_GRACE_S
    while any(f.verifier.records < expected for f in followers):
        _raise_failed(tasks)
        if time.perf_counter() > deadline:
            short = sum(1 for f in followers if f.verifier.records < expected)
            raise VerificationError(f"{short} followers did not receive all {expected} records")
        await asyncio.sleep(0.005)


def _raise_failed(tasks: Sequence[asyncio.Future[None]]) -> None:
    for task in tasks:
        if task.done():
            task.result()
            raise VerificationError("a read session ended early")


def report_lines(report: dict[str, Any]) -> list[str]:
    return [
        f"stream {report['stream']}: {report['followers']} {report['protocol'].upper()} followers, "
        f"{report['records']} records of {report['record_size']} B, one every "
        f"{report['interval_s'] * 1000:g} ms "
        f"(sessions opened in {report['sessions_open_s']:.2f} s)",
        f"delivery latency ({report['deliveries']:,} deliveries): "
        f"{describe(report['delivery_latency_ms'])}",
        f"append to all followers: {describe(report['all_delivered_latency_ms'])}",
        "verification: every follower read every record in order, hash chain intact",
    ]
