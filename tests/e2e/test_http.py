"""Exact statuses, headers and bodies over plain HTTP/1.1 and HTTP/2 cleartext (prior knowledge).

Every test runs once per protocol on the shared server; ``client`` asserts that
the response really came over the protocol under test.
"""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Iterator

import httpx
import pytest

pytestmark = pytest.mark.e2e


class Client:
    def __init__(self, base_url: str, http_version: str) -> None:
        self.http_version = http_version
        h2 = http_version == "HTTP/2"
        # http1=False over http:// makes httpx speak h2c with prior knowledge.
        self._client = httpx.Client(
            base_url=base_url, http1=not h2, http2=h2, timeout=10.0, follow_redirects=False
        )

    def request(self, method: str, url: str, **kwargs: object) -> httpx.Response:
        response = self._client.request(method, url, **kwargs)  # type: ignore[arg-type]
        assert response.http_version == self.http_version
        return response

    def basin_create(self, name: str) -> None:
        response = self.request("POST", "/v1/basins", json={"basin": name})
        assert response.status_code == 201, response.text

    def close(self) -> None:
        self._client.close()


@pytest.fixture(params=["HTTP/1.1", "HTTP/2"], ids=["h1", "h2c"])
def client(request: pytest.FixtureRequest, server_url: str) -> Iterator[Client]:
    c = Client(server_url, request.param)
    yield c
    c.close()


def error_of(response: httpx.Response) -> tuple[int, str]:
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"code", "message"}
    return response.status_code, body["code"]


def test_health(client: Client) -> None:
    for path in ("/health", "/ping"):
        response = client.request("GET", path)
        assert response.status_code == 200
        assert response.content == b"OK"
        assert response.headers["content-type"].startswith("text/plain")
    head = client.request("HEAD", "/health")
    assert head.status_code == 200
    assert head.content == b""


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/nope"),
        ("GET", "/v1"),
        ("GET", "/v1/"),
        ("GET", "/v1/basins/"),
        ("POST", "/v1/unknown"),
        ("GET", "/v1/streams/a/b"),
    ],
)
def test_unknown_path_is_an_empty_404(client: Client, method: str, path: str) -> None:
    response = client.request(method, path, headers={"s2-basin": "some-basin"})
    assert response.status_code == 404
    assert response.content == b""
    assert "content-encoding" not in response.headers


@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("DELETE", "/v1/basins", {"GET", "POST", "HEAD"}),
        ("POST", "/v1/basins/some-basin", {"GET", "PUT", "PATCH", "DELETE", "HEAD"}),
        ("PUT", "/v1/streams", {"GET", "POST", "HEAD"}),
        ("POST", "/health", {"GET", "HEAD"}),
        ("DELETE", "/ping", {"GET", "HEAD"}),
    ],
)
def test_wrong_method_is_an_empty_405(
    client: Client, method: str, path: str, allowed: set[str]
) -> None:
    # The client accepts compressed responses: an empty body must still be sent as is.
    response = client.request(
        method, path, headers={"accept-encoding": "gzip, zstd", "s2-basin": "some-basin"}
    )
    assert response.status_code == 405
    assert response.content == b""
    assert "content-encoding" not in response.headers
    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed


def test_small_responses_are_not_compressed_and_large_ones_are(client: Client, unique: str) -> None:
    prefix = f"http-gzip-{unique}-"
    small = client.request(
        "GET", "/v1/basins", params={"prefix": prefix}, headers={"accept-encoding": "gzip"}
    )
    assert small.status_code == 200
    assert "content-encoding" not in small.headers
    assert small.json() == {"basins": [], "has_more": False}

    for index in range(12):
        client.basin_create(f"{prefix}{index:02d}")
    large = client.request(
        "GET", "/v1/basins", params={"prefix": prefix}, headers={"accept-encoding": "gzip"}
    )
    assert large.status_code == 200
    assert large.headers["content-encoding"] == "gzip"
    assert len(large.json()["basins"]) == 12


def test_stream_name_with_slash_round_trips(client: Client, unique: str) -> None:
    basin = f"http-slash-{unique}"
    client.basin_create(basin)
    headers = {"s2-basin": basin}

    created = client.request("POST", "/v1/streams", json={"stream": "a/b"}, headers=headers)
    assert created.status_code == 201
    assert created.json()["name"] == "a/b"

    got = client.request("GET", "/v1/streams/a%2Fb", headers=headers)
    assert got.status_code == 200
    assert got.json()["storage_class"] == "express"

    ensured = client.request("PUT", "/v1/streams/x%2Fy%2F%C3%A9t%C3%A9", headers=headers)
    assert ensured.status_code == 201
    assert ensured.headers["s2-provision-result"] == "created"
    assert ensured.json()["name"] == "x/y/été"

    listed = client.request("GET", "/v1/streams", headers=headers)
    assert [s["name"] for s in listed.json()["streams"]] == ["a/b", "x/y/été"]

    # Unencoded, the slash splits the path: no such route.
    assert client.request("GET", "/v1/streams/a/b", headers=headers).status_code == 404

    deleted = client.request("DELETE", "/v1/streams/a%2Fb", headers=headers)
    assert deleted.status_code == 202
    assert deleted.content == b""


def test_cors_preflight(client: Client) -> None:
    response = client.request(
        "OPTIONS",
        "/v1/streams/some-stream/records",
        headers={
            "origin": "https://app.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "s2-basin, content-type",
        },
    )
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    assert response.headers["access-control-allow-credentials"] == "true"
    assert response.headers["access-control-allow-methods"] == "POST"
    assert response.headers["access-control-allow-headers"] == "s2-basin, content-type"
    assert "access-control-max-age" not in response.headers
    assert "access-control-expose-headers" not in response.headers
    vary = {v.strip() for v in response.headers["vary"].split(",")}
    assert {"origin", "access-control-request-method", "access-control-request-headers"} <= vary


def test_cors_on_ordinary_responses(client: Client) -> None:
    with_origin = client.request(
        "GET", "/v1/basins/missing-basin", headers={"origin": "http://localhost:3000"}
    )
    assert error_of(with_origin) == (404, "basin_not_found")
    assert with_origin.headers["access-control-allow-origin"] == "http://localhost:3000"
    assert with_origin.headers["access-control-allow-credentials"] == "true"

    unknown = client.request("GET", "/nope", headers={"origin": "http://localhost:3000"})
    assert unknown.status_code == 404
    assert unknown.headers["access-control-allow-origin"] == "http://localhost:3000"

    without_origin = client.request("GET", "/health")
    assert "access-control-allow-origin" not in without_origin.headers


def test_request_token_replay_and_conflict(client: Client, unique: str) -> None:
    name = f"http-token-{unique}"
    body = {"basin": name, "config": {"create_stream_on_read": True}}
    token = {"s2-request-token": f"token-{unique}"}

    first = client.request("POST", "/v1/basins", json=body, headers=token)
    assert first.status_code == 201
    assert first.headers["s2-provision-result"] == "created"
    assert first.json() == {
        "name": name,
        "location": None,
        "created_at": first.json()["created_at"],
        "deleted_at": None,
        "state": "active",
    }
    assert first.json()["created_at"].endswith("Z")

    replay = client.request("POST", "/v1/basins", json=body, headers=token)
    assert replay.status_code == 201
    assert replay.headers["s2-provision-result"] == "noop"
    assert replay.json()["created_at"] == first.json()["created_at"]

    other_token = client.request(
        "POST", "/v1/basins", json=body, headers={"s2-request-token": "another"}
    )
    assert error_of(other_token) == (409, "resource_already_exists")
    no_token = client.request("POST", "/v1/basins", json=body)
    assert error_of(no_token) == (409, "resource_already_exists")


def test_bad_requests(client: Client) -> None:
    assert error_of(client.request("GET", "/v1/streams")) == (400, "bad_header")
    assert error_of(client.request("GET", "/v1/basins/UPPER-CASE")) == (400, "bad_path")
    assert error_of(client.request("GET", "/v1/basins", params={"limit": "-1"})) == (
        400,
        "bad_query",
    )
    not_json = client.request(
        "POST",
        "/v1/basins",
        content=b'{"basin":"some-basin"}',
        headers={"content-type": "text/plain"},
    )
    assert error_of(not_json) == (400, "bad_json")
    assert not_json.json()["message"] == "Expected request with `Content-Type: application/json`"
    zero_age = client.request(
        "POST",
        "/v1/basins",
        json={
            "basin": "zero-age-basin",
            "config": {"default_stream_config": {"retention_policy": {"age": 0}}},
        },
    )
    assert error_of(zero_age) == (422, "invalid")
    not_implemented = client.request("GET", "/v1/locations")
    assert error_of(not_implemented) == (501, "not_implemented")
    assert not_implemented.json()["message"] == "Not implemented"


def test_gzip_request_body(client: Client, unique: str) -> None:
    name = f"http-gzipped-{unique}"
    body = gzip.compress(json.dumps({"basin": name}).encode())
    response = client.request(
        "POST",
        "/v1/basins",
        content=body,
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert response.status_code == 201
    assert response.json()["name"] == name
    unsupported = client.request(
        "POST",
        "/v1/basins",
        content=body,
        headers={"content-type": "application/json", "content-encoding": "br"},
    )
    assert unsupported.status_code == 415


def test_deleted_basin_disappears(client: Client, unique: str) -> None:
    name = f"http-delete-{unique}"
    client.basin_create(name)

    deleted = client.request("DELETE", f"/v1/basins/{name}")
    assert deleted.status_code == 202
    assert deleted.content == b""

    deadline = time.monotonic() + 5
    while True:
        got = client.request("GET", f"/v1/basins/{name}")
        if got.status_code == 404:
            assert error_of(got) == (404, "basin_not_found")
            break
        # Still pending: the config is still served.
        assert got.status_code == 200
        assert time.monotonic() < deadline, "basin still present 5 s after DELETE"
        time.sleep(0.05)

    assert client.request("GET", "/v1/basins", params={"prefix": name}).json()["basins"] == []
    again = client.request("DELETE", f"/v1/basins/{name}")
    assert error_of(again) == (404, "basin_not_found")
    client.basin_create(name)


def test_deleted_stream_disappears(client: Client, unique: str) -> None:
    basin = f"http-delete-stream-{unique}"
    client.basin_create(basin)
    headers = {"s2-basin": basin}
    assert (
        client.request(
            "POST", "/v1/streams", json={"stream": "doomed"}, headers=headers
        ).status_code
        == 201
    )

    deleted = client.request("DELETE", "/v1/streams/doomed", headers=headers)
    assert deleted.status_code == 202
    assert deleted.content == b""

    deadline = time.monotonic() + 5
    while True:
        got = client.request("GET", "/v1/streams/doomed", headers=headers)
        if got.status_code == 404:
            assert error_of(got) == (404, "stream_not_found")
            break
        assert error_of(got) == (409, "stream_deletion_pending")
        assert time.monotonic() < deadline, "stream still present 5 s after DELETE"
        time.sleep(0.05)

    listed = client.request("GET", "/v1/streams", headers=headers)
    assert listed.json() == {"streams": [], "has_more": False}
    again = client.request("DELETE", "/v1/streams/doomed", headers=headers)
    assert error_of(again) == (404, "stream_not_found")
    recreated = client.request("POST", "/v1/streams", json={"stream": "doomed"}, headers=headers)
    assert recreated.status_code == 201
