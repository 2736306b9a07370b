"""Check tail over the full HTTP stack with the record log running (spec §1.4, §4.5, §6)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from tests.api.support import (
    BASIN,
    assert_empty,
    assert_error,
    create_stream,
    records_path,
    run_deletion_pass,
    setup,
    stream_path,
)
from tests.asgi_client import AsgiClient, Response


def tail_path(stream: str = "s") -> str:
    return stream_path(stream) + "/records/tail"


def check_tail(api: AsgiClient, stream: str = "s", **kwargs: Any) -> Response:
    kwargs.setdefault("basin", BASIN)
    return api.get(tail_path(stream), **kwargs)


def tail_of(api: AsgiClient, stream: str = "s") -> dict[str, int]:
    response = check_tail(api, stream)
    assert response.status == 200, (response.status, response.body)
    assert response.header("content-type") == "application/json"
    body: dict[str, Any] = response.json()
    assert set(body) == {"tail"}
    assert set(body["tail"]) == {"seq_num", "timestamp"}
    tail: dict[str, int] = body["tail"]
    return tail


def append(
    api: AsgiClient, records: list[dict[str, Any]], stream: str = "s", **fields: Any
) -> Response:
    return api.post(records_path(stream), json_body={"records": records, **fields}, basin=BASIN)


def ack_of(api: AsgiClient, records: list[dict[str, Any]], stream: str = "s") -> dict[str, Any]:
    response = append(api, records, stream)
    assert response.status == 200, (response.status, response.body)
    ack: dict[str, Any] = response.json()
    return ack


def stream_names(api: AsgiClient) -> list[str]:
    response = api.get("/v1/streams", basin=BASIN)
    assert response.status == 200
    return [info["name"] for info in response.json()["streams"]]


def test_empty_stream(records_api: AsgiClient) -> None:
    setup(records_api)
    response = check_tail(records_api)
    assert response.status == 200
    assert response.header("content-type") == "application/json"
    assert response.body == b'{"tail":{"seq_num":0,"timestamp":0}}'


def test_tail_follows_appends(records_api: AsgiClient) -> None:
    setup(records_api)
    ack = ack_of(records_api, [{"timestamp": 10}, {"timestamp": 20}])
    assert tail_of(records_api) == ack["tail"] == ack["end"] == {"seq_num": 2, "timestamp": 20}
    ack = ack_of(records_api, [{"timestamp": 15}])  # clamped to 20
    assert tail_of(records_api) == ack["end"] == {"seq_num": 3, "timestamp": 20}
    ack = ack_of(records_api, [{}])
    assert tail_of(records_api) == ack["end"]
    assert tail_of(records_api)["timestamp"] >= time.time_ns() // 1_000_000 - 60_000


def test_tail_is_the_position_after_the_last_record(records_api: AsgiClient) -> None:
    setup(records_api)
    ack_of(records_api, [{"body": str(i), "timestamp": i} for i in range(1000)])
    ack_of(records_api, [{"body": "x", "timestamp": 5000}])
    assert tail_of(records_api) == {"seq_num": 1001, "timestamp": 5000}
    read = records_api.get(records_path(), query="tail_offset=1", basin=BASIN).json()
    assert read["records"] == [{"seq_num": 1000, "timestamp": 5000, "body": "x"}]


def test_failed_appends_do_not_move_the_tail(records_api: AsgiClient) -> None:
    setup(records_api)
    ack_of(records_api, [{"timestamp": 7}])
    assert append(records_api, [{"timestamp": 9}], match_seq_num=0).status == 412
    assert append(records_api, [{"timestamp": 9}], fencing_token="x").status == 412
    assert append(records_api, []).status == 422
    assert tail_of(records_api) == {"seq_num": 1, "timestamp": 7}


def test_trim_does_not_move_the_tail(records_api: AsgiClient) -> None:
    setup(records_api)
    ack_of(records_api, [{"timestamp": t} for t in (1, 2, 3)])
    trim = {"headers": [["", "trim"]], "body": "\u0000" * 7 + "\u0009", "timestamp": 4}
    ack = ack_of(records_api, [trim])
    time.sleep(0.05)
    assert tail_of(records_api) == ack["end"] == {"seq_num": 4, "timestamp": 4}


def test_tail_after_concurrent_appends(records_api: AsgiClient) -> None:
    setup(records_api)

    async def one(i: int) -> Response:
        body = json.dumps({"records": [{"timestamp": i}] * 3}).encode()
        headers = {"content-type": "application/json", "s2-basin": BASIN}
        return await records_api._run("POST", records_path(), "", headers, [body])

    async def all_of() -> list[Response]:
        return list(await asyncio.gather(*(one(i) for i in range(8))))

    responses = records_api.run(all_of())
    assert [r.status for r in responses] == [200] * 8
    ends = [r.json()["end"] for r in responses]
    assert tail_of(records_api) == max(ends, key=lambda e: e["seq_num"])
    assert tail_of(records_api)["seq_num"] == 24


def test_missing_stream(records_api: AsgiClient) -> None:
    setup(records_api, basin_config={"create_stream_on_append": True}, stream=None)
    response = check_tail(records_api, "nope")
    assert_error(response, "stream_not_found", "stream `nope` in basin `test-basin` not found")
    assert stream_names(records_api) == []


def test_missing_basin(records_api: AsgiClient) -> None:
    response = check_tail(records_api, basin="missing-basin")
    assert_error(response, "basin_not_found", "basin `missing-basin` not found")


def test_auto_create_on_read(records_api: AsgiClient) -> None:
    setup(records_api, basin_config={"create_stream_on_read": True}, stream=None)
    response = check_tail(records_api, "auto")
    assert response.status == 200
    assert response.json() == {"tail": {"seq_num": 0, "timestamp": 0}}
    assert stream_names(records_api) == ["auto"]
    # The stream is real: records can be appended to it.
    ack_of(records_api, [{"timestamp": 3}], stream="auto")
    assert tail_of(records_api, "auto") == {"seq_num": 1, "timestamp": 3}


def test_stream_being_deleted(records_api: AsgiClient) -> None:
    setup(records_api)
    ack_of(records_api, [{"timestamp": 1}])
    assert_empty(records_api.delete("/v1/streams/s", basin=BASIN), 202)
    assert_error(check_tail(records_api), "stream_deletion_pending", "stream deletion pending")


def test_recreated_stream_starts_from_zero(records_api: AsgiClient) -> None:
    setup(records_api)
    ack_of(records_api, [{"timestamp": 1}] * 3)
    assert_empty(records_api.delete("/v1/streams/s", basin=BASIN), 202)
    assert_error(check_tail(records_api), "stream_deletion_pending")
    run_deletion_pass(records_api)
    assert_error(check_tail(records_api), "stream_not_found")
    create_stream(records_api, "s")
    assert tail_of(records_api) == {"seq_num": 0, "timestamp": 0}


@pytest.mark.parametrize(
    "headers",
    [
        {"s2-encryption-key": ""},
        {"s2-encryption-key": "k" * 100},
        {"s2-format": "nope"},
        {"accept": "application/protobuf"},
        {"content-type": "s2s/proto"},
        {"accept": "text/event-stream"},
    ],
)
def test_only_basin_and_path_are_extracted(
    records_api: AsgiClient, headers: dict[str, str]
) -> None:
    setup(records_api)
    ack_of(records_api, [{"timestamp": 2}])
    response = check_tail(records_api, headers=headers, query="seq_num=x&wait=-1")
    assert response.status == 200
    assert response.header("content-type") == "application/json"
    assert response.json() == {"tail": {"seq_num": 1, "timestamp": 2}}


def test_extraction_order(records_api: AsgiClient) -> None:
    setup(records_api)
    response = records_api.get("/v1/streams/%FF/records/tail")
    assert_error(response, "bad_header", "Missing header `s2-basin`")
    response = records_api.get("/v1/streams/%FF/records/tail", basin="NOT A BASIN")
    assert_error(response, "bad_header")
    response = records_api.get("/v1/streams/%FF/records/tail", basin="missing-basin")
    assert_error(response, "bad_path")
    response = records_api.get(f"/v1/streams/{'a' * 513}/records/tail", basin=BASIN)
    assert_error(response, "bad_path")


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_wrong_method(records_api: AsgiClient, method: str) -> None:
    response = records_api.request(
        method,
        "/v1/streams/s/records/tail",
        body=b"{",
        headers={"content-type": "application/json"},
    )
    assert_empty(response, 405)
    allow = response.header("allow")
    assert allow is not None
    assert {m.strip() for m in allow.split(",")} == {"GET", "HEAD"}


def test_head(records_api: AsgiClient) -> None:
    setup(records_api)
    response = records_api.request("HEAD", tail_path(), basin=BASIN)
    assert response.status == 200
    assert response.header("content-type") == "application/json"
    assert response.body == b""


@pytest.mark.parametrize("name", ["a/b", "/", "a%2Fb", "é/☃"])
def test_stream_names_needing_percent_encoding(records_api: AsgiClient, name: str) -> None:
    setup(records_api, stream=name)
    create_stream(records_api, "a")
    ack_of(records_api, [{"timestamp": 4}], stream=name)
    assert tail_of(records_api, name) == {"seq_num": 1, "timestamp": 4}
    assert tail_of(records_api, "a") == {"seq_num": 0, "timestamp": 0}


def test_unencoded_slash_is_not_the_tail_route(records_api: AsgiClient) -> None:
    setup(records_api, stream="a/b")
    response = records_api.get("/v1/streams/a/b/records/tail", basin=BASIN)
    assert response.status == 404
