"""The S2S framing codec (spec §5.2): layout, incremental decoding, limits, compression.

The reference codec is ``s2-api``'s ``v1::stream::s2s`` (``FrameDecoder``,
``SessionMessage``, ``CompressionAlgorithm::from_accept_encoding``); where a test pins a
detail that the spec leaves implicit, the docstring says what the reference does.
"""

from __future__ import annotations

import gzip
import itertools
import struct
import zlib

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from s2_sdk._s2s import _protocol as sdk_protocol
from s2_sdk._types import Compression as SdkCompression

from storagecore import limits
from streams.protocol import messages
from streams.protocol.s2s import (
    FRAME_LENGTH_MAX,
    PAYLOAD_BYTES_MAX,
    Compression,
    Frame,
    FrameDecoder,
    FrameError,
    choose_compression,
    encode_message,
    encode_terminal,
)

THRESHOLD = limits.compress_body_bytes_min
MIB = 1024 * 1024

compression_st = st.sampled_from(list(Compression))
# Mostly small messages, some around and above the compression threshold.
message_st = st.one_of(
    st.binary(max_size=64),
    st.binary(min_size=THRESHOLD - 4, max_size=THRESHOLD + 4),
    st.binary(min_size=THRESHOLD, max_size=4 * THRESHOLD),
    st.integers(THRESHOLD - 2, 3 * THRESHOLD).map(lambda n: b"ab" * (n // 2)),
)


def decode_all(data: bytes) -> list[Frame]:
    decoder = FrameDecoder()
    frames = decoder.feed(data)
    assert decoder.error is None
    assert decoder.pending == 0
    return frames


def header(length: int, flags: int) -> bytes:
    return length.to_bytes(3, "big") + bytes((flags,))


def expected_compression(message: bytes, compression: Compression) -> Compression:
    return compression if len(message) >= THRESHOLD else Compression.NONE


# Layout.


def test_regular_frame_layout() -> None:
    assert encode_message(b"abc", Compression.NONE) == b"\x00\x00\x04\x00abc"
    # An empty message (e.g. an empty ReadBatch) is a frame of length 1: just the flags.
    assert encode_message(b"", Compression.ZSTD) == b"\x00\x00\x01\x00"
    body = bytes(range(256)) * 4  # 1024 bytes, incompressible enough to keep as is
    assert encode_message(body, Compression.NONE) == b"\x00\x04\x01\x00" + body


def test_terminal_frame_layout() -> None:
    body = b'{"tail":{"seq_num":3,"timestamp":7}}'
    frame = encode_terminal(416, body)
    # Length counts the flag byte, the 2-byte status and the JSON.
    assert frame == (1 + 2 + len(body)).to_bytes(3, "big") + b"\x80" + b"\x01\xa0" + body
    [decoded] = decode_all(frame)
    assert decoded.terminal
    assert decoded.compression is Compression.NONE
    assert int.from_bytes(decoded.payload[:2], "big") == 416
    assert decoded.payload[2:] == body


def test_terminal_frames_are_never_compressed() -> None:
    body = b'{"code":"invalid","message":"' + b"x" * 4000 + b'"}'
    frame = encode_terminal(422, body)
    assert frame[3] == 0x80
    assert frame[6:] == body


def test_terminal_frame_from_the_client_is_rejected() -> None:
    [frame] = decode_all(encode_terminal(400, b'{"code":"bad_frame","message":"x"}'))
    with pytest.raises(FrameError):
        frame.message()
    # A terminal flag on an otherwise ordinary (or even empty) frame is still terminal.
    [bare] = decode_all(header(1, 0x80))
    assert bare.terminal
    with pytest.raises(FrameError):
        bare.message()


@pytest.mark.parametrize("flags", [0x10, 0x01, 0x0F, 0x1F])
def test_reconnect_and_reserved_bits_are_ignored(flags: int) -> None:
    [frame] = decode_all(header(4, flags) + b"abc")
    assert not frame.terminal
    assert frame.compression is Compression.NONE
    assert frame.message() == b"abc"


# Round trips.


@given(message_st, compression_st)
def test_round_trip(message: bytes, compression: Compression) -> None:
    encoded = encode_message(message, compression)
    assert int.from_bytes(encoded[:3], "big") == len(encoded) - 3
    [frame] = decode_all(encoded)
    assert not frame.terminal
    assert frame.compression is expected_compression(message, compression)
    assert frame.message() == message


@given(
    st.lists(st.tuples(message_st, compression_st), min_size=1, max_size=6),
    st.lists(st.integers(0, 20_000), max_size=12),
)
@settings(max_examples=200)
def test_incremental_decoding_across_arbitrary_chunk_boundaries(
    items: list[tuple[bytes, Compression]], cuts: list[int]
) -> None:
    stream = b"".join(encode_message(m, c) for m, c in items)
    points = sorted({min(cut, len(stream)) for cut in cuts} | {0, len(stream)})
    decoder = FrameDecoder()
    frames: list[Frame] = []
    for start, end in itertools.pairwise(points):
        frames += decoder.feed(stream[start:end])
        # Whatever has not become a frame yet is kept, and nothing more.
        assert decoder.pending == end - sum(3 + 1 + len(f.payload) for f in frames)
    assert decoder.pending == 0
    assert [f.message() for f in frames] == [m for m, _ in items]


@given(st.binary(max_size=300))
def test_byte_by_byte_feeding(message: bytes) -> None:
    encoded = encode_message(message, Compression.NONE) + encode_terminal(500, b"{}")
    decoder = FrameDecoder()
    frames: list[Frame] = []
    for i in range(len(encoded)):
        frames += decoder.feed(encoded[i : i + 1])
    assert [f.terminal for f in frames] == [False, True]
    assert frames[0].message() == message
    assert decoder.pending == 0


def test_truncated_stream_leaves_pending_bytes() -> None:
    encoded = encode_message(b"hello", Compression.NONE)
    decoder = FrameDecoder()
    assert decoder.feed(encoded[:2]) == []
    assert decoder.pending == 2
    assert decoder.feed(encoded[2:-1]) == []
    assert decoder.pending == len(encoded) - 1
    [frame] = decoder.feed(encoded[-1:])
    assert frame.message() == b"hello"
    assert decoder.pending == 0


def test_protobuf_read_batch_round_trip() -> None:
    batch = messages.ReadBatch(
        records=[
            messages.SequencedRecord(seq_num=i, timestamp=1000 + i, body=b"x" * 100)
            for i in range(20)
        ],
        tail=messages.StreamPosition(seq_num=20, timestamp=1019),
    )
    encoded = encode_message(batch.SerializeToString(), Compression.ZSTD)
    assert encoded[3] == 0x20
    [frame] = decode_all(encoded)
    assert messages.ReadBatch.FromString(frame.message()) == batch


# Length limits.


def assert_rejected(decoder: FrameDecoder, data: bytes) -> list[Frame]:
    """Feed ``data`` that ends in a malformed frame: the frames before it come out, the
    error is kept, and every later ``feed`` raises it."""
    frames = decoder.feed(data)
    assert isinstance(decoder.error, FrameError)
    with pytest.raises(FrameError):
        decoder.feed(b"")
    with pytest.raises(FrameError):
        decoder.feed(encode_message(b"later", Compression.NONE))
    return frames


def test_zero_length_is_an_error() -> None:
    assert assert_rejected(FrameDecoder(), b"\x00\x00\x00") == []
    assert assert_rejected(FrameDecoder(), b"\x00\x00\x00\x00abc") == []


@pytest.mark.parametrize("length", [FRAME_LENGTH_MAX + 1, 0xFFFFFF])
def test_length_above_two_mib_is_an_error_as_soon_as_the_prefix_arrives(length: int) -> None:
    assert FRAME_LENGTH_MAX == 2 * MIB
    decoder = FrameDecoder()
    assert decoder.feed(length.to_bytes(3, "big")[:2]) == []
    assert decoder.error is None
    # The payload is never awaited: the 3-byte prefix alone is enough to reject.
    assert assert_rejected(decoder, length.to_bytes(3, "big")[2:]) == []


def test_length_of_exactly_two_mib_is_accepted() -> None:
    payload = b"p" * (FRAME_LENGTH_MAX - 1)
    assert len(payload) == PAYLOAD_BYTES_MAX
    [frame] = decode_all(header(FRAME_LENGTH_MAX, 0) + payload)
    assert frame.message() == payload


def test_frames_before_a_bad_length_are_still_delivered() -> None:
    decoder = FrameDecoder()
    good = encode_message(b"ok", Compression.NONE)
    frames = assert_rejected(decoder, good + good + (FRAME_LENGTH_MAX + 1).to_bytes(3, "big"))
    assert [f.message() for f in frames] == [b"ok", b"ok"]


def test_encoding_a_message_too_large_for_a_frame_is_an_error() -> None:
    # Uncompressed: a payload of 2 MiB - 1 fits, 2 MiB does not.
    fits = bytes(range(256)) * (PAYLOAD_BYTES_MAX // 256) + b"\x00" * (PAYLOAD_BYTES_MAX % 256)
    assert len(encode_message(fits, Compression.NONE)) == 3 + FRAME_LENGTH_MAX
    with pytest.raises(FrameError):
        encode_message(fits + b"\x00", Compression.NONE)


# Compression bits and compressed payloads.


@pytest.mark.parametrize("flags", [0x60, 0x70, 0x6F])
def test_compression_bits_11_are_an_error(flags: int) -> None:
    good = encode_message(b"ok", Compression.NONE)
    frames = assert_rejected(FrameDecoder(), good + header(4, flags) + b"abc" + good)
    assert [f.message() for f in frames] == [b"ok"]


@pytest.mark.parametrize(
    ("flags", "compressed", "compression"),
    [
        (0x20, zstandard.ZstdCompressor().compress, Compression.ZSTD),
        (0x20, zstandard.ZstdCompressor(write_content_size=False).compress, Compression.ZSTD),
        (0x40, gzip.compress, Compression.GZIP),
        (0x40, lambda data: gzip.compress(data, compresslevel=1, mtime=0), Compression.GZIP),
    ],
    ids=["zstd", "zstd-no-content-size", "gzip", "gzip-level-1"],
)
def test_compressed_payloads_are_decoded(
    flags: int, compressed: object, compression: Compression
) -> None:
    message = messages.AppendInput(
        records=[messages.AppendRecord(body=b"body %d" % i) for i in range(50)]
    ).SerializeToString()
    payload = compressed(message)  # type: ignore[operator]
    [frame] = decode_all(header(1 + len(payload), flags) + payload)
    assert frame.compression is compression
    assert frame.message() == message


@pytest.mark.parametrize("size", [0, 1, 10])
def test_small_incoming_messages_may_be_compressed(size: int) -> None:
    """Clients may compress any message, whatever its size (spec §5.2)."""
    message = b"m" * size
    for flags, payload in (
        (0x20, zstandard.ZstdCompressor().compress(message)),
        (0x40, gzip.compress(message)),
    ):
        [frame] = decode_all(header(1 + len(payload), flags) + payload)
        assert frame.message() == message


@pytest.mark.parametrize(
    ("compression", "payload"),
    [
        (Compression.ZSTD, b"not zstd at all"),
        (Compression.ZSTD, zstandard.ZstdCompressor().compress(b"x" * 5000)[:-3]),
        (Compression.GZIP, b"not gzip at all"),
        (Compression.GZIP, gzip.compress(b"x" * 5000)[:-4]),
        (Compression.GZIP, zlib.compress(b"zlib, not gzip")),
    ],
    ids=["zstd-garbage", "zstd-truncated", "gzip-garbage", "gzip-truncated", "zlib-wrapper"],
)
def test_corrupt_compressed_payloads_are_errors(compression: Compression, payload: bytes) -> None:
    with pytest.raises(FrameError):
        Frame(terminal=False, compression=compression, payload=payload).message()


def test_gzip_with_a_bad_checksum_is_an_error() -> None:
    payload = bytearray(gzip.compress(b"checked " * 100))
    payload[-8] ^= 0xFF  # CRC32 in the trailer
    with pytest.raises(FrameError):
        Frame(False, Compression.GZIP, bytes(payload)).message()


@pytest.mark.parametrize(
    ("compression", "compress"),
    [
        (Compression.ZSTD, zstandard.ZstdCompressor().compress),
        (Compression.ZSTD, zstandard.ZstdCompressor(write_content_size=False).compress),
        (Compression.GZIP, lambda data: gzip.compress(data, mtime=0)),
    ],
    ids=["zstd", "zstd-no-content-size", "gzip"],
)
def test_decompressed_size_limit(compression: Compression, compress: object) -> None:
    """Decompressed payloads may hold at most 2 MiB - 1 bytes (the reference reads at most
    that many plus one and fails if it got more)."""
    at_limit = b"z" * PAYLOAD_BYTES_MAX
    frame = Frame(False, compression, compress(at_limit))  # type: ignore[operator]
    assert frame.message() == at_limit
    over = Frame(False, compression, compress(at_limit + b"z"))  # type: ignore[operator]
    with pytest.raises(FrameError):
        over.message()


def _zstd_frame_declaring(content_size: int, data: bytes = b"A") -> bytes:
    """A zstd frame whose header declares ``content_size`` but holds ``data`` (one raw block)."""
    descriptor = 0b1110_0000  # 8-byte content size field, single segment
    block_header = (1 | (len(data) << 3)).to_bytes(3, "little")  # last block, raw
    return (
        b"\x28\xb5\x2f\xfd"
        + bytes((descriptor,))
        + struct.pack("<Q", content_size)
        + block_header
        + data
    )


def test_zstd_declared_content_size_must_match() -> None:
    frame = Frame(False, Compression.ZSTD, _zstd_frame_declaring(2 * MIB))
    with pytest.raises(FrameError):
        frame.message()


def test_zstd_declared_content_size_is_not_trusted() -> None:
    frame = Frame(False, Compression.ZSTD, _zstd_frame_declaring(2**40))
    with pytest.raises(FrameError):
        frame.message()


def test_concatenated_zstd_frames_are_all_decoded() -> None:
    cctx = zstandard.ZstdCompressor()
    payload = cctx.compress(b"first ") + cctx.compress(b"second")
    assert Frame(False, Compression.ZSTD, payload).message() == b"first second"


def test_trailing_garbage_after_a_zstd_frame_is_an_error() -> None:
    payload = zstandard.ZstdCompressor().compress(b"record") + b"garbage!"
    with pytest.raises(FrameError):
        Frame(False, Compression.ZSTD, payload).message()


# Outgoing compression.


@pytest.mark.parametrize(
    ("compression", "flags"), [(Compression.ZSTD, 0x20), (Compression.GZIP, 0x40)]
)
def test_messages_are_compressed_from_1024_bytes_on(compression: Compression, flags: int) -> None:
    below = b"r" * (THRESHOLD - 1)
    encoded = encode_message(below, compression)
    assert encoded == header(THRESHOLD, 0) + below

    at = b"r" * THRESHOLD
    encoded = encode_message(at, compression)
    assert encoded[3] == flags
    assert len(encoded) < THRESHOLD  # very compressible
    [frame] = decode_all(encoded)
    assert frame.message() == at

    # The threshold is about the message, not about whether compression pays off.
    incompressible = bytes(range(256)) * 4
    encoded = encode_message(incompressible, compression)
    assert encoded[3] == flags
    assert decode_all(encoded)[0].message() == incompressible


def test_no_compression_when_the_client_accepts_none() -> None:
    big = b"r" * (10 * THRESHOLD)
    assert encode_message(big, Compression.NONE) == header(1 + len(big), 0) + big


@pytest.mark.parametrize(
    ("accept_encoding", "expected"),
    [
        (None, Compression.NONE),
        ("", Compression.NONE),
        ("identity", Compression.NONE),
        ("*", Compression.NONE),
        ("br, deflate", Compression.NONE),
        ("x-gzip", Compression.NONE),
        ("gzip", Compression.GZIP),
        (" GZIP ", Compression.GZIP),
        ("br, gzip;q=0.5", Compression.GZIP),
        ("gzip;q=0", Compression.GZIP),  # q-values are ignored, even q=0
        ("zstd", Compression.ZSTD),
        ("Zstd", Compression.ZSTD),
        ("gzip, zstd", Compression.ZSTD),  # zstd is preferred wherever it is listed
        ("gzip;q=1.0, deflate, zstd;q=0.1", Compression.ZSTD),
        ("zstd;q=0, gzip", Compression.ZSTD),
        ("br,zstd ; q=0.2,gzip", Compression.ZSTD),
        (",,gzip,", Compression.GZIP),
    ],
)
def test_choose_compression(accept_encoding: str | None, expected: Compression) -> None:
    assert choose_compression(accept_encoding) is expected


# Interoperability with the official Python SDK's codec.


@given(message_st, st.sampled_from([Compression.NONE, Compression.ZSTD, Compression.GZIP]))
def test_sdk_reads_our_frames(message: bytes, compression: Compression) -> None:
    encoded = encode_message(message, compression)
    sdk_message = sdk_protocol.deframe_message(encoded)
    assert not sdk_message.terminal
    body = sdk_message.body
    if sdk_message.compression is not SdkCompression.NONE:
        from s2_sdk._compression import decompress

        body = decompress(body, sdk_message.compression)
    assert body == message


@given(
    message_st,
    st.sampled_from([SdkCompression.NONE, SdkCompression.ZSTD, SdkCompression.GZIP]),
)
def test_we_read_sdk_frames(message: bytes, compression: SdkCompression) -> None:
    body, used = sdk_protocol.maybe_compress(message, compression)
    encoded = sdk_protocol.frame_message(sdk_protocol.Message(body, False, used))
    [frame] = decode_all(encoded)
    assert frame.compression.name == used.name
    assert frame.message() == message
