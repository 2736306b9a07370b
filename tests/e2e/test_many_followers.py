"""A thousand following sessions on one server (spec §5.1, §5.3).

Half follow over SSE on their own HTTP/1.1 connections, half over S2S multiplexed
on HTTP/2 connections. With all of them idle at the tail the server keeps
answering other requests, one append reaches every session, and closing them
all leaves the server as it was. Delivery times are printed (``-s``) rather than
asserted; ``manage.py s2bench`` measures them properly.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from streams.protocol import messages
from streams.protocol.s2s import FrameDecoder

pytestmark = pytest.mark.e2e

SSE_FOLLOWERS = 500
S2S_FOLLOWERS = 500
H2_CONNECTIONS = 2
BODY = "fan-out"
SETTLE_TIMEOUT_S = 60.0


async def sse_follower(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], ready: Callable[[], None]
) -> float:
    """Follow over SSE; the time the live record arrived."""
    async with client.stream(
        "GET", path, params={"seq_num": 1}, headers={**headers, "accept": "text/event-stream"}
    ) as response:
        assert response.status_code == 200
        buffer = b""
        async for chunk in response.aiter_raw():
            buffer += chunk
            while b"\n\n" in buffer:
                event, buffer = buffer.split(b"\n\n", 1)
                if event.startswith(b"event: ping"):
                    ready()
                elif event.startswith(b"event: batch"):
                    assert f'"body":"{BODY}"'.encode() in event, event
                    return time.monotonic()
    raise AssertionError("the SSE session ended without the live record")


async def s2s_follower(
    client: httpx.AsyncClient, path: str, headers: dict[str, str], ready: Callable[[], None]
) -> float:
    """Follow over S2S; the time the live record arrived."""
    async with client.stream(
        "GET", path, params={"seq_num": 1}, headers={**headers, "content-type": "s2s/proto"}
    ) as response:
        assert response.status_code == 200
        decoder = FrameDecoder()
        async for chunk in response.aiter_raw():
            for frame in decoder.feed(chunk):
                assert not frame.terminal, frame.payload
                batch = messages.ReadBatch.FromString(frame.message())
                if not batch.records:
                    ready()
                    continue
                assert [r.body for r in batch.records] == [BODY.encode()]
                return time.monotonic()
    raise AssertionError("the S2S session ended without the live record")


@contextlib.asynccontextmanager
async def clients() -> AsyncIterator[tuple[httpx.AsyncClient, list[httpx.AsyncClient]]]:
    timeout = httpx.Timeout(10.0, read=SETTLE_TIMEOUT_S)
    h1 = httpx.AsyncClient(
        http1=True, timeout=timeout, limits=httpx.Limits(max_connections=SSE_FOLLOWERS + 10)
    )
    # http1=False over http:// is h2c with prior knowledge; one pool = one connection.
    h2 = [
        httpx.AsyncClient(
            http1=False, http2=True, timeout=timeout, limits=httpx.Limits(max_connections=1)
        )
        for _ in range(H2_CONNECTIONS)
    ]
    try:
        yield h1, h2
    finally:
        for client in (h1, *h2):
            await client.aclose()


async def fan_out(server_url: str) -> list[float]:
    basin, stream = f"fan-{uuid.uuid4().hex[:12]}", "s"
    headers = {"s2-basin": basin}
    path = f"{server_url}/v1/streams/{stream}/records"
    async with clients() as (h1, h2):
        assert (await h1.post(f"{server_url}/v1/basins", json={"basin": basin})).status_code == 201
        created = await h1.post(
            f"{server_url}/v1/streams", json={"stream": stream}, headers=headers
        )
        assert created.status_code == 201
        first = await h1.post(path, json={"records": [{"body": "before"}]}, headers=headers)
        assert first.status_code == 200

        ready = 0
        all_ready = asyncio.Event()

        def mark_ready() -> None:
            nonlocal ready
            ready += 1
            if ready == SSE_FOLLOWERS + S2S_FOLLOWERS:
                all_ready.set()

        followers: list[Awaitable[float]] = [
            sse_follower(h1, path, headers, mark_ready) for _ in range(SSE_FOLLOWERS)
        ]
        followers += [
            s2s_follower(h2[i % H2_CONNECTIONS], path, headers, mark_ready)
            for i in range(S2S_FOLLOWERS)
        ]
        tasks = [asyncio.ensure_future(f) for f in followers]
        try:
            await asyncio.wait_for(all_ready.wait(), SETTLE_TIMEOUT_S)

            # Idle sessions do not get in the way of ordinary requests.
            for _ in range(20):
                health = await h1.get(f"{server_url}/health")
                assert health.status_code == 200
            tail = await h1.get(f"{path[: -len('/records')]}/records/tail", headers=headers)
            assert tail.json()["tail"]["seq_num"] == 1

            sent = time.monotonic()
            live = await h1.post(path, json={"records": [{"body": BODY}]}, headers=headers)
            assert live.status_code == 200
            arrivals = await asyncio.wait_for(asyncio.gather(*tasks), SETTLE_TIMEOUT_S)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        # Every session went away with its client; the server still serves.
        assert (await h1.get(f"{server_url}/health")).status_code == 200
        again = await h1.post(path, json={"records": [{"body": "after"}]}, headers=headers)
        assert again.json()["start"]["seq_num"] == 2
        return sorted(a - sent for a in arrivals)


def test_one_append_reaches_a_thousand_idle_followers(server_url: str) -> None:
    delays = asyncio.run(fan_out(server_url))
    assert len(delays) == SSE_FOLLOWERS + S2S_FOLLOWERS
    print(
        f"append reached {len(delays)} followers: "
        f"first {delays[0] * 1000:.1f} ms, median {delays[len(delays) // 2] * 1000:.1f} ms, "
        f"last {delays[-1] * 1000:.1f} ms"
    )
