"""Shared helpers for the API tests: error assertions, factories and wire-format checks."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from s2site import runtime
from streams.protocol import messages
from tests.asgi_client import AsgiClient, Response

# The code/status pairing of spec §6.2, written out independently of the application's
# own table so that a drift in either is caught.
STATUS_OF = {
    "access_token_not_found": 404,
    "authn": 401,
    "bad_frame": 400,
    "bad_header": 400,
    "bad_json": 400,
    "bad_path": 400,
    "bad_proto": 400,
    "bad_query": 400,
    "basin_deletion_pending": 409,
    "basin_not_found": 404,
    "client_hangup": 499,
    "decryption_failed": 400,
    "hot_server": 502,
    "invalid": 422,
    "not_implemented": 501,
    "other": 500,
    "permission_denied": 403,
    "quota_exhausted": 403,
    "rate_limited": 429,
    "request_timeout": 408,
    "resource_already_exists": 409,
    "server_draining": 503,
    "storage": 500,
    "stream_deletion_pending": 409,
    "stream_not_found": 404,
    "transaction_conflict": 409,
    "unavailable": 503,
    "upstream_timeout": 504,
}

# RFC 3339, UTC, ``Z`` suffix, optional fraction without trailing zeros (spec §2.9).
RFC3339_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{0,8}[1-9])?Z$")

BASIN_INFO_KEYS = {"name", "location", "created_at", "deleted_at", "state"}
STREAM_INFO_KEYS = {"name", "created_at", "deleted_at", "cipher"}
BASIN_CONFIG_KEYS = {
    "default_stream_config",
    "stream_cipher",
    "create_stream_on_append",
    "create_stream_on_read",
}
STREAM_CONFIG_KEYS = {"storage_class", "retention_policy", "timestamping", "delete_on_empty"}

DEFAULT_STREAM_CONFIG = {
    "storage_class": "express",
    "retention_policy": {"age": 604800},
    "timestamping": {"mode": "client-prefer", "uncapped": False},
    "delete_on_empty": {"min_age_secs": 0},
}

DEFAULT_BASIN_CONFIG = {
    "default_stream_config": None,
    "stream_cipher": None,
    "create_stream_on_append": False,
    "create_stream_on_read": False,
}

BASIN = "test-basin"


def assert_error(response: Response, code: str, message: str | None = None) -> dict[str, Any]:
    """A JSON error body with exactly ``code`` and ``message``, at the code's own status."""
    assert response.status == STATUS_OF[code], (response.status, response.body)
    assert response.header("content-type") == "application/json", response.headers
    body = response.json()
    assert set(body) == {"code", "message"}, body
    assert body["code"] == code, body
    assert isinstance(body["message"], str)
    assert body["message"]
    if message is not None:
        assert body["message"] == message, body
    return body


def assert_error_mentions(response: Response, code: str, fragment: str) -> None:
    body = assert_error(response, code)
    assert fragment in body["message"], body


def assert_empty(response: Response, status: int) -> None:
    assert response.status == status, (response.status, response.body)
    assert response.body == b""


def parse_time(text: str) -> dt.datetime:
    assert RFC3339_Z.match(text), text
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def assert_basin_info(info: Any, name: str, *, deleting: bool = False) -> None:
    assert set(info) == BASIN_INFO_KEYS, info
    assert info["name"] == name
    assert info["location"] is None
    parse_time(info["created_at"])
    if deleting:
        assert info["state"] == "deleting"
        parse_time(info["deleted_at"])
    else:
        assert info["state"] == "active"
        assert info["deleted_at"] is None


def assert_stream_info(
    info: Any, name: str, *, cipher: str | None = None, deleting: bool = False
) -> None:
    assert set(info) == STREAM_INFO_KEYS, info
    assert info["name"] == name
    assert info["cipher"] == cipher
    parse_time(info["created_at"])
    if deleting:
        parse_time(info["deleted_at"])
    else:
        assert info["deleted_at"] is None


def create_basin(
    api: AsgiClient, name: str = BASIN, config: Any = None, **kwargs: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"basin": name}
    if config is not None:
        body["config"] = config
    response = api.post("/v1/basins", json_body=body, **kwargs)
    assert response.status == 201, response.body
    assert response.header("s2-provision-result") == "created"
    return response.json()


def create_stream(
    api: AsgiClient, name: str, basin: str = BASIN, config: Any = None, **kwargs: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"stream": name}
    if config is not None:
        body["config"] = config
    response = api.post("/v1/streams", json_body=body, basin=basin, **kwargs)
    assert response.status == 201, response.body
    assert response.header("s2-provision-result") == "created"
    return response.json()


def basin_config(api: AsgiClient, name: str = BASIN) -> dict[str, Any]:
    response = api.get(f"/v1/basins/{name}")
    assert response.status == 200, response.body
    return response.json()


def stream_config(api: AsgiClient, name: str, basin: str = BASIN) -> dict[str, Any]:
    response = api.get(f"/v1/streams/{name}", basin=basin)
    assert response.status == 200, response.body
    return response.json()


def stream_path(name: str) -> str:
    """The raw path of a stream, percent-encoding every byte that is not unreserved."""
    from urllib.parse import quote

    return "/v1/streams/" + quote(name, safe="")


# Record routes, with the server runtime running (the ``records_api`` fixture).


def run_deletion_pass(api: AsgiClient) -> None:
    running = runtime.current()
    assert running is not None and running.deletions is not None
    api.run(running.deletions.run_pass())


def records_path(stream: str = "s") -> str:
    return stream_path(stream) + "/records"


def setup(
    api: AsgiClient,
    *,
    basin_config: dict[str, Any] | None = None,
    stream: str | None = "s",
    stream_config: dict[str, Any] | None = None,
) -> None:
    create_basin(api, config=basin_config)
    if stream is not None:
        create_stream(api, stream, config=stream_config)


def proto_record(
    body: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    timestamp: int | None = None,
) -> Any:
    """A protobuf ``AppendRecord``."""
    record = messages.AppendRecord(
        body=body, headers=[messages.Header(name=n, value=v) for n, v in headers or []]
    )
    if timestamp is not None:
        record.timestamp = timestamp
    return record
