"""A catalog held in memory: the engine's tests run against it without a database."""

from __future__ import annotations

from collections.abc import Sequence

from storagecore.ports import ChunkRef, Clock, Fenced, SystemClock
from storagecore.sequencer import WriterState


class MemoryCatalog:
    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or SystemClock()
        self.epoch = 0
        self.states: dict[int, WriterState] = {}
        self.chunks: dict[int, list[ChunkRef]] = {}
        self.commits = 0

    async def acquire_epoch(self) -> int:
        self.epoch += 1
        return self.epoch

    async def load_state(self, stream_id: int) -> WriterState:
        return self.states.get(stream_id, WriterState())

    async def commit_flush(
        self, epoch: int, chunks: Sequence[ChunkRef], states: dict[int, WriterState]
    ) -> None:
        if epoch != self.epoch:
            raise Fenced(f"writer epoch {epoch} is no longer current")
        for chunk in chunks:
            self.chunks.setdefault(chunk.stream_id, []).append(chunk)
        self.states.update(states)
        self.commits += 1

    def _live(self, stream_id: int) -> list[ChunkRef]:
        now = self.clock.now_ms()
        return [
            c
            for c in self.chunks.get(stream_id, [])
            if c.expires_at_ms is None or c.expires_at_ms > now
        ]

    async def chunks_from(self, stream_id: int, seq_num: int, limit: int) -> list[ChunkRef]:
        return [c for c in self._live(stream_id) if c.end_seq > seq_num][:limit]

    async def first_seq_at_or_after(self, stream_id: int, timestamp: int) -> int | None:
        for chunk in self._live(stream_id):
            if chunk.last_ts >= timestamp:
                return chunk.start_seq
        return None
