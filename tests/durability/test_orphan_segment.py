"""A segment whose flush never committed is garbage: never acknowledged, never read.

The engine runs on a real local directory (``LocalObjectStore``, fsync'd files) with a
catalog whose ``commit_flush`` fails once *after* the segment was written: in memory,
or in the Django database, where the index rows and stream state are written inside
the transaction and then rolled back. The appends of that flush (and one pipelined
behind it) fail with ``StorageFailure``, the tail does not move, the orphan segment
file holds their records but no read ever returns them, and the next append takes
the sequence numbers they would have had, also after a restart on the same storage.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from django.db import transaction

from storagecore.catalog.django import DjangoCatalog, _commit_flush
from storagecore.catalog.memory import MemoryCatalog
from storagecore.encoding import decode_records
from storagecore.engine import Engine, EngineSettings
from storagecore.errors import StorageFailure
from storagecore.objstore.localfs import LocalObjectStore
from storagecore.ports import Catalog, ChunkRef
from storagecore.reader import ReadLimits
from storagecore.records import AppendBatch, parse_record
from storagecore.segment import SEGMENT_HEADER_BYTES, decode_block, decode_segment_header
from storagecore.sequencer import WriterState
from storagecore.streamer import StreamSettings

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(60)]

STREAM = 7
SETTINGS = StreamSettings()
COMMIT_DELAY_S = 0.05  # long enough for a second append to queue behind the failing flush


class InjectedFailure(RuntimeError):
    pass


class FailingMemoryCatalog(MemoryCatalog):
    fail = 0

    async def commit_flush(
        self, epoch: int, chunks: Sequence[ChunkRef], states: dict[int, WriterState]
    ) -> None:
        if self.fail:
            self.fail -= 1
            await asyncio.sleep(COMMIT_DELAY_S)
            raise InjectedFailure("the database went away")
        await super().commit_flush(epoch, chunks, states)


class FailingDjangoCatalog(DjangoCatalog):
    fail = 0

    async def commit_flush(
        self, epoch: int, chunks: Sequence[ChunkRef], states: dict[int, WriterState]
    ) -> None:
        if not self.fail:
            await super().commit_flush(epoch, chunks, states)
            return
        self.fail -= 1

        def write_rows_then_fail() -> None:
            with transaction.atomic():
                _commit_flush(epoch, chunks, states)  # index rows and states written ...
                time.sleep(COMMIT_DELAY_S)
                raise InjectedFailure("the transaction failed at commit")  # ... rolled back

        await self._in(self._writer, write_rows_then_fail)


FailingCatalog = FailingMemoryCatalog | FailingDjangoCatalog


def _batch(*bodies: bytes) -> AppendBatch:
    return AppendBatch.build([parse_record(None, [], body) for body in bodies], None, None)


async def _bodies(engine: Engine, start: int = 0) -> list[bytes]:
    streamer = engine.streamer(STREAM)
    await streamer.load()
    out: list[bytes] = []
    seq = start
    while seq < streamer.tail.seq_num:
        batch = await engine.reader.read(streamer, seq, ReadLimits())
        assert batch.count, f"empty read at {seq} below the tail {streamer.tail.seq_num}"
        for record_seq, _ts, _headers, body in decode_records(batch.payload):
            assert record_seq == seq
            out.append(body)
            seq += 1
    return out


def _segment_files(objects: Path) -> list[Path]:
    return sorted(p for p in (objects / "segments").iterdir() if not p.name.startswith("."))


async def _referenced_keys(catalog: Catalog) -> set[str]:
    return {chunk.segment_key for chunk in await catalog.chunks_from(STREAM, 0, 1000)}


async def _close(catalog: FailingCatalog) -> None:
    if isinstance(catalog, DjangoCatalog):
        await catalog.close()


async def _scenario(objects: Path, catalogs: Callable[[], FailingCatalog]) -> None:
    """``catalogs()`` gives the catalog of each server run: the same data on every call."""
    catalog = catalogs()
    engine = Engine(LocalObjectStore(objects), catalog, catalog.clock, EngineSettings())
    await engine.start()
    kept = [b"kept-0", b"kept-1", b"kept-2"]
    ack = await engine.append(STREAM, _batch(*kept), SETTINGS)
    assert (ack.start.seq_num, ack.end.seq_num) == (0, 3)
    assert len(_segment_files(objects)) == 1

    # The next flush writes its segment, then its commit fails.
    catalog.fail = 1
    doomed = asyncio.create_task(engine.append(STREAM, _batch(b"lost-0", b"lost-1"), SETTINGS))
    await asyncio.sleep(COMMIT_DELAY_S / 5)
    # Sequenced on top of the doomed batch, queued for the flush after it.
    pipelined = asyncio.create_task(engine.append(STREAM, _batch(b"lost-2"), SETTINGS))
    results = await asyncio.gather(doomed, pipelined, return_exceptions=True)
    assert all(isinstance(r, StorageFailure) for r in results), results
    assert catalog.fail == 0

    # Nothing moved: the tail in memory and in the catalog.
    assert (await engine.tail(STREAM)).seq_num == 3
    assert (await catalog.load_state(STREAM)).next_seq == 3
    # The orphan is a complete, durable segment file holding the failed records ...
    files = _segment_files(objects)
    assert len(files) == 2
    referenced = await _referenced_keys(catalog)
    orphans = [f for f in files if f"segments/{f.name}" not in referenced]
    assert len(orphans) == 1
    data = orphans[0].read_bytes()
    assert decode_segment_header(data)[0] == engine.epoch
    block = decode_block(data[SEGMENT_HEADER_BYTES:])
    assert (block.stream_id, block.start_seq) == (STREAM, 3)
    assert [r[3] for r in decode_records(block.payload)] == [b"lost-0", b"lost-1"]
    # ... which no read returns.
    assert await _bodies(engine) == kept

    # The next append takes the sequence numbers the failed ones would have had.
    ack = await engine.append(STREAM, _batch(b"after-0"), SETTINGS)
    assert (ack.start.seq_num, ack.end.seq_num, ack.tail.seq_num) == (3, 4, 4)
    assert await _bodies(engine) == [*kept, b"after-0"]
    assert await _bodies(engine, 3) == [b"after-0"]
    await engine.stop()
    await _close(catalog)

    # A restart on the same storage reads through the index only: the orphan stays unread.
    catalog = catalogs()
    engine = Engine(LocalObjectStore(objects), catalog, catalog.clock, EngineSettings())
    await engine.start()
    assert (await engine.tail(STREAM)).seq_num == 4
    assert await _bodies(engine) == [*kept, b"after-0"]
    ack = await engine.append(STREAM, _batch(b"after-1"), SETTINGS)
    assert ack.start.seq_num == 4
    assert await _bodies(engine) == [*kept, b"after-0", b"after-1"]
    assert len(_segment_files(objects)) == 4
    assert orphans[0].exists()
    assert f"segments/{orphans[0].name}" not in await _referenced_keys(catalog)
    await engine.stop()
    await _close(catalog)


def test_uncommitted_segment_is_ignored_memory_catalog(tmp_path: Path) -> None:
    shared = FailingMemoryCatalog()
    asyncio.run(_scenario(tmp_path / "objects", lambda: shared))


def test_uncommitted_segment_is_ignored_django_catalog(
    tmp_path: Path, transactional_db: None
) -> None:
    asyncio.run(_scenario(tmp_path / "objects", FailingDjangoCatalog))
