"""The segment format: round trips, corruption detection, and a golden fixture."""

from __future__ import annotations

from array import array

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storagecore.encoding import decode_records, encode_position, encode_record
from storagecore.segment import (
    CorruptBlock,
    decode_block,
    decode_segment_header,
    encode_block,
    encode_segment_header,
)
from streams.protocol import messages

headers_st = st.lists(st.tuples(st.binary(max_size=8), st.binary(max_size=8)), max_size=3)
record_st = st.tuples(headers_st, st.binary(max_size=64))


def _block(
    stream_id: int, start_seq: int, records: list[tuple[list[tuple[bytes, bytes]], bytes]], ts0: int
) -> bytes:
    timestamps, metered, lengths, parts = array("Q"), array("I"), array("I"), []
    for i, (headers, body) in enumerate(records):
        encoded = encode_record(start_seq + i, ts0 + i, headers, body)
        parts.append(encoded)
        timestamps.append(ts0 + i)
        metered.append(8 + len(body) + sum(2 + len(n) + len(v) for n, v in headers))
        lengths.append(len(encoded))
    return encode_block(stream_id, start_seq, timestamps, metered, lengths, b"".join(parts))


@given(
    st.integers(0, 2**64 - 1),
    st.integers(0, 2**63),
    st.lists(record_st, min_size=1, max_size=20),
    st.integers(0, 2**63),
)
def test_block_round_trip(
    stream_id: int, start_seq: int, records: list[tuple[list[tuple[bytes, bytes]], bytes]], ts0: int
) -> None:
    block = decode_block(_block(stream_id, start_seq, records, ts0))
    assert (block.stream_id, block.start_seq, block.record_count) == (
        stream_id,
        start_seq,
        len(records),
    )
    decoded = list(decode_records(block.payload))
    assert [(h, b) for _s, _t, h, b in decoded] == [(list(h), b) for h, b in records]
    assert [s for s, _t, _h, _b in decoded] == list(range(start_seq, start_seq + len(records)))
    # The stored bytes are a protobuf ReadBatch body, readable by any protobuf library.
    batch = messages.ReadBatch.FromString(block.payload + encode_position(2, 7, 9))
    assert [r.body for r in batch.records] == [b for _h, b in records]
    assert (batch.tail.seq_num, batch.tail.timestamp) == (7, 9)
    offsets = block.offsets()
    assert offsets[0] == 0 and offsets[-1] == len(block.payload)


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=30)
@given(st.lists(record_st, min_size=1, max_size=5), st.data())
def test_every_truncation_and_flipped_bit_is_detected(
    records: list[tuple[list[tuple[bytes, bytes]], bytes]], data: st.DataObject
) -> None:
    encoded = _block(3, 10, records, 1000)
    for cut in range(len(encoded)):
        with pytest.raises(CorruptBlock):
            decode_block(encoded[:cut])
    positions = data.draw(st.lists(st.integers(0, len(encoded) * 8 - 1), min_size=1, max_size=40))
    for bit in positions:
        flipped = bytearray(encoded)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(CorruptBlock):
            decode_block(bytes(flipped))


def test_every_bit_of_a_small_block_is_covered() -> None:
    encoded = _block(1, 0, [([(b"k", b"v")], b"body")], 5)
    for bit in range(len(encoded) * 8):
        flipped = bytearray(encoded)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(CorruptBlock):
            decode_block(bytes(flipped))


# Header: magic, version 2, stream 7, first seq 5, 1 record, payload 15 bytes, timestamps
# 100..100, metered 13; index columns: timestamps (100), metered (13), lengths (15);
# payload: framed record of length 13 with seq 5, timestamp 100, one header (empty name,
# value "*"), body "hi".
GOLDEN_BLOCK = bytes.fromhex(
    "5332424b02000000"
    "0700000000000000"
    "0500000000000000"
    "01000000"
    "0f000000"
    "6400000000000000"
    "6400000000000000"
    "0d00000000000000"
    "6400000000000000"
    "0d000000"
    "0f000000"
    "0a0d"
    "0805"
    "1064"
    "1a03"
    "12012a"
    "2202"
    "6869"
)


def test_golden_block() -> None:
    """Version 2 bytes, fixed: a change here is a format change and needs a new version."""
    encoded = _block(7, 5, [([(b"", b"*")], b"hi")], 100)
    assert encoded[:-4] == GOLDEN_BLOCK
    block = decode_block(encoded)
    assert block.metered_bytes == 13
    assert list(decode_records(block.payload)) == [(5, 100, [(b"", b"*")], b"hi")]


def test_segment_header() -> None:
    header = encode_segment_header(epoch=3, flush_number=9, block_count=2)
    assert decode_segment_header(header) == (3, 9, 2)
    with pytest.raises(CorruptBlock):
        decode_segment_header(header[:-1] + bytes([header[-1] ^ 1]))


def test_multi_record_index_is_columnar() -> None:
    encoded = _block(1, 0, [([], b"a"), ([], b"bb")], 7)
    index = encoded[56 : 56 + 2 * 16]
    assert index == bytes.fromhex(
        "07000000000000000800000000000000090000000a000000070000000a000000"
    )
