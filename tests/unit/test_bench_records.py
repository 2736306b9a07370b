"""s2bench's records: the hand-made protobuf encoding, the hash chain and the verifier
that makes a run fail when what is read back differs from what was written."""

from __future__ import annotations

import io
from typing import Any

import pytest

from s2site.bench import cli
from s2site.bench.records import (
    HASH_HEADER,
    RECORD_OVERHEAD_BYTES,
    ChainVerifier,
    ChainWriter,
    VerificationError,
    chain_hash,
)
from s2site.bench.stats import summarize
from storagecore.records import metered_size
from streams.protocol import messages

SIZE = 256


def _written(count: int, seed: int = 0) -> tuple[ChainWriter, list[Any]]:
    """Records as a reader gets them: the writer's encoding, parsed by the protobuf runtime."""
    writer = ChainWriter(SIZE, seed)
    entries = b"".join(writer.next_record(1000 + i) for i in range(count))
    appended = messages.AppendInput.FromString(entries).records
    read = [
        messages.SequencedRecord(
            seq_num=i, timestamp=r.timestamp, headers=list(r.headers), body=r.body
        )
        for i, r in enumerate(appended)
    ]
    return writer, read


def _verify(records: list[Any], count: int, digest: bytes) -> None:
    verifier = ChainVerifier(SIZE)
    for record in records:
        verifier.check(record)
    verifier.finish(count, digest)


def test_records_have_the_metered_size_asked_for_and_client_timestamps() -> None:
    _writer, records = _written(3)
    for i, record in enumerate(records):
        headers = [(h.name, h.value) for h in record.headers]
        assert metered_size(headers, record.body) == SIZE
        assert len(record.body) == SIZE - RECORD_OVERHEAD_BYTES
        assert headers[0][0] == HASH_HEADER and len(headers[0][1]) == 8
        assert record.timestamp == 1000 + i


def test_an_intact_chain_verifies() -> None:
    writer, records = _written(50)
    _verify(records, 50, writer.digest)
    assert records[-1].headers[0].value == writer.digest


def test_the_chain_covers_every_body_in_order() -> None:
    a, b = b"a" * 10, b"b" * 10
    first = chain_hash(bytes(8), a)
    assert chain_hash(first, b) != chain_hash(chain_hash(bytes(8), b), a)
    assert chain_hash(first, b) == chain_hash(chain_hash(bytes(8), a), b)


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (lambda rs: rs.__setitem__(slice(3, 5), [rs[4], rs[3]]), "expected seq_num 3"),
        (lambda rs: rs.pop(7), "expected seq_num 7"),
        (lambda rs: rs.insert(5, rs[4]), "expected seq_num 5"),
        (lambda rs: setattr(rs[6], "body", b"x" + rs[6].body[1:]), "record 6: hash chain broken"),
        (lambda rs: setattr(rs[2], "body", rs[2].body[:-1]), "record 2: body of"),
        (lambda rs: rs[9].ClearField("headers"), "record 9: no hash header"),
    ],
    ids=["reordered", "missing", "duplicated", "altered", "truncated", "no-header"],
)
def test_corruption_is_detected(corrupt: Any, message: str) -> None:
    writer, records = _written(20)
    corrupt(records)
    with pytest.raises(VerificationError, match=message):
        _verify(records, 20, writer.digest)


def test_a_consistent_but_foreign_chain_is_detected_by_its_last_digest() -> None:
    writer, _ = _written(10)
    _other, foreign = _written(10, seed=1)
    with pytest.raises(VerificationError, match="hash chain read differs"):
        _verify(foreign, 10, writer.digest)


def test_a_short_read_or_a_different_chain_fails_at_the_end() -> None:
    writer, records = _written(10)
    with pytest.raises(VerificationError, match="read 9 records, 10 were written"):
        _verify(records[:9], 10, writer.digest)
    with pytest.raises(VerificationError, match="hash chain read differs"):
        _verify(records, 10, bytes(8))


def test_percentiles_use_nearest_rank() -> None:
    summary = summarize([i / 1000 for i in range(1, 101)])
    assert summary is not None
    assert (summary["min"], summary["p50"], summary["p90"], summary["p99"], summary["max"]) == (
        pytest.approx(1.0),
        pytest.approx(50.0),
        pytest.approx(90.0),
        pytest.approx(99.0),
        pytest.approx(100.0),
    )
    assert summarize([]) is None


def test_the_command_line_rejects_what_it_cannot_run() -> None:
    err = io.StringIO()
    with pytest.raises(SystemExit):
        cli.main(["basin", "--record-size", "100"])
    status = cli.run({"basin": "b", "endpoint": "https://example.invalid"}, io.StringIO(), err)
    assert status == cli.EXIT_FAILURE
    assert "only http://" in err.getvalue()
    assert cli.duration("250ms") == 0.25 and cli.duration("2m") == 120 and cli.duration("3") == 3
