"""``S3ObjectStore`` against a real S3 protocol server (moto on loopback)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from storagecore.objstore.s3 import S3ObjectStore
from storagecore.ports import ObjectExists
from tests.storage.support import RequestLog, make_client


def _read_raw(client: Any, bucket: str, key: str) -> bytes:
    return bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())


def test_put_then_ranged_get_list_and_delete(s3_client: Any, bucket: str) -> None:
    data = bytes(range(256)) * 4

    async def scenario() -> None:
        store = S3ObjectStore(s3_client, bucket)
        await store.put("segments/a.seg", data)
        await store.put("segments/b.seg", b"second")
        await store.put("other/c", b"third")
        assert await store.get("segments/a.seg", 0, len(data)) == data
        assert await store.get("segments/a.seg", 10, 5) == data[10:15]
        assert await store.get("segments/a.seg", len(data) - 3, 3) == data[-3:]
        # A range past the end is cut at the end, as a slice would be.
        assert await store.get("segments/a.seg", len(data) - 2, 10) == data[-2:]
        assert await store.get("segments/a.seg", len(data), 10) == b""
        assert await store.get("segments/a.seg", 7, 0) == b""
        assert await store.list_keys("segments/") == ["segments/a.seg", "segments/b.seg"]
        assert await store.list_keys("") == ["other/c", "segments/a.seg", "segments/b.seg"]
        assert await store.list_keys("nothing/") == []
        await store.delete("segments/a.seg")
        await store.delete("segments/a.seg")  # deleting a missing key is not an error
        assert await store.list_keys("segments/") == ["segments/b.seg"]
        with pytest.raises(KeyError):
            await store.get("segments/a.seg", 0, 1)
        await store.close()

    asyncio.run(scenario())
    listed = s3_client.list_objects_v2(Bucket=bucket)["Contents"]
    assert sorted(o["Key"] for o in listed) == ["other/c", "segments/b.seg"]


def test_get_is_one_ranged_request(s3_client: Any, bucket: str) -> None:
    log = RequestLog(s3_client)

    async def scenario() -> bytes:
        store = S3ObjectStore(s3_client, bucket)
        await store.put("k", b"0123456789")
        log.clear()
        got = await store.get("k", 2, 3)
        await store.close()
        return got

    assert asyncio.run(scenario()) == b"234"
    gets = log.of("GET")
    assert len(gets) == 1
    assert gets[0].headers["range"] == "bytes=2-4"


def test_put_is_create_only_and_keeps_the_first_object(s3_client: Any, bucket: str) -> None:
    log = RequestLog(s3_client)

    async def scenario() -> None:
        store = S3ObjectStore(s3_client, bucket)
        await store.put("segments/1.seg", b"first")
        with pytest.raises(ObjectExists):
            await store.put("segments/1.seg", b"second, longer than the first")
        with pytest.raises(ObjectExists):
            await store.put("segments/1.seg", b"first")  # even with the same bytes
        assert await store.get("segments/1.seg", 0, 100) == b"first"
        await store.close()

    asyncio.run(scenario())
    puts = log.of("PUT")
    assert len(puts) == 3  # a rejected create is not retried
    assert all(p.headers.get("if-none-match") == "*" for p in puts)
    assert _read_raw(s3_client, bucket, "segments/1.seg") == b"first"


def test_concurrent_creates_of_one_key_let_exactly_one_win(s3_client: Any, bucket: str) -> None:
    async def scenario() -> list[BaseException | None]:
        store = S3ObjectStore(s3_client, bucket, max_workers=8)
        results = await asyncio.gather(
            *(store.put("race", f"writer {i}".encode()) for i in range(8)),
            return_exceptions=True,
        )
        await store.close()
        return list(results)

    results = asyncio.run(scenario())
    winners = [i for i, r in enumerate(results) if r is None]
    assert len(winners) == 1, results
    assert all(isinstance(r, ObjectExists) for r in results if r is not None)
    assert _read_raw(s3_client, bucket, "race") == f"writer {winners[0]}".encode()


def test_prefix_is_added_to_keys_and_removed_from_listings(s3_client: Any, bucket: str) -> None:
    async def scenario() -> None:
        outer = S3ObjectStore(s3_client, bucket, prefix="/tenant/a/")
        other = S3ObjectStore(s3_client, bucket, prefix="tenant/b")
        await outer.put("segments/1.seg", b"a")
        await other.put("segments/1.seg", b"b")  # the same key under another prefix
        assert await outer.list_keys("") == ["segments/1.seg"]
        assert await other.get("segments/1.seg", 0, 1) == b"b"
        await outer.delete("segments/1.seg")
        assert await outer.list_keys("") == []
        assert await other.list_keys("") == ["segments/1.seg"]
        await outer.close()
        await other.close()

    asyncio.run(scenario())
    listed = s3_client.list_objects_v2(Bucket=bucket)["Contents"]
    assert [o["Key"] for o in listed] == ["tenant/b/segments/1.seg"]


def test_listing_follows_pages(s3_client: Any, bucket: str) -> None:
    keys = [f"segments/{i:04d}.seg" for i in range(7)]
    log = RequestLog(s3_client)

    async def scenario() -> list[str]:
        store = S3ObjectStore(s3_client, bucket, list_page_size=2)
        await asyncio.gather(*(store.put(k, b"x") for k in reversed(keys)))
        log.clear()
        listed = await store.list_keys("segments/")
        await store.close()
        return listed

    assert asyncio.run(scenario()) == keys
    assert len(log.of("GET")) == 4  # ListObjectsV2 pages of 2, 2, 2 and 1


def test_every_call_runs_in_the_bounded_pool_off_the_event_loop(
    s3_client: Any, bucket: str
) -> None:
    log = RequestLog(s3_client)
    loop_threads: list[str] = []

    async def scenario() -> None:
        loop_threads.append(threading.current_thread().name)
        store = S3ObjectStore(s3_client, bucket, max_workers=3)
        await asyncio.gather(*(store.put(f"k{i}", b"v") for i in range(12)))
        await asyncio.gather(*(store.get(f"k{i}", 0, 1) for i in range(12)))
        await store.list_keys("")
        await store.delete("k0")
        await store.close()

    asyncio.run(scenario())
    threads = {r.thread for r in log.requests}
    assert len(log.requests) >= 26
    assert loop_threads[0] not in threads
    assert all(name.startswith("s2-s3") for name in threads), threads
    assert len(threads) <= 3


def test_close_waits_for_calls_in_flight_and_refuses_new_ones(s3_endpoint: str) -> None:
    client = make_client(s3_endpoint)
    name = "s2-test-close"
    client.create_bucket(Bucket=name)

    async def scenario() -> None:
        store = S3ObjectStore(client, name, close_client=True)
        writes = [asyncio.ensure_future(store.put(f"k{i}", b"v" * 1000)) for i in range(5)]
        await asyncio.sleep(0)
        await store.close()
        await asyncio.gather(*writes)  # every write started before close completed
        with pytest.raises(RuntimeError):
            await store.put("late", b"v")

    asyncio.run(scenario())
    checker = make_client(s3_endpoint)
    listed = checker.list_objects_v2(Bucket=name)["Contents"]
    assert sorted(o["Key"] for o in listed) == [f"k{i}" for i in range(5)]
    checker.close()


def test_missing_bucket_fails_loudly(s3_client: Any) -> None:
    async def scenario() -> None:
        store = S3ObjectStore(s3_client, "s2-test-no-such-bucket")
        try:
            await store.put("k", b"v")
        finally:
            await store.close()

    with pytest.raises(Exception, match="NoSuchBucket"):
        asyncio.run(scenario())
