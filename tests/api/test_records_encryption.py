"""Customer-supplied-key encryption over the full HTTP stack (spec §7, §6.3): the key
header's rules in every append form (unary JSON and protobuf, S2S session) and every
read form (unary JSON and protobuf, SSE, S2S), decryption failures in each read form's
own error channel, records sealed at rest, plaintext metering, and the AES-256-GCM
sequence number limit."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from s2site import runtime
from storagecore.models import StreamLog
from streams.models import Stream
from streams.protocol import messages, s2s
from tests.api.support import (
    BASIN,
    assert_error,
    proto_record,
    records_path,
    setup,
    stream_config,
)
from tests.asgi_client import AsgiClient, Response

KEY = base64.b64encode(bytes(range(32))).decode()
OTHER_KEY = base64.b64encode(bytes(range(100, 132))).decode()
HEADER = "s2-encryption-key"
CIPHERS = pytest.mark.parametrize("cipher", ["aegis-256", "aes-256-gcm"])
APPEND_FORMS = ["json", "protobuf", "s2s"]
READ_FORMS = ["json", "protobuf", "sse", "s2s"]
SECRET = "a-very-secret-body"
# Two records: one with a header, one without. Metered: 8 + (2 + 1 + 2) + 18, 8 + 3.
RECORDS: list[dict[str, Any]] = [{"headers": [["h", "vv"]], "body": SECRET}, {"body": "two"}]
RECORDS_METERED = [31, 11]


def key_headers(key: str | None) -> dict[str, str]:
    return {} if key is None else {HEADER: key}


def encrypted(api: AsgiClient, cipher: str, **basin_config: Any) -> None:
    setup(api, basin_config={"stream_cipher": cipher, **basin_config})


# Appends in each form.


def append(
    api: AsgiClient,
    form: str,
    records: list[dict[str, Any]],
    key: str | None = KEY,
    stream: str = "s",
) -> Response:
    headers = key_headers(key)
    if form == "json":
        return api.post(
            records_path(stream), json_body={"records": records}, basin=BASIN, headers=headers
        )
    message = messages.AppendInput(
        records=[
            proto_record(
                r.get("body", "").encode(),
                [(n.encode(), v.encode()) for n, v in r.get("headers", [])],
            )
            for r in records
        ]
    ).SerializeToString()
    if form == "protobuf":
        headers["content-type"] = "application/protobuf"
        return api.post(records_path(stream), body=message, basin=BASIN, headers=headers)
    headers["content-type"] = "s2s/proto"
    frame = s2s.encode_message(message, s2s.Compression.NONE)
    return api.post(records_path(stream), body=frame, basin=BASIN, headers=headers)


def s2s_frames(response: Response) -> list[s2s.Frame]:
    assert response.status == 200, (response.status, response.body)
    assert response.header("content-type") == "s2s/proto"
    decoder = s2s.FrameDecoder()
    frames = decoder.feed(response.body)
    assert decoder.pending == 0 and decoder.error is None
    return frames


def appended(api: AsgiClient, form: str, records: list[dict[str, Any]], **kwargs: Any) -> int:
    """Append and return the acknowledged end sequence number."""
    response = append(api, form, records, **kwargs)
    if form == "s2s":
        [frame] = s2s_frames(response)
        assert not frame.terminal, frame.payload
        return int(messages.AppendAck.FromString(frame.message()).end.seq_num)
    assert response.status == 200, (response.status, response.body)
    return int(response.json()["end"]["seq_num"])


# Reads in each form; every read here is bounded so that sessions end by themselves.


def read(
    api: AsgiClient, form: str, query: str, key: str | None = KEY, stream: str = "s"
) -> Response:
    headers = key_headers(key)
    if form == "protobuf":
        headers["accept"] = "application/protobuf"
    elif form == "sse":
        headers["accept"] = "text/event-stream"
    elif form == "s2s":
        headers["content-type"] = "s2s/proto"
    return api.get(records_path(stream), query=query, basin=BASIN, headers=headers)


def sse_events(response: Response) -> list[tuple[str | None, str | None, str]]:
    assert response.status == 200, (response.status, response.body)
    assert response.header("content-type") == "text/event-stream"
    events = []
    for block in response.body.decode().split("\n\n"):
        if not block:
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((fields.get("event"), fields.get("id"), fields["data"]))
    return events


def records_of(api: AsgiClient, form: str, query: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Records as JSON-like dicts (seq_num, headers, body), whatever the read form."""
    response = read(api, form, query, **kwargs)
    if form == "json":
        assert response.status == 200, (response.status, response.body)
        return [_plain(r) for r in response.json()["records"]]
    if form == "protobuf":
        assert response.status == 200, (response.status, response.body)
        return _proto_records(response.body)
    if form == "sse":
        out = []
        for event, _, data in sse_events(response):
            if event == "batch":
                out += [_plain(r) for r in json.loads(data)["records"]]
        return out
    out = []
    for frame in s2s_frames(response):
        assert not frame.terminal, frame.payload
        out += _proto_records(frame.message())
    return out


def _plain(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "seq_num": record["seq_num"],
        "headers": record.get("headers", []),
        "body": record.get("body", ""),
    }


def _proto_records(payload: bytes) -> list[dict[str, Any]]:
    return [
        {
            "seq_num": r.seq_num,
            "headers": [[h.name.decode(), h.value.decode()] for h in r.headers],
            "body": r.body.decode(),
        }
        for r in messages.ReadBatch.FromString(payload).records
    ]


def expected(records: list[dict[str, Any]], start: int = 0) -> list[dict[str, Any]]:
    return [_plain({"seq_num": start + n, **r}) for n, r in enumerate(records)]


def read_error(api: AsgiClient, form: str, query: str, **kwargs: Any) -> tuple[int, Any]:
    """The (status, JSON body) of a read that fails, in the form's own error channel: a
    JSON response for unary reads, an ``error`` event for SSE, a terminal frame for S2S."""
    response = read(api, form, query, **kwargs)
    if form in ("json", "protobuf"):
        assert response.header("content-type") == "application/json"
        return response.status, response.json()
    if form == "sse":
        events = sse_events(response)
        assert events[-1][0] == "error", events
        assert all(event != "batch" for event, _, _ in events), events
        return 400, json.loads(events[-1][2])
    *regular, last = s2s_frames(response)
    assert last.terminal and not regular, (regular, last)
    return int.from_bytes(last.payload[:2], "big"), json.loads(last.payload[2:])


# Round trips.


@CIPHERS
@pytest.mark.parametrize("append_form", APPEND_FORMS)
def test_records_round_trip_in_every_form(
    records_api: AsgiClient, cipher: str, append_form: str
) -> None:
    encrypted(records_api, cipher)
    assert appended(records_api, append_form, RECORDS) == 2
    assert appended(records_api, append_form, RECORDS[1:]) == 3
    want = expected(RECORDS + RECORDS[1:])
    for form in READ_FORMS:
        assert records_of(records_api, form, "seq_num=0&count=3") == want, form
        assert records_of(records_api, form, "seq_num=1&count=2") == want[1:], form


@CIPHERS
def test_protobuf_read_is_byte_identical_to_a_plaintext_stream(
    records_api: AsgiClient, cipher: str
) -> None:
    encrypted(records_api, cipher)
    records_api.patch(f"/v1/basins/{BASIN}", json_body={"stream_cipher": None})
    created = records_api.post("/v1/streams", json_body={"stream": "plain"}, basin=BASIN)
    assert created.status == 201 and created.json()["cipher"] is None
    timestamped = [{**r, "timestamp": 5 + n} for n, r in enumerate(RECORDS)]
    appended(records_api, "json", timestamped)
    appended(records_api, "json", timestamped, stream="plain")
    query = "seq_num=0&count=2"
    sealed = read(records_api, "protobuf", query)
    plain = read(records_api, "protobuf", query, key=None, stream="plain")
    assert sealed.status == plain.status == 200
    assert sealed.body == plain.body


@CIPHERS
def test_records_are_sealed_at_rest(records_api: AsgiClient, cipher: str) -> None:
    encrypted(records_api, cipher)
    appended(records_api, "json", RECORDS)
    appended(records_api, "json", [{"headers": [["", "fence"]], "body": "fence-token"}])
    running = runtime.current()
    assert running is not None
    store = running.engine.store

    async def stored() -> bytes:
        keys = await store.list_keys("")
        return b"".join([await store.get(k, 0, 1 << 30) for k in keys])

    data = records_api.run(stored())
    assert data
    assert SECRET.encode() not in data and b"vv" not in data
    assert b"fence-token" in data  # command records are stored in plaintext


# The key header (spec §7, §6.3).


def missing_key(cipher: str) -> str:
    return f"missing encryption key for stream cipher '{cipher}'"


def invalid_base64(cipher: str) -> str:
    return f"invalid encryption key for stream cipher '{cipher}': invalid base64"


def invalid_length(cipher: str, length: int) -> str:
    return f"invalid encryption key length for stream cipher '{cipher}': {length}"


def key_cases(cipher: str) -> list[tuple[str | None, str]]:
    return [
        (None, missing_key(cipher)),
        ("!!!!", invalid_base64(cipher)),
        (KEY.rstrip("="), invalid_base64(cipher)),
        (base64.b64encode(b"k" * 16).decode(), invalid_length(cipher, 16)),
        (base64.b64encode(b"k" * 33).decode(), invalid_length(cipher, 33)),
        (" " + base64.b64encode(b"k" * 31).decode() + " ", invalid_length(cipher, 31)),
    ]


@CIPHERS
@pytest.mark.parametrize("form", APPEND_FORMS)
def test_appends_need_a_valid_key(records_api: AsgiClient, cipher: str, form: str) -> None:
    encrypted(records_api, cipher)
    for key, message in key_cases(cipher):
        # Errors come before any session starts: a plain JSON response, also for S2S.
        assert_error(append(records_api, form, RECORDS, key=key), "bad_header", message)
    check = records_api.get(records_path() + "/tail", basin=BASIN)
    assert check.json()["tail"]["seq_num"] == 0
    assert appended(records_api, form, RECORDS, key=" " + KEY + "\t") == 2  # trimmed


@CIPHERS
@pytest.mark.parametrize("form", READ_FORMS)
def test_reads_need_a_valid_key(records_api: AsgiClient, cipher: str, form: str) -> None:
    encrypted(records_api, cipher)
    appended(records_api, "json", RECORDS)
    for key, message in key_cases(cipher):
        assert_error(read(records_api, form, "seq_num=0&count=2", key=key), "bad_header", message)
    assert records_of(records_api, form, "seq_num=0&count=2") == expected(RECORDS)


@CIPHERS
def test_check_tail_needs_no_key(records_api: AsgiClient, cipher: str) -> None:
    encrypted(records_api, cipher)
    appended(records_api, "json", RECORDS)
    for headers in ({}, {HEADER: "!!!!"}, {HEADER: OTHER_KEY}):
        response = records_api.get(records_path() + "/tail", basin=BASIN, headers=headers)
        assert response.status == 200, response.body
        assert response.json()["tail"]["seq_num"] == 2


def test_plaintext_streams_ignore_the_key(records_api: AsgiClient) -> None:
    setup(records_api)
    for key in ("!!!!", KEY, None):
        for form in APPEND_FORMS:
            appended(records_api, form, RECORDS[1:], key=key)
    want = expected(RECORDS[1:] * 9)
    for key in ("!!!!", OTHER_KEY, None):
        for form in READ_FORMS:
            assert records_of(records_api, form, "seq_num=0&count=9", key=key) == want


def test_the_length_rule_applies_before_the_stream_is_opened(records_api: AsgiClient) -> None:
    setup(records_api, stream=None)
    message = (
        "Invalid header `s2-encryption-key`: invalid encryption key: "
        "key material length 45 is out of range"
    )
    for form in APPEND_FORMS:
        response = append(records_api, form, RECORDS, key="A" * 45, stream="missing")
        assert_error(response, "bad_header", message)
    for form in READ_FORMS:
        response = read(records_api, form, "seq_num=0", key="A" * 45, stream="missing")
        assert_error(response, "bad_header", message)


@CIPHERS
def test_key_errors_come_after_auto_creation(records_api: AsgiClient, cipher: str) -> None:
    encrypted(records_api, cipher, create_stream_on_append=True, create_stream_on_read=True)
    assert_error(append(records_api, "json", RECORDS, key=None, stream="a"), "bad_header")
    assert_error(read(records_api, "json", "seq_num=0", key="!!!!", stream="r"), "bad_header")
    for name in ("a", "r"):
        info = records_api.get("/v1/streams", basin=BASIN, query=f"prefix={name}").json()
        assert [(s["name"], s["cipher"]) for s in info["streams"]] == [(name, cipher)]
        assert stream_config(records_api, name)["retention_policy"] == {"age": 604800}


# Decryption failures (spec §7): wrong key, in every read form.


@CIPHERS
@pytest.mark.parametrize("form", READ_FORMS)
def test_a_wrong_key_fails_every_read_form(records_api: AsgiClient, cipher: str, form: str) -> None:
    encrypted(records_api, cipher)
    appended(records_api, "json", RECORDS)
    status, body = read_error(records_api, form, "seq_num=0&count=2", key=OTHER_KEY)
    assert status == 400
    assert body == {"code": "decryption_failed", "message": "record decryption failed"}


@CIPHERS
@pytest.mark.parametrize("form", READ_FORMS)
def test_command_records_read_with_any_key(records_api: AsgiClient, cipher: str, form: str) -> None:
    encrypted(records_api, cipher)
    fence = {"headers": [["", "fence"]], "body": "tok"}
    trim = {"headers": [["", "dHJpbQ=="]], "body": "AAAAAAAAAAA="}  # base64: trim to 0
    records_api.post(
        records_path(),
        json_body={"records": [fence]},
        basin=BASIN,
        headers={HEADER: KEY},
    )
    response = records_api.post(
        records_path(),
        json_body={"records": [trim]},
        basin=BASIN,
        headers={HEADER: KEY, "s2-format": "base64"},
    )
    assert response.status == 200, response.body
    appended(records_api, "json", RECORDS[1:])
    commands = records_of(records_api, form, "seq_num=0&count=2", key=OTHER_KEY)
    assert [r["headers"] for r in commands] == [[["", "fence"]], [["", "trim"]]]
    status, body = read_error(records_api, form, "seq_num=0&count=3", key=OTHER_KEY)
    assert (status, body["code"]) == (400, "decryption_failed")


@CIPHERS
def test_each_append_may_use_another_key(records_api: AsgiClient, cipher: str) -> None:
    encrypted(records_api, cipher)
    appended(records_api, "json", RECORDS[:1], key=KEY)
    appended(records_api, "s2s", RECORDS[1:], key=OTHER_KEY)
    assert records_of(records_api, "json", "seq_num=0&count=1", key=KEY) == expected(RECORDS[:1])
    assert records_of(records_api, "sse", "seq_num=1&count=1", key=OTHER_KEY) == expected(
        RECORDS[1:], 1
    )
    for key in (KEY, OTHER_KEY):
        status, body = read_error(records_api, "json", "seq_num=0&count=2", key=key)
        assert (status, body["code"]) == (400, "decryption_failed")


# Metering uses plaintext sizes.


@CIPHERS
def test_read_limits_and_sse_ids_count_plaintext_bytes(
    records_api: AsgiClient, cipher: str
) -> None:
    encrypted(records_api, cipher)
    appended(records_api, "json", RECORDS * 2)
    sizes = RECORDS_METERED * 2
    # `bytes` stops before the record that would exceed it, counted on plaintext sizes.
    for form in READ_FORMS:
        got = records_of(records_api, form, f"seq_num=0&bytes={sizes[0] + sizes[1]}")
        assert [r["seq_num"] for r in got] == [0, 1], form
        got = records_of(records_api, form, f"seq_num=0&bytes={sum(sizes[:3])}")
        assert [r["seq_num"] for r in got] == [0, 1, 2], form
    events = sse_events(read(records_api, "sse", "seq_num=0&count=4"))
    ids = [event_id for event, event_id, _ in events if event == "batch"]
    assert ids == [f"3,4,{sum(sizes)}"]


# The AES-256-GCM sequence number limit (spec §7, §6.3).


def _move_tail(next_seq: int) -> None:
    stream_id = Stream.objects.get(basin__name=BASIN, name="s").pk
    StreamLog.objects.update_or_create(
        stream_id=stream_id, defaults={"next_seq": next_seq, "last_ts": 1}
    )


@pytest.mark.parametrize("form", ["json", "s2s"])
def test_aes_gcm_streams_stop_at_u32_max(records_api: AsgiClient, form: str) -> None:
    encrypted(records_api, "aes-256-gcm")
    last = 2**32 - 1
    _move_tail(last - 1)
    assert appended(records_api, form, [{"body": "a"}]) == last
    response = append(records_api, form, [{"body": "b"}, {"body": "c"}])
    body = {
        "code": "invalid",
        "message": f"max assignable sequence number is {last}; attempted {last + 1}",
    }
    if form == "s2s":
        [frame] = s2s_frames(response)
        assert frame.terminal
        assert (int.from_bytes(frame.payload[:2], "big"), json.loads(frame.payload[2:])) == (
            422,
            body,
        )
    else:
        assert_error(response, "invalid", body["message"])
    # Nothing of the rejected batch was written; the last allowed record is readable.
    assert appended(records_api, "json", [{"body": "d"}]) == last + 1
    assert records_of(records_api, "json", f"seq_num={last - 1}&count=5") == [
        {"seq_num": last - 1, "headers": [], "body": "a"},
        {"seq_num": last, "headers": [], "body": "d"},
    ]
    # Command records are exempt.
    fence = {"headers": [["", "fence"]], "body": "t"}
    assert appended(records_api, "json", [fence, fence]) == last + 3
    assert_error(append(records_api, "json", [{"body": "e"}]), "invalid")


def test_aegis_streams_have_no_such_limit(records_api: AsgiClient) -> None:
    encrypted(records_api, "aegis-256")
    _move_tail(2**32 - 1)
    assert appended(records_api, "json", [{"body": "a"}, {"body": "b"}]) == 2**32 + 1
    got = records_of(records_api, "json", f"seq_num={2**32}&count=1")
    assert got == [{"seq_num": 2**32, "headers": [], "body": "b"}]


# The key never reaches logs: the data plane logs no headers, and Django's error reports
# (the only place request headers are written) mask it.


def test_error_reports_mask_the_key() -> None:
    from django.test import RequestFactory
    from django.views.debug import get_default_exception_reporter_filter

    request = RequestFactory().get("/v1/streams/s/records", HTTP_S2_ENCRYPTION_KEY=KEY)
    meta = get_default_exception_reporter_filter().get_safe_request_meta(request)
    assert meta["HTTP_S2_ENCRYPTION_KEY"] != KEY
    assert KEY not in repr(meta)


# Live records (a read that waits at the tail) are decrypted, or fail, the same way.


async def _following() -> None:
    running = runtime.current()
    assert running is not None
    for _ in range(500):
        if any(s.followers for s in running.engine.registry._streamers.values()):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the read never started to follow")


def live_read(api: AsgiClient, form: str, key: str) -> Response:
    """A read that starts at the tail and gets one record appended while it waits."""
    headers = {"s2-basin": BASIN, HEADER: key}
    if form == "sse":
        headers["accept"] = "text/event-stream"
    elif form == "s2s":
        headers["content-type"] = "s2s/proto"
    query = "seq_num=1&wait=10" + ("" if form == "json" else "&count=1")

    async def scenario() -> Response:
        pending = asyncio.ensure_future(api._run("GET", records_path(), query, headers, [b""]))
        await _following()
        body = json.dumps({"records": [{"body": "live"}]}).encode()
        append_headers = {"s2-basin": BASIN, "content-type": "application/json", HEADER: KEY}
        ack = await api._run("POST", records_path(), "", append_headers, [body])
        assert ack.status == 200, ack.body
        return await asyncio.wait_for(pending, 10)

    result: Response = api.run(scenario())
    return result


@CIPHERS
@pytest.mark.parametrize("form", ["json", "sse", "s2s"])
def test_live_records_are_decrypted(records_api: AsgiClient, cipher: str, form: str) -> None:
    encrypted(records_api, cipher)
    appended(records_api, "json", RECORDS[1:])
    response = live_read(records_api, form, KEY)
    if form == "json":
        assert response.status == 200, response.body
        document = response.json()
        assert [r["body"] for r in document["records"]] == ["live"]
        assert document["tail"]["seq_num"] == 2
    elif form == "sse":
        batches = [json.loads(d) for e, _, d in sse_events(response) if e == "batch"]
        assert [r["body"] for b in batches for r in b["records"]] == ["live"]
    else:
        frames = [messages.ReadBatch.FromString(f.message()) for f in s2s_frames(response)]
        assert [r.body for b in frames for r in b.records] == [b"live"]


@CIPHERS
@pytest.mark.parametrize("form", ["json", "sse", "s2s"])
def test_live_records_fail_with_a_wrong_key(
    records_api: AsgiClient, cipher: str, form: str
) -> None:
    encrypted(records_api, cipher)
    appended(records_api, "json", RECORDS[1:])
    response = live_read(records_api, form, OTHER_KEY)
    failure = {"code": "decryption_failed", "message": "record decryption failed"}
    if form == "json":
        assert_error(response, "decryption_failed", failure["message"])
    elif form == "sse":
        events = sse_events(response)
        assert events[-1][0] == "error" and json.loads(events[-1][2]) == failure
        assert all(e != "batch" for e, _, _ in events)
    else:
        *regular, last = s2s_frames(response)
        assert last.terminal
        assert (int.from_bytes(last.payload[:2], "big"), json.loads(last.payload[2:])) == (
            400,
            failure,
        )
        # Only heartbeats (batches without records) came before the failure.
        assert all(not messages.ReadBatch.FromString(f.message()).records for f in regular)


@CIPHERS
@pytest.mark.parametrize("form", ["sse", "s2s"])
def test_followers_of_one_block_with_different_keys(
    records_api: AsgiClient, cipher: str, form: str
) -> None:
    """Two sessions following the same live block, the one with the right key woken
    first: it gets the records, the one with a wrong key fails on the same block."""
    encrypted(records_api, cipher)
    appended(records_api, "json", RECORDS[1:])
    accept = {"accept": "text/event-stream"} if form == "sse" else {"content-type": "s2s/proto"}
    query = "seq_num=1&wait=10&count=1"

    async def scenario() -> tuple[Response, Response]:
        running = runtime.current()
        assert running is not None

        async def follow(key: str, followers: int) -> asyncio.Future[Response]:
            headers = {"s2-basin": BASIN, HEADER: key, **accept}
            pending = asyncio.ensure_future(
                records_api._run("GET", records_path(), query, headers, [b""])
            )
            for _ in range(500):
                streamers = running.engine.registry._streamers.values()
                if sum(len(s.followers) for s in streamers) == followers:
                    return pending
                await asyncio.sleep(0.01)
            raise AssertionError("the read never started to follow")

        right = await follow(KEY, 1)
        wrong = await follow(OTHER_KEY, 2)
        body = json.dumps({"records": [{"body": "live"}]}).encode()
        append_headers = {"s2-basin": BASIN, "content-type": "application/json", HEADER: KEY}
        ack = await records_api._run("POST", records_path(), "", append_headers, [body])
        assert ack.status == 200, ack.body
        return await asyncio.wait_for(right, 10), await asyncio.wait_for(wrong, 10)

    right, wrong = records_api.run(scenario())
    if form == "sse":
        good = [json.loads(d) for e, _, d in sse_events(right) if e == "batch"]
        assert [r["body"] for b in good for r in b["records"]] == ["live"]
        events = sse_events(wrong)
        assert events[-1][0] == "error"
        assert json.loads(events[-1][2])["code"] == "decryption_failed"
        assert all(e != "batch" for e, _, _ in events)
    else:
        good_frames = [messages.ReadBatch.FromString(f.message()) for f in s2s_frames(right)]
        assert [r.body for b in good_frames for r in b.records] == [b"live"]
        *regular, last = s2s_frames(wrong)
        assert last.terminal and int.from_bytes(last.payload[:2], "big") == 400
        assert all(not messages.ReadBatch.FromString(f.message()).records for f in regular)
