"""Reading durable records: recent ones from the streamer's cache, older ones from
segments through the chunk index (spec §4).

The reader returns stored record bytes (``storagecore.encoding``) sliced out of
blocks, so protobuf and S2S readers send them without re-encoding. It honours
the trim point at once, skips chunks whose retention expired (fixed when they
were written), and applies ``count`` / ``bytes`` / ``until`` limits record by
record only where a whole block does not fit.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from dataclasses import dataclass, field

from storagecore import limits
from storagecore.errors import StorageFailure
from storagecore.ports import Catalog, ChunkRef, Clock, ObjectMissing, ObjectStore
from storagecore.segment import Block, CorruptBlock, decode_block
from storagecore.streamer import Streamer


@dataclass(frozen=True, slots=True)
class ReadLimits:
    """What the reader may still deliver; ``None`` means unlimited."""

    count: int | None = None
    bytes: int | None = None
    until: int | None = None

    def after(self, count: int, metered: int) -> ReadLimits:
        if self.count is None and self.bytes is None:
            return self
        return ReadLimits(
            None if self.count is None else max(0, self.count - count),
            None if self.bytes is None else max(0, self.bytes - metered),
            self.until,
        )

    @property
    def exhausted(self) -> bool:
        return self.count == 0 or self.bytes == 0


@dataclass(slots=True)
class ReadBatch:
    """Consecutive records as stored bytes, with what the caller needs to go on."""

    parts: list[bytes | memoryview] = field(default_factory=list)
    count: int = 0
    metered: int = 0
    next_seq: int = 0
    last_ts: int = 0
    # A limit or ``until`` stopped the read: the session is over.
    limit_reached: bool = False

    @property
    def payload(self) -> bytes:
        return b"".join(self.parts)


class BlockCache:
    """A bounded LRU of decoded blocks read from segments."""

    def __init__(self, capacity_bytes: int = limits.block_cache_bytes_max) -> None:
        self.capacity_bytes = capacity_bytes
        self._blocks: OrderedDict[tuple[str, int], Block] = OrderedDict()
        self._bytes = 0

    def get(self, key: tuple[str, int]) -> Block | None:
        block = self._blocks.get(key)
        if block is not None:
            self._blocks.move_to_end(key)
        return block

    def put(self, key: tuple[str, int], block: Block) -> None:
        if key in self._blocks:
            return
        self._blocks[key] = block
        self._bytes += len(block.payload)
        while self._bytes > self.capacity_bytes and len(self._blocks) > 1:
            _, evicted = self._blocks.popitem(last=False)
            self._bytes -= len(evicted.payload)


class Reader:
    def __init__(
        self, catalog: Catalog, store: ObjectStore, clock: Clock, cache: BlockCache
    ) -> None:
        self.catalog = catalog
        self.store = store
        self.clock = clock
        self.cache = cache
        self._index_rows: OrderedDict[int, list[ChunkRef]] = OrderedDict()

    async def seq_for_timestamp(self, streamer: Streamer, timestamp: int) -> int:
        """The first surviving record with a timestamp at or after ``timestamp``, or the tail.

        Every durable record is indexed before it is acknowledged, so the index alone
        finds the chunk; a binary search over its timestamps finds the record."""
        for attempt in range(2):
            start = await self.catalog.first_seq_at_or_after(streamer.stream_id, timestamp)
            if start is None:
                return streamer.durable.next_seq
            chunks = await self.catalog.chunks_from(streamer.stream_id, start, 1)
            if not chunks:
                return streamer.durable.next_seq
            try:
                block = await self._load(chunks[0])
                break
            except ObjectMissing:
                if attempt:
                    raise StorageFailure(f"missing segment {chunks[0].segment_key}") from None
        index = bisect.bisect_left(block.index.timestamps, timestamp)
        return max(block.start_seq + index, streamer.durable.trim_point)

    async def read(
        self,
        streamer: Streamer,
        start_seq: int,
        wanted: ReadLimits,
        batch_count: int = limits.read_count_max,
        batch_bytes: int | None = limits.read_bytes_max,
    ) -> ReadBatch:
        """Records from ``start_seq`` up to the durable tail, at most one batch of them."""
        tail = streamer.durable.next_seq
        seq = max(start_seq, streamer.durable.trim_point)
        result = ReadBatch(next_seq=seq)
        missing: str | None = None
        while seq < tail and not self._full(result, batch_count, batch_bytes):
            recent = streamer.recent_blocks_from(seq)
            if recent is not None:
                for cached in recent:
                    if _expired(cached.expires_at_ms, self.clock):
                        seq = result.next_seq = max(seq, cached.block.end_seq)
                        continue
                    seq = self._take(cached.block, seq, wanted, batch_count, batch_bytes, result)
                    if seq < cached.block.end_seq:
                        break  # a limit, or the batch's size, stopped inside this block
                break
            chunks = await self._chunks_from(streamer.stream_id, seq)
            stopped_inside = progressed = refetch = False
            for chunk in chunks:
                if chunk.start_seq >= tail:
                    break
                # Blocks are loaded one at a time, only as far as the batch needs.
                try:
                    block = await self._load(chunk)
                except ObjectMissing:
                    # The row was replaced (compaction) or removed (trim, retention) and its
                    # segment collected since it was fetched: ask the index again, once.
                    if missing == chunk.segment_key:
                        raise StorageFailure(f"missing segment {chunk.segment_key}") from None
                    missing = chunk.segment_key
                    self.forget_stream(streamer.stream_id)
                    refetch = True
                    break
                seq = self._take(block, seq, wanted, batch_count, batch_bytes, result)
                progressed = True
                if seq < block.end_seq:
                    stopped_inside = True  # the batch is as full as it can be
                    break
            if refetch:
                continue
            if stopped_inside or not progressed:
                break  # done, or the rest expired, or it is not yet visible at this tail
        return result

    def take(
        self,
        block: Block,
        seq: int,
        wanted: ReadLimits,
        batch_count: int = limits.read_count_max,
        batch_bytes: int | None = limits.read_bytes_max,
    ) -> ReadBatch:
        """Records of one block from ``seq`` within the limits (for live, followed blocks)."""
        if (
            seq <= block.start_seq
            and wanted.count is None
            and wanted.bytes is None
            and (wanted.until is None or block.last_ts < wanted.until)
            and block.record_count <= batch_count
            and (batch_bytes is None or block.metered_bytes <= batch_bytes)
        ):
            # The whole block, as a follower usually takes it.
            return ReadBatch(
                [block.payload],
                block.record_count,
                block.metered_bytes,
                block.end_seq,
                block.last_ts,
            )
        result = ReadBatch(next_seq=seq)
        self._take(block, seq, wanted, batch_count, batch_bytes, result)
        return result

    @staticmethod
    def _full(result: ReadBatch, batch_count: int, batch_bytes: int | None) -> bool:
        return (
            result.limit_reached
            or result.count >= batch_count
            or (batch_bytes is not None and result.metered >= batch_bytes)
        )

    def _take(
        self,
        block: Block,
        seq: int,
        wanted: ReadLimits,
        batch_count: int,
        batch_bytes: int | None,
        result: ReadBatch,
    ) -> int:
        first = max(seq, block.start_seq) - block.start_seq
        n = block.record_count
        if first >= n:
            return result.next_seq
        index = block.index
        offsets = block.offsets()
        remaining = wanted.after(result.count, result.metered)
        room_count = batch_count - result.count
        if remaining.count is not None:
            room_count = min(room_count, remaining.count)
        room_bytes = None if batch_bytes is None else batch_bytes - result.metered
        if remaining.bytes is not None:
            room_bytes = remaining.bytes if room_bytes is None else min(room_bytes, remaining.bytes)
        last = n
        slice_metered = sum(index.metered[first:])
        fits = (
            n - first <= room_count
            and (room_bytes is None or slice_metered <= room_bytes)
            and (wanted.until is None or block.last_ts < wanted.until)
        )
        if not fits:
            last = first
            taken_bytes = 0
            while last < n and last - first < room_count:
                size = index.metered[last]
                if wanted.until is not None and index.timestamps[last] >= wanted.until:
                    result.limit_reached = True
                    break
                if room_bytes is not None and taken_bytes + size > room_bytes:
                    # A user limit ends the read; the batch limit only ends the batch.
                    if remaining.bytes is not None and taken_bytes + size > remaining.bytes:
                        result.limit_reached = True
                    break
                taken_bytes += size
                last += 1
            if remaining.count is not None and last - first >= remaining.count:
                result.limit_reached = True
            slice_metered = taken_bytes
        elif remaining.count is not None and n - first == remaining.count:
            result.limit_reached = True
        if last > first:
            result.parts.append(memoryview(block.payload)[offsets[first] : offsets[last]])
            result.count += last - first
            result.metered += slice_metered
            result.last_ts = index.timestamps[last - 1]
        result.next_seq = block.start_seq + last
        return result.next_seq

    async def _chunks_from(self, stream_id: int, seq: int) -> list[ChunkRef]:
        """Index rows from ``seq`` on. Rows are immutable once committed, so the rows of the
        last fetch serve the following reads of a sequential reader without a query."""
        cached = self._index_rows.get(stream_id)
        if cached:
            now = self.clock.now_ms()
            for position, chunk in enumerate(cached):
                if chunk.end_seq > seq:
                    if chunk.start_seq <= seq and not _expired(chunk.expires_at_ms, self.clock):
                        rows = cached[position:]
                        if all(not _expired_at(c.expires_at_ms, now) for c in rows):
                            self._index_rows.move_to_end(stream_id)
                            return rows
                    break
        fetch = limits.index_rows_per_fetch
        if cached and seq >= cached[-1].end_seq:
            # A sequential reader used up the last fetch: fetch more at a time (a stream of
            # many small blocks would otherwise cost a query per few blocks).
            fetch = max(fetch, min(2 * len(cached), limits.index_rows_per_fetch_max))
        rows = await self.catalog.chunks_from(stream_id, seq, fetch)
        self._index_rows[stream_id] = rows
        self._index_rows.move_to_end(stream_id)
        while len(self._index_rows) > limits.index_cache_streams_max:
            self._index_rows.popitem(last=False)
        return rows

    def forget_stream(self, stream_id: int) -> None:
        self._index_rows.pop(stream_id, None)

    async def _load(self, chunk: ChunkRef) -> Block:
        key = (chunk.segment_key, chunk.offset)
        block = self.cache.get(key)
        if block is None:
            data = await self.store.get(chunk.segment_key, chunk.offset, chunk.length)
            try:
                block = decode_block(data)
            except CorruptBlock as exc:
                raise StorageFailure(f"corrupt block in {chunk.segment_key}: {exc}") from None
            if block.stream_id != chunk.stream_id or block.start_seq != chunk.start_seq:
                raise StorageFailure(f"index and block disagree in {chunk.segment_key}")
            self.cache.put(key, block)
        return block


def _expired(expires_at_ms: int | None, clock: Clock) -> bool:
    return expires_at_ms is not None and expires_at_ms <= clock.now_ms()


def _expired_at(expires_at_ms: int | None, now_ms: int) -> bool:
    return expires_at_ms is not None and expires_at_ms <= now_ms
