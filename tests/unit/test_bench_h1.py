"""The bench's HTTP/1.1 client: incremental decoding of chunked bodies."""

from __future__ import annotations

import random

import pytest

from s2site.bench.h1client import Dechunker, H1Error


def _chunked(pieces: list[bytes], trailers: bytes = b"") -> bytes:
    body = b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in pieces)
    return body + b"0\r\n" + trailers + b"\r\n"


@pytest.mark.parametrize("seed", range(20))
def test_any_split_of_the_coded_body_gives_back_the_body(seed: int) -> None:
    rng = random.Random(seed)
    pieces = [rng.randbytes(rng.randint(1, 300)) for _ in range(rng.randint(1, 12))]
    coded = _chunked(pieces, trailers=b"x-trailer: 1\r\n" if seed % 2 else b"")
    dechunker = Dechunker()
    out = b""
    position = 0
    while position < len(coded):
        step = rng.randint(1, 40)
        out += dechunker.feed(coded[position : position + step])
        position += step
        assert dechunker.ended == (position >= len(coded))
    assert out == b"".join(pieces)


def test_many_chunks_in_one_read_come_out_together() -> None:
    dechunker = Dechunker()
    assert dechunker.feed(b"3\r\nabc\r\n2;ext=1\r\nde\r\n") == b"abcde"
    assert not dechunker.ended
    assert dechunker.feed(b"0\r\n\r\n") == b""
    assert dechunker.ended


@pytest.mark.parametrize("coded", [b"zz\r\nabc\r\n", b"3\r\nabcXY", b"3\r\nabc\rX", b"9" * 2000])
def test_malformed_coding_is_an_error(coded: bytes) -> None:
    with pytest.raises(H1Error):
        Dechunker().feed(coded)
