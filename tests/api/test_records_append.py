"""Unary append over the full HTTP stack with the record log running (spec §1.4, §1.5, §3, §6).

Every test talks to the in-process ASGI app with the server runtime started
(``records_api``): records go through the directory, the streamer, the committer and
the in-memory object store, and are read back over HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import pytest

from streams.protocol import messages
from tests.api.support import (
    BASIN,
    assert_empty,
    assert_error,
    create_stream,
    proto_record,
    records_path,
    run_deletion_pass,
    setup,
)
from tests.asgi_client import AsgiClient, Response

JSON = {"content-type": "application/json"}
PROTO = {"content-type": "application/protobuf"}
MIB = 1024 * 1024
EMPTY_NAME = "invalid header: empty name"
TOO_BIG_RECORD = "record must have metered size less than 1 MiB"
TOO_MANY = "record batch must not exceed 1000 records"
TOO_BIG_BATCH = "record batch must not exceed a metered size of 1 MiB"
EMPTY_BATCH = "record batch must not be empty"
BAD_BASE64 = "invalid Base64 encoding"
TS_REQUIRED = "record timestamp was required but was missing"


# Helpers -------------------------------------------------------------------------------------


def append(
    api: AsgiClient,
    records: list[dict[str, Any]],
    *,
    stream: str = "s",
    headers: dict[str, str] | None = None,
    basin: str = BASIN,
    **fields: Any,
) -> Response:
    return api.post(
        records_path(stream),
        json_body={"records": records, **fields},
        basin=basin,
        headers=headers,
    )


def append_ok(api: AsgiClient, records: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    response = append(api, records, **kwargs)
    assert response.status == 200, (response.status, response.body)
    assert response.header("content-type") == "application/json"
    ack: dict[str, Any] = response.json()
    return ack


def post_raw(
    api: AsgiClient, body: bytes, headers: dict[str, str], *, stream: str = "s"
) -> Response:
    return api.post(records_path(stream), body=body, headers=headers, basin=BASIN)


def read(
    api: AsgiClient, query: str = "seq_num=0", *, stream: str = "s", fmt: str = "base64"
) -> list[dict[str, Any]]:
    response = api.get(records_path(stream), query=query, basin=BASIN, headers={"s2-format": fmt})
    assert response.status == 200, (response.status, response.body)
    records: list[dict[str, Any]] = response.json()["records"]
    return records


def read_bytes(api: AsgiClient, query: str = "seq_num=0", *, stream: str = "s") -> list[Any]:
    """Records as (seq_num, timestamp, [(name, value)], body) with bytes decoded from base64."""
    out = []
    for record in read(api, query, stream=stream):
        headers = [(b64d(n), b64d(v)) for n, v in record.get("headers", [])]
        out.append((record["seq_num"], record["timestamp"], headers, b64d(record.get("body", ""))))
    return out


def tail(api: AsgiClient, stream: str = "s") -> dict[str, int]:
    response = api.get(records_path(stream) + "/tail", basin=BASIN)
    assert response.status == 200, (response.status, response.body)
    value: dict[str, int] = response.json()["tail"]
    return value


def stream_names(api: AsgiClient) -> list[str]:
    response = api.get("/v1/streams", basin=BASIN)
    assert response.status == 200, response.body
    return [info["name"] for info in response.json()["streams"]]


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def b64d(text: str) -> bytes:
    return base64.b64decode(text)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def proto_input(
    *records: Any, match_seq_num: int | None = None, fencing_token: str | None = None
) -> bytes:
    message = messages.AppendInput(records=list(records))
    if match_seq_num is not None:
        message.match_seq_num = match_seq_num
    if fencing_token is not None:
        message.fencing_token = fencing_token
    data: bytes = message.SerializeToString()
    return data


def trim_body(point: int) -> str:
    return b64(point.to_bytes(8, "big"))


def fence(token: str) -> dict[str, Any]:
    return {"headers": [["", "fence"]], "body": token}


def assert_ack(
    ack: Any, start: tuple[int, int], end: tuple[int, int], tail_: tuple[int, int]
) -> None:
    assert ack == {
        "start": {"seq_num": start[0], "timestamp": start[1]},
        "end": {"seq_num": end[0], "timestamp": end[1]},
        "tail": {"seq_num": tail_[0], "timestamp": tail_[1]},
    }


# AppendAck (spec §3.8) ------------------------------------------------------------------------


def test_ack_shape_and_positions(records_api: AsgiClient) -> None:
    setup(records_api)
    ack = append_ok(
        records_api,
        [{"body": "a", "timestamp": 10}, {"body": "b", "timestamp": 20}, {"timestamp": 30}],
    )
    assert_ack(ack, (0, 10), (3, 30), (3, 30))
    ack = append_ok(records_api, [{"body": "c", "timestamp": 40}])
    assert_ack(ack, (3, 40), (4, 40), (4, 40))
    assert tail(records_api) == {"seq_num": 4, "timestamp": 40}
    assert [r[0] for r in read_bytes(records_api)] == [0, 1, 2, 3]


def test_ack_for_a_single_record_without_timestamp_uses_arrival_time(
    records_api: AsgiClient,
) -> None:
    setup(records_api)
    before = now_ms()
    ack = append_ok(records_api, [{"body": "x"}])
    after = now_ms()
    ts = ack["start"]["timestamp"]
    assert before <= ts <= after
    assert ack["end"] == {"seq_num": 1, "timestamp": ts}
    assert ack["tail"] == ack["end"]


def test_protobuf_ack_when_accept_is_protobuf(records_api: AsgiClient) -> None:
    setup(records_api)
    append_ok(records_api, [{"timestamp": 5}])
    for n, accept in enumerate(
        ["application/protobuf", "application/x-protobuf", "application/protobuf; q=1, */*"]
    ):
        response = records_api.post(
            records_path(),
            json_body={"records": [{"body": "a", "timestamp": 7}]},
            basin=BASIN,
            headers={"accept": accept},
        )
        assert response.status == 200, response.body
        assert response.header("content-type") == "application/protobuf"
        ack = messages.AppendAck.FromString(response.body)
        assert ack.HasField("start") and ack.HasField("end") and ack.HasField("tail")
        assert (ack.start.seq_num, ack.start.timestamp) == (1 + n, 7)
        assert (ack.end.seq_num, ack.end.timestamp) == (2 + n, 7)
        assert (ack.tail.seq_num, ack.tail.timestamp) == (2 + n, 7)


@pytest.mark.parametrize(
    "accept", ["application/json", "*/*", "application/json, application/protobuf", "text/html"]
)
def test_json_ack_unless_first_accept_is_protobuf(records_api: AsgiClient, accept: str) -> None:
    setup(records_api)
    response = append(records_api, [{"body": "a"}], headers={"accept": accept})
    assert response.status == 200
    assert response.header("content-type") == "application/json"
    assert set(response.json()) == {"start", "end", "tail"}


def test_ack_tail_is_at_least_end_under_concurrency(records_api: AsgiClient) -> None:
    setup(records_api)
    append_ok(records_api, [{"body": "warm-up"}])

    async def one(i: int) -> Response:
        body = json.dumps({"records": [{"body": str(i)}]}).encode()
        headers = {"content-type": "application/json", "s2-basin": BASIN}
        return await records_api._run("POST", records_path(), "", headers, [body])

    async def many() -> list[Response]:
        return list(await asyncio.gather(*(one(i) for i in range(10))))

    responses = records_api.run(many())
    acks = [r.json() for r in responses]
    assert all(r.status == 200 for r in responses)
    starts = sorted(a["start"]["seq_num"] for a in acks)
    assert starts == list(range(1, 11))
    for ack in acks:
        assert ack["end"]["seq_num"] == ack["start"]["seq_num"] + 1
        assert ack["tail"]["seq_num"] >= ack["end"]["seq_num"]
        assert ack["tail"]["timestamp"] >= ack["end"]["timestamp"]
    assert max(a["tail"]["seq_num"] for a in acks) == 11
    assert tail(records_api)["seq_num"] == 11


# s2-format (spec §3.2) ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [None, "raw", "json", " raw ", "json\t"])
def test_raw_formats_take_strings_as_utf8(records_api: AsgiClient, fmt: str | None) -> None:
    setup(records_api)
    headers = {} if fmt is None else {"s2-format": fmt}
    record = {"headers": [["név", "érték"], ["k", ""]], "body": "héllo ☃"}
    append_ok(records_api, [record], headers=headers)
    [(_, _, got_headers, body)] = read_bytes(records_api)
    assert got_headers == [("név".encode(), "érték".encode()), (b"k", b"")]
    assert body == "héllo ☃".encode()


@pytest.mark.parametrize("fmt", ["base64", "json-binsafe", " base64 "])
def test_base64_formats_decode_strings(records_api: AsgiClient, fmt: str) -> None:
    setup(records_api)
    record = {"headers": [[b64(b"\x00name"), b64(b"\xff\xfe")]], "body": b64(b"\x00\x01\x80\xff")}
    append_ok(records_api, [record], headers={"s2-format": fmt})
    [(_, _, got_headers, body)] = read_bytes(records_api)
    assert got_headers == [(b"\x00name", b"\xff\xfe")]
    assert body == b"\x00\x01\x80\xff"


def test_base64_text_in_raw_format_is_stored_verbatim(records_api: AsgiClient) -> None:
    setup(records_api)
    append_ok(records_api, [{"body": "YWJj"}], headers={"s2-format": "raw"})
    assert read_bytes(records_api)[0][3] == b"YWJj"


@pytest.mark.parametrize("fmt", ["RAW", "Base64", "text", "", "binary", "raw,base64", "base-64"])
def test_invalid_format_is_bad_header(records_api: AsgiClient, fmt: str) -> None:
    setup(records_api, basin_config={"create_stream_on_append": True}, stream=None)
    response = append(records_api, [{"body": "a"}], headers={"s2-format": fmt})
    assert_error(response, "bad_header", f"Invalid header `s2-format`: {fmt}")
    assert stream_names(records_api) == []


@pytest.mark.parametrize(
    "text",
    [
        "!!!!",
        "YQ",  # missing padding
        "YQ=",
        "YWJj=",  # length not a multiple of 4
        "YR==",  # stray bits in the last group
        "YWJ=",
        "-_-_",  # URL-safe alphabet
        "YW Jj",
        "YWJj\n",
        "=YWJ",
        "YQ==YQ==",
        "é===",
    ],
)
def test_invalid_base64_is_422(records_api: AsgiClient, text: str) -> None:
    setup(records_api)
    fmt = {"s2-format": "base64"}
    cases: list[dict[str, Any]] = [
        {"body": text},
        {"headers": [[text, "dg=="]]},
        {"headers": [["bmFtZQ==", text]]},
    ]
    for record in cases:
        assert_error(append(records_api, [record], headers=fmt), "invalid", BAD_BASE64)
    assert tail(records_api) == {"seq_num": 0, "timestamp": 0}


@pytest.mark.parametrize(("text", "data"), [("", b""), ("YQ==", b"a"), ("YWI=", b"ab")])
def test_canonical_base64_with_padding_is_accepted(
    records_api: AsgiClient, text: str, data: bytes
) -> None:
    setup(records_api)
    append_ok(
        records_api, [{"headers": [["bg==", text]], "body": text}], headers={"s2-format": "base64"}
    )
    assert read_bytes(records_api)[0][2:] == ([(b"n", data)], data)


def test_base64_errors_come_in_record_order(records_api: AsgiClient) -> None:
    setup(records_api)
    fmt = {"s2-format": "base64"}
    records: list[dict[str, Any]] = [{"body": "!!!!"}, {"headers": [["", "bm9wZQ=="]]}]
    assert_error(append(records_api, records, headers=fmt), "invalid", BAD_BASE64)
    records = [{"headers": [["", "bm9wZQ=="]]}, {"body": "!!!!"}]
    assert_error(append(records_api, records, headers=fmt), "invalid", "unknown command")
    # Within a record, header data is decoded before the record is classified.
    records = [{"headers": [["", "!!!!"]]}]
    assert_error(append(records_api, records, headers=fmt), "invalid", BAD_BASE64)


def test_format_is_ignored_for_protobuf(records_api: AsgiClient) -> None:
    setup(records_api)
    for fmt in ["base64", "bogus"]:
        body = proto_input(proto_record(b"not base64!"))
        response = post_raw(records_api, body, {**PROTO, "s2-format": fmt})
        assert response.status == 200, response.body
    assert [r[3] for r in read_bytes(records_api)] == [b"not base64!"] * 2


# Content type and JSON shapes (spec §1.4, §1.5, §3.2) -------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "APPLICATION/JSON",
        "application/vnd.s2+json",
        "application/json, text/plain",
    ],
)
def test_json_content_types(records_api: AsgiClient, content_type: str) -> None:
    setup(records_api)
    response = post_raw(records_api, b'{"records":[{"body":"a"}]}', {"content-type": content_type})
    assert response.status == 200, response.body


@pytest.mark.parametrize("content_type", [None, "text/plain", "text/plain, application/json", ""])
def test_append_requires_a_json_content_type(
    records_api: AsgiClient, content_type: str | None
) -> None:
    setup(records_api)
    headers = {} if content_type is None else {"content-type": content_type}
    response = post_raw(records_api, b'{"records":[{"body":"a"}]}', headers)
    assert_error(response, "bad_json", "Expected request with `Content-Type: application/json`")
    assert tail(records_api)["seq_num"] == 0


BAD_JSON_BODIES = [
    b"",
    b"not json",
    b"{",
    b'{"records":[]} trailing',
    b"null",
    b"[]",
    b'"records"',
    b"{}",
    b'{"match_seq_num": 0}',
    b'{"records": null}',
    b'{"records": "x"}',
    b'{"records": {}}',
    b'{"records": [1]}',
    b'{"records": [null]}',
    b'{"records": [[]]}',
    b'{"records": [{"body": 5}]}',
    b'{"records": [{"body": null}]}',
    b'{"records": [{"body": ["a"]}]}',
    b'{"records": [{"headers": null}]}',
    b'{"records": [{"headers": {}}]}',
    b'{"records": [{"headers": "a"}]}',
    b'{"records": [{"headers": [["a"]]}]}',
    b'{"records": [{"headers": [["a", "b", "c"]]}]}',
    b'{"records": [{"headers": [[1, "b"]]}]}',
    b'{"records": [{"headers": [["a", null]]}]}',
    b'{"records": [{"headers": [{"name": "a", "value": "b"}]}]}',
    b'{"records": [{"timestamp": -1}]}',
    b'{"records": [{"timestamp": 1.5}]}',
    b'{"records": [{"timestamp": 1e3}]}',
    b'{"records": [{"timestamp": "1"}]}',
    b'{"records": [{"timestamp": true}]}',
    b'{"records": [{"timestamp": 18446744073709551616}]}',
    b'{"records": [{"body": "a"}], "match_seq_num": -1}',
    b'{"records": [{"body": "a"}], "match_seq_num": "0"}',
    b'{"records": [{"body": "a"}], "match_seq_num": 0.0}',
    b'{"records": [{"body": "a"}], "match_seq_num": 18446744073709551616}',
    b'{"records": [{"body": "a"}], "fencing_token": 5}',
    b'{"records": [{"body": "a"}], "fencing_token": ["a"]}',
    b'{"records": [{"body": "a"}], "fencing_token": "' + b"a" * 37 + b'"}',
    b'{"records": [{"body": "a"}], "fencing_token": "' + "é".encode() * 19 + b'"}',
    b'{"records": [{"body": "\\ud800"}]}',
    b'{"records": [{"headers": [["\\udfff", "v"]]}]}',
    b'{"records": [{"body": "a"}], "fencing_token": "\\ud800"}',
    b'{"records": [{"body": "a", "timestamp": NaN}]}',
    b'{"records": [{"body": "\xff"}]}',
]


@pytest.mark.parametrize("body", BAD_JSON_BODIES)
def test_bad_json_bodies(records_api: AsgiClient, body: bytes) -> None:
    setup(records_api, basin_config={"create_stream_on_append": True}, stream=None)
    response = post_raw(records_api, body, JSON)
    assert_error(response, "bad_json")
    assert stream_names(records_api) == []


@pytest.mark.parametrize("fmt", ["raw", "base64"])
def test_json_errors_come_before_record_validation(records_api: AsgiClient, fmt: str) -> None:
    setup(records_api)
    # The first record is semantically invalid (empty header name, bad base64) but the
    # document fails to deserialise later on: the parse error wins.
    bad_first = {"headers": [["", "nope"], ["", "x"]], "body": "!!!!"}
    response = append(records_api, [bad_first, {"body": 5}], headers={"s2-format": fmt})
    assert_error(response, "bad_json")
    response = append(records_api, [bad_first], headers={"s2-format": fmt}, fencing_token="a" * 37)
    assert_error(response, "bad_json")


def test_json_nulls_and_unknown_fields_are_accepted(records_api: AsgiClient) -> None:
    setup(records_api)
    body = {
        "records": [{"body": "a", "timestamp": None, "extra": 1}, {"headers": []}],
        "match_seq_num": None,
        "fencing_token": None,
        "unknown": {"x": [1, 2]},
    }
    response = records_api.post(records_path(), json_body=body, basin=BASIN)
    assert response.status == 200, response.body
    assert [(r[2], r[3]) for r in read_bytes(records_api)] == [([], b"a"), ([], b"")]


def test_fencing_token_of_36_bytes_is_accepted_in_json(records_api: AsgiClient) -> None:
    setup(records_api)
    token = "é" * 18
    append_ok(records_api, [fence(token)])
    append_ok(records_api, [{"body": "x"}], fencing_token=token)


def test_largest_integers(records_api: AsgiClient) -> None:
    setup(records_api, stream_config={"timestamping": {"uncapped": True}})
    u64_max = 2**64 - 1
    ack = append_ok(records_api, [{"timestamp": u64_max}])
    assert ack["start"]["timestamp"] == u64_max
    response = append(records_api, [{"body": "a"}], match_seq_num=u64_max)
    assert response.status == 412
    assert response.json() == {"seq_num_mismatch": 1}


# Protobuf append (spec §3.3) --------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "application/protobuf",
        "application/x-protobuf",
        "application/X-Protobuf",
        "application/protobuf; proto=s2.v1.AppendInput",
        "application/x-protobuf, application/json",
    ],
)
def test_protobuf_append(records_api: AsgiClient, content_type: str) -> None:
    setup(records_api)
    body = proto_input(
        proto_record(b"\x00\xffbin", [(b"h\x00", b"\x80"), (b"h\x00", b"")], timestamp=9),
        proto_record(b""),
        match_seq_num=0,
        fencing_token="",
    )
    response = post_raw(records_api, body, {"content-type": content_type})
    assert response.status == 200, response.body
    assert response.header("content-type") == "application/json"
    ack = response.json()
    assert ack["start"] == {"seq_num": 0, "timestamp": 9}
    assert ack["end"]["seq_num"] == 2
    records = read_bytes(records_api)
    assert records[0] == (0, 9, [(b"h\x00", b"\x80"), (b"h\x00", b"")], b"\x00\xffbin")
    assert records[1][2:] == ([], b"")


def test_protobuf_append_with_protobuf_ack(records_api: AsgiClient) -> None:
    setup(records_api)
    body = proto_input(proto_record(b"a", timestamp=3), proto_record(b"b", timestamp=4))
    response = post_raw(
        records_api,
        body,
        {"content-type": "application/x-protobuf", "accept": "application/x-protobuf"},
    )
    assert response.status == 200
    assert response.header("content-type") == "application/protobuf"
    ack = messages.AppendAck.FromString(response.body)
    assert (ack.start.seq_num, ack.start.timestamp) == (0, 3)
    assert (ack.end.seq_num, ack.end.timestamp) == (2, 4)
    assert (ack.tail.seq_num, ack.tail.timestamp) == (2, 4)


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xff\xff",
        b"\x0a\x05ab",  # truncated record
        b"\x0a",  # missing length
        b"\x1a\x01\xff",  # fencing token that is not UTF-8
        b"\x08\x01",  # records (field 1) sent as a varint
        b"\x12\x01\x01",  # match_seq_num sent length-delimited
        b"\x0a\x02\x10\x01",  # a record's headers sent as a varint
        b"\x0a\x04\x12\x02\x08\x01",  # a header's name sent as a varint
        b"\x0a\x02\x08\xff",  # truncated varint
        b"\x0f",  # wire type 7
    ],
)
def test_undecodable_protobuf_is_bad_proto(records_api: AsgiClient, body: bytes) -> None:
    setup(records_api, basin_config={"create_stream_on_append": True}, stream=None)
    assert_error(post_raw(records_api, body, PROTO), "bad_proto")
    assert stream_names(records_api) == []


def test_unknown_protobuf_fields_are_skipped(records_api: AsgiClient) -> None:
    setup(records_api)
    record = proto_record(b"a").SerializeToString() + b"\xa0\x06\x01"  # field 100, varint
    body = b"\x0a" + bytes([len(record)]) + record + b"\xaa\x06\x02hi"  # field 101, bytes
    response = post_raw(records_api, body, PROTO)
    assert response.status == 200, response.body
    assert read_bytes(records_api)[0][3] == b"a"


def test_empty_protobuf_body_is_an_empty_batch(records_api: AsgiClient) -> None:
    setup(records_api)
    assert_error(post_raw(records_api, b"", PROTO), "invalid", EMPTY_BATCH)


def test_protobuf_fencing_token_length(records_api: AsgiClient) -> None:
    setup(records_api)
    too_long = proto_input(proto_record(b"a"), fencing_token="a" * 37)
    assert_error(
        post_raw(records_api, too_long, PROTO),
        "invalid",
        "fencing token must not exceed 36 bytes in length",
    )
    multibyte = proto_input(proto_record(b"a"), fencing_token="é" * 19)
    assert_error(post_raw(records_api, multibyte, PROTO), "invalid")
    # 36 bytes are fine: the token is compared (and does not match the initial "").
    exact = proto_input(proto_record(b"a"), fencing_token="é" * 18)
    response = post_raw(records_api, exact, PROTO)
    assert response.status == 412
    assert response.json() == {"fencing_token_mismatch": ""}


def test_protobuf_records_are_validated_before_the_fencing_token(records_api: AsgiClient) -> None:
    setup(records_api)
    body = proto_input(fencing_token="a" * 37)
    assert_error(post_raw(records_api, body, PROTO), "invalid", EMPTY_BATCH)


def test_protobuf_record_validation(records_api: AsgiClient) -> None:
    setup(records_api)
    cases = [
        (proto_record(b"x", [(b"a", b"1"), (b"", b"2")]), EMPTY_NAME),
        (proto_record(b"x", [(b"", b"nope")]), "unknown command"),
        (
            proto_record(b"\x00" * 7, [(b"", b"trim")]),
            "invalid `trim` command: earliest sequence number to trim to was 7 bytes, must be 8",
        ),
        (proto_record(b"\xff", [(b"", b"fence")]), "invalid `fence` command: invalid UTF-8"),
        (proto_record(b"x" * (MIB - 7)), TOO_BIG_RECORD),
    ]
    for record, message in cases:
        assert_error(post_raw(records_api, proto_input(record), PROTO), "invalid", message)
    assert tail(records_api)["seq_num"] == 0


def test_protobuf_body_over_2_mib_is_bad_proto(records_api: AsgiClient) -> None:
    setup(records_api)
    body = proto_record(b"x" * (2 * MIB)).SerializeToString()
    assert_error(post_raw(records_api, b"\x0a" + b"\x80\x80\x80\x01" + body, PROTO), "bad_proto")


def test_json_body_over_2_mib_is_bad_json(records_api: AsgiClient) -> None:
    setup(records_api)
    body = b'{"records":[{"body":"' + b"x" * (2 * MIB) + b'"}]}'
    assert_error(post_raw(records_api, body, JSON), "bad_json")


def test_json_body_just_under_2_mib_is_parsed(records_api: AsgiClient) -> None:
    setup(records_api)
    # The body limit is on the HTTP body; the record limit then applies (422, not 400).
    head, end = b'{"records":[{"body":"', b'"}]}'
    body = head + b"x" * (2 * MIB - len(head) - len(end)) + end
    assert len(body) == 2 * MIB
    assert_error(post_raw(records_api, body, JSON), "invalid", TOO_BIG_RECORD)


# Extraction order (spec §1.4) ---------------------------------------------------------------


def test_basin_header_is_checked_first(records_api: AsgiClient) -> None:
    setup(records_api)
    bad = {"content-type": "text/plain", "s2-format": "nope", "s2-encryption-key": ""}
    response = records_api.post("/v1/streams/%FF/records", body=b"{", headers=bad)
    assert_error(response, "bad_header", "Missing header `s2-basin`")
    response = records_api.post(
        "/v1/streams/%FF/records", body=b"{", headers={**bad, "s2-basin": "Bad_Basin"}
    )
    assert_error(response, "bad_header")
    assert response.json()["message"].startswith("Invalid header `s2-basin`")


@pytest.mark.parametrize("raw_name", ["%FF", "a" * 513, "%C3"])
def test_path_is_checked_after_the_basin(records_api: AsgiClient, raw_name: str) -> None:
    setup(records_api)
    bad = {"content-type": "text/plain", "s2-format": "nope", "s2-encryption-key": ""}
    response = records_api.post(
        f"/v1/streams/{raw_name}/records", body=b"{", headers=bad, basin=BASIN
    )
    assert_error(response, "bad_path")


def test_missing_basin_is_reported_after_body_validation(records_api: AsgiClient) -> None:
    assert_error(append(records_api, [], basin="missing-basin"), "invalid", EMPTY_BATCH)
    response = records_api.post(records_path(), body=b"{}", headers=JSON, basin="missing-basin")
    assert_error(response, "bad_json")
    response = append(records_api, [{"body": "a"}], basin="missing-basin")
    assert_error(response, "basin_not_found", "basin `missing-basin` not found")


@pytest.mark.parametrize("key", ["", "   ", "k" * 45, " " + "k" * 45])
def test_encryption_key_length_is_checked_before_the_body(
    records_api: AsgiClient, key: str
) -> None:
    setup(records_api, basin_config={"create_stream_on_append": True}, stream=None)
    length = len(key.strip())
    message = (
        "Invalid header `s2-encryption-key`: invalid encryption key: "
        f"key material length {length} is out of range"
    )
    for headers, body in [
        ({"content-type": "text/plain"}, b"{"),
        ({"content-type": "application/json", "s2-format": "nope"}, b"{"),
        (PROTO, b"\xff"),
        (JSON, b'{"records": [{"body": "a"}]}'),
    ]:
        response = post_raw(records_api, body, {**headers, "s2-encryption-key": key}, stream="new")
        assert_error(response, "bad_header", message)
    assert stream_names(records_api) == []


@pytest.mark.parametrize("key", ["k", "!!!!", "k" * 44, "  padded  "])
def test_encryption_key_is_ignored_for_plaintext_streams(records_api: AsgiClient, key: str) -> None:
    setup(records_api)
    ack = append_ok(records_api, [{"body": "a"}], headers={"s2-encryption-key": key})
    assert ack["end"]["seq_num"] == 1
    response = records_api.get(
        records_path(), query="seq_num=0", basin=BASIN, headers={"s2-encryption-key": key}
    )
    assert response.status == 200
    assert response.json()["records"][0]["body"] == "a"


def test_format_header_is_checked_before_the_content_type(records_api: AsgiClient) -> None:
    setup(records_api)
    response = post_raw(records_api, b"{", {"content-type": "text/plain", "s2-format": "nope"})
    assert_error(response, "bad_header", "Invalid header `s2-format`: nope")
    response = post_raw(records_api, b"{", {"s2-format": "nope"})
    assert_error(response, "bad_header")
    response = post_raw(records_api, b"{", {**JSON, "s2-format": "nope"})
    assert_error(response, "bad_header")


def test_content_type_is_checked_before_the_body(records_api: AsgiClient) -> None:
    setup(records_api)
    response = post_raw(records_api, b"\xff not even json", {"content-type": "text/plain"})
    assert_error(response, "bad_json", "Expected request with `Content-Type: application/json`")


def test_invalid_input_never_auto_creates(records_api: AsgiClient) -> None:
    setup(records_api, basin_config={"create_stream_on_append": True}, stream=None)
    cases: list[tuple[dict[str, str], bytes]] = [
        ({"content-type": "text/plain"}, b'{"records":[{"body":"a"}]}'),
        ({**JSON, "s2-format": "x"}, b'{"records":[{"body":"a"}]}'),
        ({**JSON, "s2-encryption-key": ""}, b'{"records":[{"body":"a"}]}'),
        (JSON, b'{"records":[]}'),
        (JSON, b'{"records":[{"headers":[["","x"]]}]}'),
        ({**JSON, "s2-format": "base64"}, b'{"records":[{"body":"!"}]}'),
        (JSON, json.dumps({"records": [{"body": "a"}] * 1001}).encode()),
        (PROTO, b"\xff"),
        (PROTO, proto_input(proto_record(b"a"), fencing_token="a" * 37)),
    ]
    for headers, body in cases:
        response = post_raw(records_api, body, headers, stream="auto")
        assert response.status in (400, 422), (headers, body[:40], response.body)
    assert stream_names(records_api) == []


# Record classification and commands (spec §3.4, §3.6) -----------------------------------------


def test_empty_header_name_among_several_headers(records_api: AsgiClient) -> None:
    setup(records_api)
    for headers in [[["a", "1"], ["", "2"]], [["", "fence"], ["b", "x"]], [["", "a"], ["", "b"]]]:
        assert_error(append(records_api, [{"headers": headers}]), "invalid", EMPTY_NAME)
    assert tail(records_api)["seq_num"] == 0


@pytest.mark.parametrize("op", ["", "nope", "FENCE", "Trim", "fence ", " trim"])
def test_unknown_command(records_api: AsgiClient, op: str) -> None:
    setup(records_api)
    assert_error(append(records_api, [{"headers": [["", op]]}]), "invalid", "unknown command")


def test_empty_values_bodies_and_duplicate_names_are_allowed(records_api: AsgiClient) -> None:
    setup(records_api)
    record = {"headers": [["dup", ""], ["dup", "2"], ["x", ""]], "body": ""}
    append_ok(records_api, [record, {}])
    [first, second] = read_bytes(records_api)
    assert first[2:] == ([(b"dup", b""), (b"dup", b"2"), (b"x", b"")], b"")
    assert second[2:] == ([], b"")


@pytest.mark.parametrize("size", [0, 1, 7, 9, 16])
def test_trim_payload_must_be_8_bytes(records_api: AsgiClient, size: int) -> None:
    setup(records_api)
    record = {"headers": [["", "dHJpbQ=="]], "body": b64(b"\x01" * size)}
    response = append(records_api, [record], headers={"s2-format": "base64"})
    assert_error(
        response,
        "invalid",
        f"invalid `trim` command: earliest sequence number to trim to was {size} bytes, must be 8",
    )


def test_fence_token_limits(records_api: AsgiClient) -> None:
    setup(records_api)
    response = append(records_api, [fence("a" * 37)])
    assert_error(
        response,
        "invalid",
        "invalid `fence` command: fencing token must not exceed 36 bytes in length",
    )
    response = append(records_api, [fence("é" * 19)])
    assert_error(response, "invalid")
    record = {"headers": [["", b64("fence")]], "body": b64(b"\xc3\x28")}
    response = append(records_api, [record], headers={"s2-format": "base64"})
    assert_error(response, "invalid", "invalid `fence` command: invalid UTF-8")
    # Invalid UTF-8 is reported before the length.
    record = {"headers": [["", b64("fence")]], "body": b64(b"\xff" * 40)}
    response = append(records_api, [record], headers={"s2-format": "base64"})
    assert_error(response, "invalid", "invalid `fence` command: invalid UTF-8")
    assert tail(records_api)["seq_num"] == 0
    ack = append_ok(records_api, [fence("é" * 18)])
    assert ack["end"]["seq_num"] == 1


def test_commands_are_records(records_api: AsgiClient) -> None:
    setup(records_api)
    ack = append_ok(
        records_api,
        [
            {"body": "a", "timestamp": 1},
            {**fence("tok"), "timestamp": 1},
            {"headers": [["", "trim"]], "body": "\u0000" * 8, "timestamp": 2},
        ],
    )
    assert ack["end"]["seq_num"] == 3
    records = read(records_api, fmt="raw")
    assert records[1] == {"seq_num": 1, "timestamp": 1, "headers": [["", "fence"]], "body": "tok"}
    assert records[2]["headers"] == [["", "trim"]]
    assert records[2]["body"] == "\u0000" * 8


def test_per_record_checks_come_before_batch_checks(records_api: AsgiClient) -> None:
    setup(records_api)
    records: list[dict[str, Any]] = [{"body": "a"}] * 1001
    records[500] = {"headers": [["x", "1"], ["", "2"]]}
    assert_error(append(records_api, records), "invalid", EMPTY_NAME)
    records = [{"body": "a"}, {"body": "x" * (MIB - 7)}]
    assert_error(append(records_api, records), "invalid", TOO_BIG_RECORD)


# Metered size and limits (spec §3.4) ------------------------------------------------------------


def metered_via_read(api: AsgiClient, seq_num: int) -> int:
    """The metered size of one record, found as the smallest `bytes` limit that returns it."""
    low, high = 0, MIB
    while low < high:
        mid = (low + high) // 2
        if read(api, f"seq_num={seq_num}&count=1&bytes={mid}"):
            high = mid
        else:
            low = mid + 1
    return low


def test_metered_size_formula(records_api: AsgiClient) -> None:
    setup(records_api)
    cases: list[tuple[dict[str, Any], int, dict[str, str]]] = [
        ({}, 8, {}),
        ({"body": "xyz"}, 11, {}),
        ({"headers": [["ab", "cde"]], "body": "xyz"}, 8 + 2 + 5 + 3, {}),
        ({"headers": [["a", ""], ["b", ""]]}, 8 + 4 + 2, {}),
        ({"body": "é☃"}, 8 + 5, {}),  # UTF-8 bytes, not characters
        (
            {"headers": [[b64(b"\x00" * 3), b64(b"")]], "body": b64(b"\x01" * 10)},
            8 + 2 + 3 + 10,
            {"s2-format": "base64"},
        ),  # decoded bytes, not Base64 text
        (fence(""), 8 + 2 + 5, {}),
        (fence("abc"), 8 + 2 + 5 + 3, {}),
        ({"headers": [["", "trim"]], "body": "\u0000" * 8}, 22, {}),
    ]
    for seq_num, (record, size, headers) in enumerate(cases):
        append_ok(records_api, [record], headers=headers)
        assert metered_via_read(records_api, seq_num) == size, record


def test_record_of_exactly_1_mib_is_accepted(records_api: AsgiClient) -> None:
    setup(records_api)
    record = {"headers": [["n", "v"]], "body": "x" * (MIB - 8 - 2 - 2)}
    ack = append_ok(records_api, [record])
    assert ack["end"]["seq_num"] == 1
    record = {"headers": [["n", "v"]], "body": "x" * (MIB - 8 - 2 - 2 + 1)}
    assert_error(append(records_api, [record]), "invalid", TOO_BIG_RECORD)
    assert_error(append(records_api, [{"body": "x" * (MIB - 7)}]), "invalid", TOO_BIG_RECORD)
    assert append(records_api, [{"body": "x" * (MIB - 8)}]).status == 200


def test_batch_of_1000_records_is_accepted(records_api: AsgiClient) -> None:
    setup(records_api)
    ack = append_ok(records_api, [{}] * 1000)
    assert (ack["start"]["seq_num"], ack["end"]["seq_num"]) == (0, 1000)
    assert_error(append(records_api, [{}] * 1001), "invalid", TOO_MANY)
    body = proto_input(*[proto_record()] * 1001)
    assert_error(post_raw(records_api, body, PROTO), "invalid", TOO_MANY)
    assert tail(records_api)["seq_num"] == 1000


def test_batch_metered_size_boundary(records_api: AsgiClient) -> None:
    setup(records_api)
    # Two records: 16 bytes of overhead plus the bodies.
    first = MIB // 2
    second = MIB - 16 - first
    ack = append_ok(records_api, [{"body": "a" * first}, {"body": "b" * second}])
    assert ack["end"]["seq_num"] == 2
    response = append(records_api, [{"body": "a" * first}, {"body": "b" * (second + 1)}])
    assert_error(response, "invalid", TOO_BIG_BATCH)
    body = proto_input(proto_record(b"a" * first), proto_record(b"b" * (second + 1)))
    assert_error(post_raw(records_api, body, PROTO), "invalid", TOO_BIG_BATCH)
    assert tail(records_api)["seq_num"] == 2


def test_empty_batch(records_api: AsgiClient) -> None:
    setup(records_api)
    assert_error(append(records_api, []), "invalid", EMPTY_BATCH)
    assert_error(append(records_api, [], match_seq_num=5), "invalid", EMPTY_BATCH)


# Append conditions (spec §3.5) ------------------------------------------------------------------


def test_match_seq_num(records_api: AsgiClient) -> None:
    setup(records_api)
    append_ok(records_api, [{"body": "a"}], match_seq_num=0)
    for wrong in [0, 2, 100]:
        response = append(records_api, [{"body": "b"}], match_seq_num=wrong)
        assert response.status == 412, response.body
        assert response.header("content-type") == "application/json"
        assert response.body == b'{"seq_num_mismatch":1}'
    append_ok(records_api, [{"body": "b"}, {"body": "c"}], match_seq_num=1)
    assert append(records_api, [{"body": "d"}], match_seq_num=1).json() == {"seq_num_mismatch": 3}
    assert [r[3] for r in read_bytes(records_api)] == [b"a", b"b", b"c"]


def test_fencing_token(records_api: AsgiClient) -> None:
    setup(records_api)
    # Initially the token is the empty string.
    append_ok(records_api, [{"body": "a"}], fencing_token="")
    response = append(records_api, [{"body": "x"}], fencing_token="t1")
    assert response.status == 412
    assert response.header("content-type") == "application/json"
    assert response.body == b'{"fencing_token_mismatch":""}'
    append_ok(records_api, [fence("t1")], fencing_token="")
    assert append(records_api, [{"body": "x"}], fencing_token="").json() == {
        "fencing_token_mismatch": "t1"
    }
    append_ok(records_api, [{"body": "b"}], fencing_token="t1")
    # Appends without a token are not fenced.
    append_ok(records_api, [{"body": "c"}])
    # An empty fence clears the token.
    append_ok(records_api, [fence("")], fencing_token="t1")
    append_ok(records_api, [{"body": "d"}], fencing_token="")
    assert [r[3] for r in read_bytes(records_api)] == [b"a", b"t1", b"b", b"c", b"", b"d"]


def test_fencing_is_checked_before_match_seq_num(records_api: AsgiClient) -> None:
    setup(records_api)
    append_ok(records_api, [fence("tok")])
    response = append(records_api, [{"body": "x"}], fencing_token="bad", match_seq_num=9)
    assert response.status == 412
    assert response.json() == {"fencing_token_mismatch": "tok"}
    response = append(records_api, [{"body": "x"}], fencing_token="tok", match_seq_num=9)
    assert response.json() == {"seq_num_mismatch": 1}


def test_failed_batch_writes_nothing(records_api: AsgiClient) -> None:
    setup(records_api)
    append_ok(records_api, [{"body": "a", "timestamp": 5}])
    conditions: list[dict[str, Any]] = [{"match_seq_num": 0}, {"fencing_token": "nope"}]
    for fields in conditions:
        response = append(
            records_api,
            [
                fence("new"),
                {"body": "b", "timestamp": 9},
                {"headers": [["", "trim"]], "body": "\u0000" * 7 + "\u0001"},
            ],
            **fields,
        )
        assert response.status == 412
    assert tail(records_api) == {"seq_num": 1, "timestamp": 5}
    # The fence in the rejected batch did not take effect.
    append_ok(records_api, [{"body": "c"}], fencing_token="")
    assert [r[3] for r in read_bytes(records_api)] == [b"a", b"c"]


def test_fence_and_condition_in_the_same_batch(records_api: AsgiClient) -> None:
    setup(records_api)
    append_ok(records_api, [fence("old")])
    # The condition is checked against the token before the batch.
    append_ok(records_api, [fence("new"), {"body": "x"}], fencing_token="old", match_seq_num=1)
    assert append(records_api, [{"body": "y"}], fencing_token="old").json() == {
        "fencing_token_mismatch": "new"
    }


def test_412_body_is_json_even_when_protobuf_is_accepted(records_api: AsgiClient) -> None:
    setup(records_api)
    body = proto_input(proto_record(b"a"), match_seq_num=3)
    response = post_raw(records_api, body, {**PROTO, "accept": "application/protobuf"})
    assert response.status == 412
    assert response.header("content-type") == "application/json"
    assert response.json() == {"seq_num_mismatch": 0}
    body = proto_input(proto_record(b"a"), fencing_token="x")
    response = post_raw(records_api, body, {**PROTO, "accept": "application/protobuf"})
    assert response.json() == {"fencing_token_mismatch": ""}


def test_error_responses_are_json_whatever_is_accepted(records_api: AsgiClient) -> None:
    setup(records_api)
    response = append(records_api, [], headers={"accept": "application/protobuf"})
    assert_error(response, "invalid", EMPTY_BATCH)


def test_conditions_are_checked_before_required_timestamps(records_api: AsgiClient) -> None:
    setup(records_api, stream_config={"timestamping": {"mode": "client-require"}})
    response = append(records_api, [{"body": "a"}], match_seq_num=4)
    assert response.status == 412
    assert response.json() == {"seq_num_mismatch": 0}


# Timestamps (spec §3.7) -------------------------------------------------------------------------


def timestamps(api: AsgiClient) -> list[int]:
    return [r[1] for r in read_bytes(api)]


def test_client_prefer_uses_client_timestamps(records_api: AsgiClient) -> None:
    setup(records_api)
    before = now_ms()
    append_ok(records_api, [{"timestamp": 1000}, {}, {"timestamp": 2000}])
    after = now_ms()
    first, second, third = timestamps(records_api)
    assert first == 1000
    assert before <= second <= after
    # 2000 is below the previous record's arrival time: raised to it.
    assert third == second


def test_client_prefer_caps_future_timestamps(records_api: AsgiClient) -> None:
    setup(records_api)
    future = now_ms() + 86_400_000
    before = now_ms()
    ack = append_ok(records_api, [{"timestamp": future}])
    after = now_ms()
    assert before <= ack["start"]["timestamp"] <= after


def test_uncapped_keeps_future_timestamps(records_api: AsgiClient) -> None:
    setup(records_api, stream_config={"timestamping": {"uncapped": True}})
    future = now_ms() + 86_400_000
    ack = append_ok(records_api, [{"timestamp": future}, {}])
    # The record without a timestamp arrives "now", which is below the previous one.
    assert timestamps(records_api) == [future, future]
    assert ack["end"] == {"seq_num": 2, "timestamp": future}


def test_client_require(records_api: AsgiClient) -> None:
    setup(records_api, stream_config={"timestamping": {"mode": "client-require"}})
    response = append(records_api, [{"timestamp": 1}, {"body": "no timestamp"}, {"timestamp": 3}])
    assert_error(response, "invalid", TS_REQUIRED)
    response = append(records_api, [{"timestamp": None}])
    assert_error(response, "invalid", TS_REQUIRED)
    body = proto_input(proto_record(b"a", timestamp=1), proto_record(b"b"))
    assert_error(post_raw(records_api, body, PROTO), "invalid", TS_REQUIRED)
    assert tail(records_api) == {"seq_num": 0, "timestamp": 0}
    ack = append_ok(records_api, [{"timestamp": 7}, {"timestamp": 5}])
    assert_ack(ack, (0, 7), (2, 7), (2, 7))
    # Required but still capped at arrival time unless uncapped.
    future = now_ms() + 86_400_000
    ack = append_ok(records_api, [{"timestamp": future}])
    assert ack["start"]["timestamp"] < future


def test_client_require_failure_leaves_the_auto_created_stream(records_api: AsgiClient) -> None:
    # A whole-batch failure after auto-creation leaves the stream created and empty.
    setup(
        records_api,
        basin_config={
            "create_stream_on_append": True,
            "default_stream_config": {"timestamping": {"mode": "client-require"}},
        },
        stream=None,
    )
    assert_error(append(records_api, [{"body": "a"}], stream="auto"), "invalid", TS_REQUIRED)
    assert stream_names(records_api) == ["auto"]
    assert tail(records_api, "auto") == {"seq_num": 0, "timestamp": 0}


def test_arrival_ignores_client_timestamps(records_api: AsgiClient) -> None:
    setup(records_api, stream_config={"timestamping": {"mode": "arrival"}})
    before = now_ms()
    append_ok(records_api, [{"timestamp": 5}, {"timestamp": now_ms() + 10_000_000}, {}])
    after = now_ms()
    stamps = timestamps(records_api)
    assert all(before <= ts <= after for ts in stamps), stamps
    assert stamps[0] == stamps[1] == stamps[2]


def test_arrival_with_uncapped_still_ignores_client(records_api: AsgiClient) -> None:
    setup(records_api, stream_config={"timestamping": {"mode": "arrival", "uncapped": True}})
    future = now_ms() + 10_000_000
    ack = append_ok(records_api, [{"timestamp": future}])
    assert ack["start"]["timestamp"] < future


def test_monotonic_clamp_within_and_across_batches(records_api: AsgiClient) -> None:
    setup(records_api)
    append_ok(records_api, [{"timestamp": 5000}, {"timestamp": 3000}, {"timestamp": 6000}])
    ack = append_ok(records_api, [{"timestamp": 4000}, {"timestamp": 6000}, {"timestamp": 6500}])
    assert_ack(ack, (3, 6000), (6, 6500), (6, 6500))
    assert timestamps(records_api) == [5000, 5000, 6000, 6000, 6000, 6500]
    assert tail(records_api) == {"seq_num": 6, "timestamp": 6500}


def test_zero_timestamp_on_an_empty_stream(records_api: AsgiClient) -> None:
    setup(records_api)
    ack = append_ok(records_api, [{"timestamp": 0}, {"timestamp": 0}])
    assert_ack(ack, (0, 0), (2, 0), (2, 0))
    assert timestamps(records_api) == [0, 0]
    # Protobuf: an explicit 0 is a present timestamp, not "missing".
    body = proto_input(proto_record(b"a", timestamp=0))
    response = post_raw(records_api, body, PROTO)
    assert response.json()["start"] == {"seq_num": 2, "timestamp": 0}


def test_reconfigured_timestamping_applies_to_later_appends(records_api: AsgiClient) -> None:
    setup(records_api)
    assert append_ok(records_api, [{"timestamp": 5}])["start"]["timestamp"] == 5
    response = records_api.patch(
        "/v1/streams/s",
        json_body={"timestamping": {"mode": "client-require"}},
        basin=BASIN,
    )
    assert response.status == 200, response.body
    assert_error(append(records_api, [{"body": "x"}]), "invalid", TS_REQUIRED)
    response = records_api.patch(
        "/v1/streams/s", json_body={"timestamping": {"mode": "arrival"}}, basin=BASIN
    )
    assert response.status == 200
    assert append_ok(records_api, [{"timestamp": 6}])["start"]["timestamp"] > 6


# Trim (spec §3.6) -------------------------------------------------------------------------------


def trim(api: AsgiClient, point: int, **kwargs: Any) -> dict[str, Any]:
    record = {"headers": [["", b64("trim")]], "body": trim_body(point)}
    return append_ok(api, [record], headers={"s2-format": "base64"}, **kwargs)


def first_seq_eventually(api: AsgiClient, expected: int) -> list[Any]:
    deadline = time.monotonic() + 5
    while True:
        records = read_bytes(api)
        if (records[0][0] if records else None) == expected or time.monotonic() > deadline:
            return records
        time.sleep(0.02)


def test_trim_below_own_position(records_api: AsgiClient) -> None:
    setup(records_api)
    append_ok(records_api, [{"body": str(i), "timestamp": 10 * i} for i in range(5)])
    ack = trim(records_api, 3)
    assert ack["start"]["seq_num"] == 5
    records = first_seq_eventually(records_api, 3)
    assert [r[0] for r in records] == [3, 4, 5]
    assert records[2][2:] == ([(b"", b"trim")], (3).to_bytes(8, "big"))
    # The tail does not move.
    assert ack["end"]["seq_num"] == 6
    assert tail(records_api) == ack["end"]
    # Reads from below the trim point start at the first surviving record.
    assert [r[0] for r in read_bytes(records_api, "seq_num=1&count=2")] == [3, 4]
    assert [r[0] for r in read_bytes(records_api, "tail_offset=100")] == [3, 4, 5]
    assert [r[0] for r in read_bytes(records_api, "timestamp=0")] == [3, 4, 5]


def test_trim_to_the_future_trims_up_to_the_trim_record(records_api: AsgiClient) -> None:
    setup(records_api)
    append_ok(records_api, [{"body": "a"}, {"body": "b"}])
    ack = trim(records_api, 2**64 - 2)
    assert ack["end"]["seq_num"] == 3
    deadline = time.monotonic() + 5
    while read_bytes(records_api) and time.monotonic() < deadline:
        time.sleep(0.02)
    response = records_api.get(records_path(), query="seq_num=0", basin=BASIN)
    assert response.status == 200
    assert response.json() == {"records": []}
    assert tail(records_api)["seq_num"] == 3
    # Appends go on after the trimmed range.
    append_ok(records_api, [{"body": "c"}])
    assert [(r[0], r[3]) for r in read_bytes(records_api)] == [(3, b"c")]


def test_trim_only_moves_forward(records_api: AsgiClient) -> None:
    setup(records_api)
    append_ok(records_api, [{"body": str(i)} for i in range(6)])
    trim(records_api, 4)
    first_seq_eventually(records_api, 4)
    ack = trim(records_api, 1)
    assert ack["start"]["seq_num"] == 7
    time.sleep(0.05)
    assert [r[0] for r in read_bytes(records_api)] == [4, 5, 6, 7]
    trim(records_api, 0)
    assert [r[0] for r in read_bytes(records_api)] == [4, 5, 6, 7, 8]


def test_trim_to_zero_trims_nothing(records_api: AsgiClient) -> None:
    setup(records_api)
    append_ok(records_api, [{"body": "a"}])
    trim(records_api, 0)
    time.sleep(0.05)
    assert [r[0] for r in read_bytes(records_api)] == [0, 1]


def test_trim_in_raw_json(records_api: AsgiClient) -> None:
    setup(records_api)
    append_ok(records_api, [{"body": str(i)} for i in range(4)])
    append_ok(records_api, [{"headers": [["", "trim"]], "body": "\u0000" * 7 + "\u0003"}])
    assert [r[0] for r in first_seq_eventually(records_api, 3)] == [3, 4]


# Missing streams and auto-creation (spec §3.9, §2.8) --------------------------------------------


def test_append_to_missing_stream(records_api: AsgiClient) -> None:
    setup(records_api, stream=None)
    response = append(records_api, [{"body": "a"}], stream="nope")
    assert_error(response, "stream_not_found", "stream `nope` in basin `test-basin` not found")
    assert stream_names(records_api) == []


def test_create_stream_on_read_does_not_apply_to_append(records_api: AsgiClient) -> None:
    setup(records_api, basin_config={"create_stream_on_read": True}, stream=None)
    assert_error(append(records_api, [{"body": "a"}], stream="nope"), "stream_not_found")
    assert stream_names(records_api) == []


def test_append_to_missing_basin(records_api: AsgiClient) -> None:
    response = append(records_api, [{"body": "a"}], basin="missing-basin")
    assert_error(response, "basin_not_found", "basin `missing-basin` not found")


def test_auto_create_on_append_uses_basin_defaults(records_api: AsgiClient) -> None:
    setup(
        records_api,
        basin_config={
            "create_stream_on_append": True,
            "default_stream_config": {
                "storage_class": "standard",
                "timestamping": {"mode": "arrival"},
            },
        },
        stream=None,
    )
    before = now_ms()
    ack = append_ok(records_api, [{"body": "a", "timestamp": 3}], stream="auto")
    assert ack["start"]["seq_num"] == 0
    assert ack["start"]["timestamp"] >= before  # arrival mode from the basin defaults
    assert stream_names(records_api) == ["auto"]
    config = records_api.get("/v1/streams/auto", basin=BASIN).json()
    assert config["storage_class"] == "standard"
    assert config["timestamping"]["mode"] == "arrival"
    info = records_api.get("/v1/streams", basin=BASIN).json()["streams"][0]
    assert info["cipher"] is None and info["deleted_at"] is None
    assert [r[3] for r in read_bytes(records_api, stream="auto")] == [b"a"]


def test_auto_created_stream_stays_when_the_append_fails(records_api: AsgiClient) -> None:
    setup(records_api, basin_config={"create_stream_on_append": True}, stream=None)
    response = append(records_api, [{"body": "a"}], stream="auto", match_seq_num=5)
    assert response.status == 412
    assert response.json() == {"seq_num_mismatch": 0}
    assert stream_names(records_api) == ["auto"]
    response = append(records_api, [{"body": "a"}], stream="fenced", fencing_token="t")
    assert response.json() == {"fencing_token_mismatch": ""}
    assert stream_names(records_api) == ["auto", "fenced"]
    assert tail(records_api, "auto") == {"seq_num": 0, "timestamp": 0}


def test_append_to_a_stream_being_deleted(records_api: AsgiClient) -> None:
    setup(records_api, basin_config={"create_stream_on_append": True})
    append_ok(records_api, [{"body": "a"}])
    assert_empty(records_api.delete("/v1/streams/s", basin=BASIN), 202)
    response = append(records_api, [{"body": "b"}])
    assert_error(response, "stream_deletion_pending", "stream deletion pending")
    # Input is still validated first.
    assert_error(append(records_api, []), "invalid", EMPTY_BATCH)


def test_append_to_a_basin_being_deleted(records_api: AsgiClient) -> None:
    setup(records_api, basin_config={"create_stream_on_append": True}, stream=None)
    assert_empty(records_api.delete(f"/v1/basins/{BASIN}"), 202)
    response = append(records_api, [{"body": "a"}], stream="auto")
    assert_error(response, "basin_deletion_pending", "basin `test-basin` is being deleted")


def test_deleted_stream_is_recreated_empty_on_append(records_api: AsgiClient) -> None:
    setup(records_api, basin_config={"create_stream_on_append": True})
    append_ok(records_api, [{"body": "old"}] * 3)
    assert_empty(records_api.delete("/v1/streams/s", basin=BASIN), 202)
    assert_error(append(records_api, [{"body": "new"}]), "stream_deletion_pending")
    # The background pass, run here deterministically, removes the stream.
    run_deletion_pass(records_api)
    assert stream_names(records_api) == []
    ack = append_ok(records_api, [{"body": "new"}])
    assert ack["start"]["seq_num"] == 0
    assert [r[3] for r in read_bytes(records_api)] == [b"new"]


# Routing (spec §1.2, §1.4) ----------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_wrong_method_on_records(records_api: AsgiClient, method: str) -> None:
    response = records_api.request(method, "/v1/streams/s/records", body=b"{", headers=JSON)
    assert_empty(response, 405)
    allow = response.header("allow")
    assert allow is not None
    assert {m.strip() for m in allow.split(",")} == {"GET", "HEAD", "POST"}


def test_stream_names_with_slashes_and_unicode(records_api: AsgiClient) -> None:
    setup(records_api, stream=None)
    for name in ["a/b", "a/b/", "/", "é ☃", "a%2Fb", "a?b#c"]:
        create_stream(records_api, name)
        ack = append_ok(records_api, [{"body": name}], stream=name)
        assert ack["end"]["seq_num"] == 1
        assert [r[3] for r in read_bytes(records_api, stream=name)] == [name.encode()]
        assert tail(records_api, name)["seq_num"] == 1
    assert sorted(stream_names(records_api)) == sorted(
        ["a/b", "a/b/", "/", "é ☃", "a%2Fb", "a?b#c"]
    )
