"""Sequencing rules (spec §3.5–§3.7), pure: no I/O, no event loop."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storagecore.config import TimestampingMode
from storagecore.encoding import decode_records
from storagecore.errors import AppendConditionFailed, Invalid, StreamDeletionPending
from storagecore.records import AppendBatch, fence_record, parse_record, trim_record
from storagecore.sequencer import TimestampPolicy, WriterState, sequence, terminal_trim

PREFER = TimestampPolicy()


def _batch(
    *timestamps: int | None, match: int | None = None, token: str | None = None
) -> AppendBatch:
    return AppendBatch.build([parse_record(t, [], b"x") for t in timestamps], match, token)


@given(
    st.integers(0, 10**6),
    st.lists(st.one_of(st.none(), st.integers(0, 2 * 10**6)), min_size=1, max_size=30),
    st.booleans(),
)
def test_timestamps_never_decrease_and_respect_the_cap(
    prev: int, timestamps: list[int | None], uncapped: bool
) -> None:
    now = 10**6
    run = sequence(
        WriterState(next_seq=4, last_ts=prev),
        _batch(*timestamps),
        TimestampPolicy(uncapped=uncapped),
        now,
    )
    assigned = list(run.timestamps)
    assert assigned == sorted(assigned) and assigned[0] >= prev
    for given_ts, ts in zip(timestamps, assigned, strict=True):
        expected = now if given_ts is None else given_ts
        if not uncapped:
            expected = min(expected, now)
        assert ts >= expected
    assert [s for s, _t, _h, _b in decode_records(run.payload)] == list(
        range(4, 4 + len(timestamps))
    )
    assert run.end.seq_num == 4 + len(timestamps) and run.end.timestamp == assigned[-1]


def test_modes() -> None:
    arrival = sequence(
        WriterState(), _batch(5, None), TimestampPolicy(TimestampingMode.ARRIVAL), 99
    )
    assert list(arrival.timestamps) == [99, 99]
    zero = sequence(WriterState(), _batch(0), PREFER, 99)
    assert list(zero.timestamps) == [0]
    with pytest.raises(Invalid, match="record timestamp was required but was missing"):
        sequence(
            WriterState(), _batch(5, None), TimestampPolicy(TimestampingMode.CLIENT_REQUIRE), 99
        )


def test_fencing_is_checked_before_match_seq_num() -> None:
    state = WriterState(next_seq=3, fencing_token="a")
    with pytest.raises(AppendConditionFailed) as excinfo:
        sequence(state, _batch(None, match=9, token="b"), PREFER, 1)
    assert excinfo.value.body() == {"fencing_token_mismatch": "a"}
    with pytest.raises(AppendConditionFailed) as excinfo:
        sequence(state, _batch(None, match=9, token="a"), PREFER, 1)
    assert excinfo.value.body() == {"seq_num_mismatch": 3}


def test_fence_and_trim_commands() -> None:
    state = WriterState(next_seq=10)
    fenced = sequence(state, AppendBatch.build([fence_record("tok")], None, None), PREFER, 1)
    assert fenced.state.fencing_token == "tok"
    cleared = sequence(fenced.state, AppendBatch.build([fence_record("")], None, "tok"), PREFER, 1)
    assert cleared.state.fencing_token == ""
    trimmed = sequence(state, AppendBatch.build([trim_record(5)], None, None), PREFER, 1)
    assert trimmed.state.trim_point == 5 and trimmed.trimmed
    backwards = sequence(trimmed.state, AppendBatch.build([trim_record(2)], None, None), PREFER, 1)
    assert backwards.state.trim_point == 5 and not backwards.trimmed
    future = sequence(
        backwards.state, AppendBatch.build([trim_record(10**9)], None, None), PREFER, 1
    )
    assert future.state.trim_point == 13  # min(requested, own seq 12 + 1)


def test_rejected_batches_change_nothing_and_deletion_blocks_appends() -> None:
    state = WriterState(next_seq=1, last_ts=5)
    with pytest.raises(AppendConditionFailed):
        sequence(state, _batch(None, match=0), PREFER, 7)
    assert state == WriterState(next_seq=1, last_ts=5)
    deleting = terminal_trim(state, 7).state
    assert deleting.deleting
    with pytest.raises(StreamDeletionPending):
        sequence(deleting, _batch(None), PREFER, 8)


@pytest.mark.parametrize(
    ("headers", "body", "message"),
    [
        ([(b"", b"fence"), (b"a", b"b")], b"", "invalid header: empty name"),
        ([(b"a", b""), (b"", b"x")], b"", "invalid header: empty name"),
        ([(b"", b"launch")], b"", "unknown command"),
        (
            [(b"", b"trim")],
            b"1234567",
            "earliest sequence number to trim to was 7 bytes, must be 8",
        ),
        ([(b"", b"fence")], b"\xff", "invalid `fence` command: invalid UTF-8"),
        ([(b"", b"fence")], b"t" * 37, "fencing token must not exceed 36 bytes"),
        ([], b"x" * (1024 * 1024 - 7), "record must have metered size less than 1 MiB"),
    ],
)
def test_record_rejections(headers: list[tuple[bytes, bytes]], body: bytes, message: str) -> None:
    with pytest.raises(Invalid, match=message.replace("`", ".")):
        parse_record(None, headers, body)


def test_batch_limits() -> None:
    assert parse_record(None, [], b"x" * (1024 * 1024 - 8)).metered_bytes == 1024 * 1024
    with pytest.raises(Invalid, match="must not be empty"):
        AppendBatch.build([], None, None)
    with pytest.raises(Invalid, match="must not exceed 1000 records"):
        AppendBatch.build([parse_record(None, [], b"")] * 1001, None, None)
    half = parse_record(None, [], b"x" * (512 * 1024))
    with pytest.raises(Invalid, match="metered size of 1 MiB"):
        AppendBatch.build([half, half], None, None)


@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.integers(0, 2**40)),
            st.lists(
                st.tuples(st.binary(min_size=1, max_size=4), st.binary(max_size=4)), max_size=2
            ),
            st.binary(max_size=300),
        ),
        min_size=1,
        max_size=20,
    ),
    st.integers(0, 2**40),
)
def test_inline_encoding_matches_the_reference_encoder(
    records: list[tuple[int | None, list[tuple[bytes, bytes]], bytes]], start: int
) -> None:
    from storagecore.encoding import encode_record

    batch = AppendBatch.build([parse_record(t, h, b) for t, h, b in records], None, None)
    run = sequence(WriterState(next_seq=start), batch, TimestampPolicy(uncapped=True), 2**41)
    expected = b"".join(
        encode_record(start + i, ts, h, b)
        for i, ((_t, h, b), ts) in enumerate(zip(records, run.timestamps, strict=True))
    )
    assert run.payload == expected
    assert sum(run.lengths) == len(run.payload)
