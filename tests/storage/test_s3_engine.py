"""The whole engine on S3 (moto on loopback): appends, group commit, restart, ranged reads."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from storagecore import paths
from storagecore.catalog.django import DjangoCatalog
from storagecore.catalog.memory import MemoryCatalog
from storagecore.encoding import decode_records
from storagecore.engine import Engine, EngineSettings
from storagecore.errors import Unavailable
from storagecore.objstore.s3 import S3ObjectStore
from storagecore.ports import Catalog, SystemClock
from storagecore.reader import ReadLimits
from storagecore.records import AppendBatch, parse_record
from storagecore.streamer import StreamSettings
from tests.storage.support import RequestLog

SETTINGS = StreamSettings()
PREFIX = "tenant-1/"


def _batch(*bodies: bytes) -> AppendBatch:
    return AppendBatch.build([parse_record(None, [], body) for body in bodies], None, None)


async def _read_all(engine: Engine, stream_id: int) -> list[tuple[int, bytes]]:
    streamer = engine.streamer(stream_id)
    await streamer.load()
    out: list[tuple[int, bytes]] = []
    seq = 0
    while True:
        batch = await engine.reader.read(streamer, seq, ReadLimits(), batch_count=25)
        records = [(r[0], r[3]) for r in decode_records(batch.payload)]
        if not records:
            return out
        out.extend(records)
        seq = batch.next_seq


def _segment_keys(client: Any, bucket: str) -> list[str]:
    listed = client.list_objects_v2(Bucket=bucket).get("Contents", [])
    return sorted(o["Key"] for o in listed)


def _epoch(key: str) -> int:
    parsed = paths.parse_segment_key(key)
    assert parsed is not None, key
    return parsed[0]


async def _append_and_restart(client: Any, bucket: str, catalog: Catalog) -> RequestLog:
    clock = SystemClock()
    settings = EngineSettings(flush_interval_s=0.02, key_prefix=PREFIX)
    store = S3ObjectStore(client, bucket)
    first = Engine(store, catalog, clock, settings)
    await first.start()
    # Concurrent appends to three streams are batched into few segments.
    appends = [(s, _batch(f"s{s}-r{i}".encode())) for s in (1, 2, 3) for i in range(10)]
    acks = await asyncio.gather(*(first.append(s, batch, SETTINGS) for s, batch in appends))
    assert [a.start.seq_num for a in acks] == list(range(10)) * 3
    await first.append(1, _batch(b"x" * 100_000, b"y"), SETTINGS)
    flushes = first.committer.flushes
    assert 1 <= flushes < 31
    await first.stop()
    await store.close()

    keys = _segment_keys(client, bucket)
    assert len(keys) == flushes
    assert all(k.startswith(f"{PREFIX}segments/") for k in keys)
    assert {_epoch(k) for k in keys} == {first.epoch}

    # A new engine (a restarted server) reads everything back from the bucket.
    store = S3ObjectStore(client, bucket)
    log = RequestLog(client)
    second = Engine(store, catalog, clock, settings)
    await second.start()
    assert second.epoch == first.epoch + 1
    assert (await second.tail(1)).seq_num == 12
    assert await _read_all(second, 1) == [
        *((i, f"s1-r{i}".encode()) for i in range(10)),
        (10, b"x" * 100_000),
        (11, b"y"),
    ]
    for s in (2, 3):
        assert await _read_all(second, s) == [(i, f"s{s}-r{i}".encode()) for i in range(10)]
    gets = log.of("GET")
    assert gets and all(g.headers["range"].startswith("bytes=") for g in gets)
    ack = await second.append(2, _batch(b"after restart"), SETTINGS)
    assert ack.start.seq_num == 10
    # A third start fences the second engine: its appends fail and write no index rows.
    restarted = Engine(S3ObjectStore(client, bucket), catalog, clock, settings)
    await restarted.start()
    with pytest.raises(Unavailable):
        await second.append(2, _batch(b"stale"), SETTINGS)
    assert (await restarted.tail(2)).seq_num == 11
    await second.stop()
    await restarted.stop()
    await store.close()
    await restarted.store.close()
    new_keys = _segment_keys(client, bucket)
    # The fenced engine's last segment was written but never indexed: garbage, not data.
    assert {_epoch(k) for k in new_keys} == {first.epoch, second.epoch}
    return log


def test_engine_on_s3_with_memory_catalog(s3_client: Any, bucket: str) -> None:
    asyncio.run(_append_and_restart(s3_client, bucket, MemoryCatalog()))


@pytest.mark.usefixtures("transactional_db")
def test_engine_on_s3_with_django_catalog(s3_client: Any, bucket: str) -> None:
    async def scenario() -> None:
        catalog = DjangoCatalog()
        try:
            await _append_and_restart(s3_client, bucket, catalog)
        finally:
            await catalog.close()

    asyncio.run(scenario())
