"""Which rows compaction merges (``storagecore.compaction.plan``) and how a group is encoded."""

from __future__ import annotations

import itertools
import random
from array import array

from storagecore.compaction import CompactionSettings, Row, encode, plan
from storagecore.ports import ChunkRef
from storagecore.segment import SEGMENT_HEADER_BYTES, Block, BlockIndex, decode_block

SETTINGS = CompactionSettings(target_bytes=1000, expiry_slack_ms=100, tail_runs_min=3)


def _row(start: int, end: int, length: int = 100, expires: int | None = None) -> Row:
    chunk = ChunkRef(1, start, end, start, end, end - start, expires, f"k{start}", 32, length)
    return Row(start, chunk)


def _spans(groups: list[list[Row]]) -> list[tuple[int, int]]:
    return [(g[0].chunk.start_seq, g[-1].chunk.end_seq) for g in groups]


def test_consecutive_small_rows_are_grouped_up_to_the_target() -> None:
    rows = [_row(i, i + 1, 300) for i in range(7)]
    # 300 * 3 = 900 <= 1000; a fourth would pass the target.
    assert _spans(plan(rows, SETTINGS, complete=False)) == [(0, 3), (3, 6)]
    assert _spans(plan(rows, SETTINGS, complete=True)) == [(0, 3), (3, 6)]


def test_large_rows_gaps_and_single_rows_break_groups() -> None:
    rows = [_row(0, 1), _row(1, 2), _row(2, 3, 600), _row(3, 4), _row(5, 6), _row(6, 7)]
    assert _spans(plan(rows, SETTINGS, complete=False)) == [(0, 2), (5, 7)]


def test_the_tail_waits_for_enough_runs_or_bytes() -> None:
    rows = [_row(0, 1), _row(1, 2)]
    assert plan(rows, SETTINGS, complete=True) == []
    rows.append(_row(2, 3))
    assert _spans(plan(rows, SETTINGS, complete=True)) == [(0, 3)]
    big = [_row(0, 1, 250), _row(1, 2, 250)]  # half the target
    assert _spans(plan(big, SETTINGS, complete=True)) == [(0, 2)]


def test_expiry_must_agree_within_the_slack() -> None:
    rows = [_row(0, 1, expires=1000), _row(1, 2, expires=1100), _row(2, 3, expires=1101)]
    assert _spans(plan(rows, SETTINGS, complete=False)) == [(0, 2)]
    mixed = [_row(0, 1, expires=None), _row(1, 2, expires=5), _row(2, 3, expires=None)]
    assert plan(mixed, SETTINGS, complete=False) == []


def _block(start: int, bodies: list[bytes], ts: int) -> Block:
    n = len(bodies)
    return Block(
        1,
        start,
        ts,
        ts + n - 1,
        sum(len(b) for b in bodies),
        BlockIndex(
            array("Q", range(ts, ts + n)),
            array("I", map(len, bodies)),
            array("I", map(len, bodies)),
        ),
        b"".join(bodies),
    )


def test_encode_merges_blocks_into_one_row_covering_the_same_records() -> None:
    blocks = [_block(0, [b"ab", b"c"], 10), _block(2, [b"def"], 12)]
    group = [
        Row(1, ChunkRef(1, 0, 2, 10, 11, 3, 500, "a", 32, 80)),
        Row(2, ChunkRef(1, 2, 3, 12, 12, 3, 520, "b", 32, 70)),
    ]
    data, chunk = encode(group, blocks, "new", 3, 1)
    assert (chunk.start_seq, chunk.end_seq, chunk.first_ts, chunk.last_ts) == (0, 3, 10, 12)
    assert chunk.expires_at_ms == 520 and chunk.metered_bytes == 6 and chunk.segment_key == "new"
    assert chunk.offset == SEGMENT_HEADER_BYTES
    block = decode_block(data[chunk.offset : chunk.offset + chunk.length])
    assert block.payload == b"abcdef" and list(block.index.timestamps) == [10, 11, 12]


def test_the_tail_is_merged_tier_by_tier() -> None:
    settings = CompactionSettings(target_bytes=1 << 30, expiry_slack_ms=0, tail_runs_min=8)
    rows = [_row(0, 64, 8 * 8 * 100), *(_row(64 + i, 65 + i, 100) for i in range(7))]
    assert plan(rows, settings, complete=True) == []  # 7 of tier 2 after one of tier 4
    rows.append(_row(71, 72, 100))
    assert _spans(plan(rows, settings, complete=True)) == [(64, 72)]


def test_a_slow_stream_keeps_few_rows_and_rewrites_each_byte_a_few_times() -> None:
    """Simulate 5000 one-record appends with a compaction pass after each."""
    settings = CompactionSettings(target_bytes=8 << 20, expiry_slack_ms=0, tail_runs_min=8)
    rows: list[Row] = []
    rewritten = 0
    for seq in range(5000):
        rows.append(_row(seq, seq + 1, 100))
        for group in plan(rows, settings, complete=True):
            first = rows.index(group[0])
            merged = sum(r.chunk.length for r in group)
            rewritten += merged
            chunk = ChunkRef(
                1, group[0].chunk.start_seq, group[-1].chunk.end_seq, 0, 0, 0, None, "m", 32, merged
            )
            rows[first : first + len(group)] = [Row(-1, chunk)]
        assert len(rows) < 8 * 4
    assert rewritten <= 5000 * 100 * 4


def test_random_rows_give_valid_maximal_groups() -> None:
    """Each group is contiguous, within the target, of one expiry kind and spread; and the
    row after a closed group could not have joined it."""
    rng = random.Random(7)
    for _ in range(200):
        rows, seq = [], 0
        for _ in range(rng.randint(0, 60)):
            seq += rng.choice((0, 0, 0, 1))  # sometimes a gap
            expires = None if rng.random() < 0.3 else rng.randint(0, 300)
            rows.append(_row(seq, seq + 1, rng.choice((50, 100, 200, 300, 600)), expires))
            seq += 1
        for group in plan(rows, SETTINGS, complete=False):
            chunks = [r.chunk for r in group]
            assert len(chunks) >= 2
            assert all(a.end_seq == b.start_seq for a, b in itertools.pairwise(chunks))
            assert sum(c.length for c in chunks) <= SETTINGS.target_bytes
            assert all(c.length < SETTINGS.small_bytes for c in chunks)
            expiries = [c.expires_at_ms for c in chunks]
            if None in expiries:
                assert set(expiries) == {None}
            else:
                assert max(expiries) - min(expiries) <= SETTINGS.expiry_slack_ms  # type: ignore[type-var,operator]
            following = [r for r in rows if r.chunk.start_seq == chunks[-1].end_seq]
            if following and following[0].chunk.length < SETTINGS.small_bytes:
                nxt = following[0].chunk
                grown = [*expiries, nxt.expires_at_ms]
                fits = sum(c.length for c in chunks) + nxt.length <= SETTINGS.target_bytes
                same_kind = (None in grown) == (set(grown) == {None})
                spread_ok = None in grown or (
                    max(grown) - min(grown) <= SETTINGS.expiry_slack_ms  # type: ignore[type-var,operator]
                )
                assert not (fits and same_kind and spread_ok), "a group stopped short"


def test_planning_does_not_rescan_the_group_for_each_row() -> None:
    """Planning 4,096 rows reads each row's expiry a bounded number of times (it used to
    rescan the whole group for every row: quadratic, 130 ms on the event loop)."""
    reads = 0

    class CountingChunk:
        """The fields ``plan`` reads, counting reads of the expiry."""

        def __init__(self, seq: int) -> None:
            self.start_seq, self.end_seq, self.length = seq, seq + 1, 100

        @property
        def expires_at_ms(self) -> int:
            nonlocal reads
            reads += 1
            return 10**9

    rows = [Row(i, CountingChunk(i)) for i in range(4096)]  # type: ignore[arg-type]
    groups = plan(rows, CompactionSettings(), complete=False)
    assert len(groups) == 1 and len(groups[0]) == 4096
    assert reads <= 3 * len(rows)
