"""Appends to one stream are sequenced in call order, also while the stream's state is
still being loaded (found by s2bench: an S2S session's inputs were once reordered)."""

from __future__ import annotations

import asyncio

from storagecore.catalog.memory import MemoryCatalog
from storagecore.engine import Engine, EngineSettings
from storagecore.objstore.memory import MemoryObjectStore
from storagecore.records import AppendBatch, parse_record
from storagecore.sequencer import WriterState
from storagecore.streamer import StreamSettings
from tests.unit.test_engine import FakeClock


class GatedCatalog(MemoryCatalog):
    """Loading a stream's state waits until the test opens the gate."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock)
        self.gate = asyncio.Event()

    async def load_state(self, stream_id: int) -> WriterState:
        await self.gate.wait()
        return await super().load_state(stream_id)


def _batch(body: bytes) -> AppendBatch:
    return AppendBatch.build([parse_record(None, [], body)], None, None)


async def _appends_during_the_first_load(first_loader_is_a_reader: bool) -> list[int]:
    clock = FakeClock()
    catalog = GatedCatalog(clock)
    engine = Engine(MemoryObjectStore(), catalog, clock, EngineSettings())
    await engine.start()
    try:
        if first_loader_is_a_reader:
            loader = asyncio.ensure_future(engine.streamer(1).load())
            await asyncio.sleep(0)
        first = asyncio.ensure_future(engine.append(1, _batch(b"first"), StreamSettings()))
        await asyncio.sleep(0)
        # The load completes and a second append arrives in the same loop iteration.
        catalog.gate.set()
        second = asyncio.ensure_future(engine.append(1, _batch(b"second"), StreamSettings()))
        third = asyncio.ensure_future(engine.append(1, _batch(b"third"), StreamSettings()))
        acks = await asyncio.gather(first, second, third)
        if first_loader_is_a_reader:
            await loader
        return [ack.start.seq_num for ack in acks]
    finally:
        await engine.stop()


def test_appends_keep_call_order_while_a_reader_loads_the_stream() -> None:
    assert asyncio.run(_appends_during_the_first_load(True)) == [0, 1, 2]


def test_appends_keep_call_order_while_the_first_append_loads_the_stream() -> None:
    assert asyncio.run(_appends_during_the_first_load(False)) == [0, 1, 2]
