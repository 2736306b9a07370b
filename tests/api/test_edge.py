"""Routing, methods, CORS, compression, body limits and extraction order (spec §1.2–§1.7, §6)."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
import zstandard

from tests.api.support import (
    BASIN,
    assert_empty,
    assert_error,
    assert_error_mentions,
    create_basin,
    create_stream,
)
from tests.asgi_client import AsgiClient, Response

JSON = {"content-type": "application/json"}
TWO_MIB = 2 * 1024 * 1024
ORIGIN = "https://app.example"


def allowed(response: Response) -> set[str]:
    value = response.header("allow")
    assert value is not None, response.headers
    return {method.strip() for method in value.split(",") if method.strip()}


def all_headers(response: Response, name: str) -> list[str]:
    return [v for k, v in response.headers if k.lower() == name.lower()]


def vary_tokens(response: Response) -> set[str]:
    return {
        token.strip().lower()
        for value in all_headers(response, "vary")
        for token in value.split(",")
    }


def padded_create_body(size: int) -> bytes:
    """A valid create-basin JSON body of exactly ``size`` bytes."""
    head = b'{"basin":"test-basin","pad":"'
    tail = b'"}'
    body = head + b"x" * (size - len(head) - len(tail)) + tail
    assert len(body) == size
    return body


# /health and /ping --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/health", "/ping"])
def test_health(api: AsgiClient, path: str) -> None:
    response = api.get(path)
    assert response.status == 200
    assert response.body == b"OK"
    assert (response.header("content-type") or "").startswith("text/plain")
    head = api.request("HEAD", path)
    assert head.status == 200
    assert head.body == b""
    compressed = api.get(path, headers={"accept-encoding": "gzip"})
    assert compressed.body == b"OK"
    assert compressed.header("content-encoding") is None


# Unknown routes and wrong methods (spec §1.2) ------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/nope",
        "/v1",
        "/v1/",
        "/v1/nope",
        "/v2/basins",
        "/V1/basins",
        "/v1/Basins",
        "/v1/basins/",
        "/v1/streams/",
        "/v1/basins/test-basin/",
        "/v1/basins/test-basin/extra",
        "/v1/streams/a/b/c",
        "/v1/streams/a/b",
        "/v1/access-tokens/",
        "/v1/locations/other",
        "/v1/metrics/",
        "/v1/metrics/a/b/c",
        "/health/",
        "/v1/%62asins",
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
def test_unknown_path_is_empty_404(api: AsgiClient, path: str, method: str) -> None:
    create_basin(api)
    response = api.request(method, path, basin=BASIN, json_body={"basin": "other-basin"})
    assert_empty(response, 404)
    assert response.header("content-type") is None
    assert [b["name"] for b in api.get("/v1/basins").json()["basins"]] == [BASIN]


COLLECTION = {"GET", "HEAD", "POST"}
RESOURCE = {"GET", "HEAD", "PUT", "PATCH", "DELETE"}


@pytest.mark.parametrize(
    ("method", "path", "methods"),
    [
        ("PUT", "/v1/basins", COLLECTION),
        ("PATCH", "/v1/basins", COLLECTION),
        ("DELETE", "/v1/basins", COLLECTION),
        ("TRACE", "/v1/basins", COLLECTION),
        ("POST", "/v1/basins/test-basin", RESOURCE),
        ("POST", "/v1/basins/INVALID", RESOURCE),
        ("PUT", "/v1/streams", COLLECTION),
        ("DELETE", "/v1/streams", COLLECTION),
        ("POST", "/v1/streams/s", RESOURCE),
        ("POST", "/v1/streams/%FF", RESOURCE),
        ("POST", "/health", {"GET", "HEAD"}),
        ("DELETE", "/ping", {"GET", "HEAD"}),
        ("PUT", "/v1/access-tokens", COLLECTION),
        ("GET", "/v1/access-tokens/some-id", {"DELETE"}),
        ("POST", "/v1/locations", {"GET", "HEAD"}),
        ("DELETE", "/v1/locations/default", {"GET", "HEAD", "PUT"}),
        ("POST", "/v1/metrics", {"GET", "HEAD"}),
        ("DELETE", "/v1/metrics/test-basin", {"GET", "HEAD"}),
        ("PUT", "/v1/metrics/test-basin/s", {"GET", "HEAD"}),
    ],
)
def test_wrong_method_is_empty_405_with_allow(
    api: AsgiClient, method: str, path: str, methods: set[str]
) -> None:
    # Method routing comes before any argument extraction: no S2-Basin, bad names and
    # bad bodies do not matter.
    response = api.request(method, path, body=b"{", headers=JSON)
    assert_empty(response, 405)
    assert allowed(response) == methods


def test_head_is_answered_for_get_routes(api: AsgiClient) -> None:
    create_basin(api)
    create_stream(api, "s")
    for path, basin in [
        ("/v1/basins", None),
        (f"/v1/basins/{BASIN}", None),
        ("/v1/streams", BASIN),
        ("/v1/streams/s", BASIN),
    ]:
        response = api.request("HEAD", path, basin=basin)
        assert response.status == 200, path
        assert response.header("content-type") == "application/json"
        assert response.body == b""
    missing = api.request("HEAD", "/v1/basins/missing-basin")
    assert missing.status == 404
    assert missing.header("content-type") == "application/json"
    assert missing.body == b""
    assert api.request("HEAD", "/v1/streams/s").status == 400
    assert api.request("HEAD", "/v1/locations").status == 501
    assert api.request("HEAD", "/v1/metrics", query="set=account-ops").status == 501
    # HEAD is not a way to write.
    assert api.request("HEAD", "/v1/basins/other-basin").status == 404


# CORS (spec §1.6) ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/v1/basins", "/v1/basins/INVALID", "/v1/streams/s", "/nope", "/health", "/v1/metrics"]
)
def test_preflight_is_answered_directly(api: AsgiClient, path: str) -> None:
    response = api.request(
        "OPTIONS",
        path,
        headers={
            "origin": ORIGIN,
            "access-control-request-method": "PUT",
            "access-control-request-headers": "content-type,s2-basin,x-custom",
        },
    )
    assert_empty(response, 200)
    assert response.header("access-control-allow-origin") == ORIGIN
    assert response.header("access-control-allow-credentials") == "true"
    assert response.header("access-control-allow-methods") == "PUT"
    assert response.header("access-control-allow-headers") == "content-type,s2-basin,x-custom"
    assert response.header("access-control-expose-headers") is None
    assert response.header("access-control-max-age") is None
    assert {
        "origin",
        "access-control-request-method",
        "access-control-request-headers",
    } <= vary_tokens(response)


def test_preflight_echoes_only_what_was_asked(api: AsgiClient) -> None:
    response = api.request("OPTIONS", "/v1/basins", headers={"origin": "null"})
    assert_empty(response, 200)
    assert response.header("access-control-allow-origin") == "null"
    assert response.header("access-control-allow-methods") is None
    assert response.header("access-control-allow-headers") is None
    response = api.request(
        "OPTIONS", "/v1/basins", headers={"access-control-request-method": "DELETE"}
    )
    assert_empty(response, 200)
    assert response.header("access-control-allow-origin") is None
    assert response.header("access-control-allow-credentials") == "true"
    assert response.header("access-control-allow-methods") == "DELETE"


def _assert_cors(response: Response, origin: str | None) -> None:
    assert response.header("access-control-allow-origin") == origin
    assert response.header("access-control-allow-credentials") == "true"
    assert response.header("access-control-allow-methods") is None
    assert response.header("access-control-allow-headers") is None
    assert response.header("access-control-expose-headers") is None
    assert "origin" in vary_tokens(response)


def test_cors_headers_on_every_kind_of_response(api: AsgiClient) -> None:
    h = {"origin": ORIGIN}
    _assert_cors(api.post("/v1/basins", json_body={"basin": BASIN}, headers=h), ORIGIN)
    _assert_cors(api.get("/v1/basins", headers=h), ORIGIN)
    _assert_cors(api.get("/v1/basins/missing-basin", headers=h), ORIGIN)
    _assert_cors(api.get("/v1/streams", headers=h), ORIGIN)
    _assert_cors(api.delete(f"/v1/basins/{BASIN}", headers=h), ORIGIN)
    _assert_cors(api.get("/nope", headers=h), ORIGIN)
    _assert_cors(api.post("/v1/basins/x", headers=h), ORIGIN)
    _assert_cors(api.get("/health", headers=h), ORIGIN)
    _assert_cors(api.get("/v1/locations", headers=h), ORIGIN)
    unsupported = api.post(
        "/v1/basins", body=b"{}", headers={**h, **JSON, "content-encoding": "br"}
    )
    assert unsupported.status == 415
    _assert_cors(unsupported, ORIGIN)
    # Without an Origin there is nothing to echo, but credentials are still allowed.
    _assert_cors(api.get("/v1/basins"), None)
    _assert_cors(api.get("/nope"), None)


def test_no_cors_setting_disables_cors(api: AsgiClient, settings: Any) -> None:
    settings.S2_CORS = False
    client = AsgiClient()
    response = client.get("/v1/basins", headers={"origin": ORIGIN})
    assert response.status == 200
    assert not [k for k, _ in response.headers if k.lower().startswith("access-control-")]
    preflight = client.request(
        "OPTIONS",
        "/v1/basins",
        headers={"origin": ORIGIN, "access-control-request-method": "GET"},
    )
    assert_empty(preflight, 405)
    assert allowed(preflight) == COLLECTION
    assert not [k for k, _ in preflight.headers if k.lower().startswith("access-control-")]
    assert_empty(client.request("OPTIONS", "/nope"), 404)


# Content negotiation and JSON bodies (spec §1.4, §1.5) --------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",
        "application/json;charset=UTF-8",
        "Application/JSON",
        "application/vnd.s2+json",
        "application/merge-patch+json",
        "application/json, text/plain",
        " application/json",
    ],
)
def test_json_content_types(api: AsgiClient, content_type: str) -> None:
    headers = {"content-type": content_type}
    response = api.post("/v1/basins", body=b'{"basin":"test-basin"}', headers=headers)
    assert response.status == 201, response.body
    assert api.patch(f"/v1/basins/{BASIN}", body=b"{}", headers=headers).status == 200
    assert api.put(f"/v1/basins/{BASIN}", body=b"{}", headers=headers).status == 200
    response = api.post("/v1/streams", body=b'{"stream":"s"}', headers=headers, basin=BASIN)
    assert response.status == 201
    assert api.put("/v1/streams/s", body=b"{}", headers=headers, basin=BASIN).status == 200
    assert api.patch("/v1/streams/s", body=b"{}", headers=headers, basin=BASIN).status == 200


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "text/json",
        "application/jsonx",
        "application/x-json",
        "application/protobuf",
        "text/plain, application/json",
        "json",
        "application",
        "*/*",
    ],
)
def test_non_json_content_types(api: AsgiClient, content_type: str) -> None:
    message = "Expected request with `Content-Type: application/json`"
    headers = {"content-type": content_type}
    response = api.post("/v1/basins", body=b'{"basin":"test-basin"}', headers=headers)
    assert_error(response, "bad_json", message)
    assert_error(api.put(f"/v1/basins/{BASIN}", body=b"{}", headers=headers), "bad_json", message)
    create_basin(api)
    assert_error(api.patch(f"/v1/basins/{BASIN}", body=b"{}", headers=headers), "bad_json", message)
    response = api.post("/v1/streams", body=b'{"stream":"s"}', headers=headers, basin=BASIN)
    assert_error(response, "bad_json", message)


def test_errors_are_json_whatever_the_accept_header(api: AsgiClient) -> None:
    for accept in ["application/protobuf", "text/event-stream", "text/html", "*/*"]:
        response = api.get("/v1/basins/missing-basin", headers={"accept": accept})
        assert_error(response, "basin_not_found")
        response = api.get("/v1/basins", headers={"accept": accept})
        assert response.status == 200
        assert response.header("content-type") == "application/json"


def test_authorization_is_ignored(api: AsgiClient) -> None:
    for value in ["Bearer ignored", "Bearer ", "Basic Zm9vOmJhcg==", "garbage"]:
        response = api.get("/v1/basins", headers={"authorization": value})
        assert response.status == 200
    create_basin(api, headers={"authorization": "Bearer x"})


def test_json_responses_are_compact_utf8(api: AsgiClient) -> None:
    create_basin(api)
    create_stream(api, "ü/😀")
    response = api.get("/v1/streams", basin=BASIN)
    assert "ü/😀".encode() in response.body
    assert b": " not in response.body
    assert b", " not in response.body


# Argument extraction order (spec §1.4) ------------------------------------------------------


def test_extraction_order(api: AsgiClient) -> None:
    create_basin(api)
    long_token = {"s2-request-token": "t" * 37}
    # streams list: S2-Basin, then the query.
    assert_error(api.get("/v1/streams", query="limit=x"), "bad_header", "Missing header `s2-basin`")
    assert_error(api.get("/v1/streams", query="limit=x", basin=BASIN), "bad_query")
    # streams create: request token, S2-Basin, body.
    assert_error_mentions(
        api.post("/v1/streams", headers=long_token), "bad_header", "s2-request-token"
    )
    assert_error(api.post("/v1/streams"), "bad_header", "Missing header `s2-basin`")
    assert_error(api.post("/v1/streams", basin=BASIN), "bad_json")
    # basins create: request token, body.
    assert_error_mentions(
        api.post("/v1/basins", body=b"{", headers={**long_token, **JSON}),
        "bad_header",
        "s2-request-token",
    )
    # stream get/delete: S2-Basin, path.
    for method in ("GET", "DELETE"):
        assert_error(api.request(method, "/v1/streams/%FF"), "bad_header")
        assert_error(api.request(method, "/v1/streams/%FF", basin="bad"), "bad_header")
        assert_error(api.request(method, "/v1/streams/%FF", basin=BASIN), "bad_path")
    # stream ensure/reconfigure: S2-Basin, path, body.
    for method in ("PUT", "PATCH"):
        bad = api.request(method, "/v1/streams/%2E%2E", body=b"{", headers=JSON)
        assert_error(bad, "bad_header", "Missing header `s2-basin`")
        bad = api.request(method, "/v1/streams/%2E%2E", body=b"{", headers=JSON, basin=BASIN)
        assert_error(bad, "bad_path")
        bad = api.request(method, "/v1/streams/s", body=b"{", headers=JSON, basin=BASIN)
        assert_error(bad, "bad_json")
    # basin ensure/reconfigure: path, body.
    for method in ("PUT", "PATCH"):
        bad = api.request(method, "/v1/basins/BAD", body=b"{", headers=JSON)
        assert_error(bad, "bad_path")
    # Parsing (400) comes before semantic validation (422), which comes before state.
    age_zero = {"retention_policy": {"age": 0}}
    bad = api.post("/v1/streams", json_body={"stream": "", "config": age_zero}, basin=BASIN)
    assert_error(bad, "bad_json")
    bad = api.put("/v1/streams/%2E%2E", json_body=age_zero, basin=BASIN)
    assert_error(bad, "bad_path")


# Request bodies: decompression and the 2 MiB limit (spec §1.4, §1.7) -----------------------


def test_gzip_and_zstd_request_bodies_are_decompressed(api: AsgiClient) -> None:
    body = json.dumps({"basin": BASIN, "config": {"create_stream_on_read": True}}).encode()
    response = api.post(
        "/v1/basins", body=gzip.compress(body), headers={**JSON, "content-encoding": "gzip"}
    )
    assert response.status == 201, response.body
    assert api.get(f"/v1/basins/{BASIN}").json()["create_stream_on_read"] is True
    patch = zstandard.ZstdCompressor().compress(b'{"create_stream_on_append": true}')
    response = api.patch(
        f"/v1/basins/{BASIN}", body=patch, headers={**JSON, "content-encoding": "zstd"}
    )
    assert response.status == 200, response.body
    assert response.json()["create_stream_on_append"] is True
    stream = gzip.compress(b'{"stream": "s", "config": {"storage_class": "standard"}}')
    response = api.post(
        "/v1/streams", body=stream, basin=BASIN, headers={**JSON, "content-encoding": "gzip"}
    )
    assert response.status == 201, response.body
    ensure = zstandard.ZstdCompressor().compress(b'{"retention_policy": {"age": 5}}')
    response = api.put(
        "/v1/streams/s", body=ensure, basin=BASIN, headers={**JSON, "content-encoding": "zstd"}
    )
    assert response.header("s2-provision-result") == "updated"
    identity = api.post(
        "/v1/basins",
        body=b'{"basin":"other-basin"}',
        headers={**JSON, "content-encoding": "identity"},
    )
    assert identity.status == 201


def test_compressed_body_in_many_chunks(api: AsgiClient) -> None:
    body = gzip.compress(json.dumps({"basin": BASIN, "pad": "y" * 50_000}).encode())
    chunks = [body[i : i + 100] for i in range(0, len(body), 100)]
    response = api.post("/v1/basins", chunks=chunks, headers={**JSON, "content-encoding": "gzip"})
    assert response.status == 201, response.body


@pytest.mark.parametrize("encoding", ["br", "deflate", "compress", "x-unknown"])
def test_unsupported_request_encoding_is_415(api: AsgiClient, encoding: str) -> None:
    headers = {**JSON, "content-encoding": encoding}
    response = api.post("/v1/basins", body=b'{"basin":"test-basin"}', headers=headers)
    assert_empty(response, 415)
    accepted = {e.strip() for e in (response.header("accept-encoding") or "").split(",")}
    assert {"gzip", "zstd"} <= accepted
    assert "br" not in accepted
    assert api.get(f"/v1/basins/{BASIN}").status == 404
    # It is checked for any API request, body or not.
    assert_empty(api.get("/v1/basins", headers={"content-encoding": encoding}), 415)


@pytest.mark.parametrize(
    ("encoding", "body"),
    [
        ("gzip", b"definitely not gzip"),
        ("gzip", b'{"basin":"test-basin"}'),
        ("zstd", b"definitely not zstd"),
        ("zstd", gzip.compress(b'{"basin":"test-basin"}')),
    ],
)
def test_corrupt_compressed_body_is_bad_json(api: AsgiClient, encoding: str, body: bytes) -> None:
    response = api.post("/v1/basins", body=body, headers={**JSON, "content-encoding": encoding})
    assert_error(response, "bad_json")
    assert api.get(f"/v1/basins/{BASIN}").status == 404


def test_truncated_compressed_body_is_bad_json(api: AsgiClient) -> None:
    payload = b'{"basin":"test-basin"}'
    # Cut before the gzip trailer: the JSON itself is complete, the stream is not.
    truncated = gzip.compress(payload)[:-8]
    response = api.post("/v1/basins", body=truncated, headers={**JSON, "content-encoding": "gzip"})
    assert_error(response, "bad_json")
    frame = zstandard.ZstdCompressor(write_checksum=True).compress(payload)
    response = api.post("/v1/basins", body=frame[:-4], headers={**JSON, "content-encoding": "zstd"})
    assert_error(response, "bad_json")
    assert api.get(f"/v1/basins/{BASIN}").status == 404


@pytest.mark.parametrize(
    "body",
    [
        '{"basin":"test-basin"}'.encode("utf-16"),
        '{"basin":"test-basin"}'.encode("utf-16-le"),
        '{"basin":"test-basin"}'.encode("utf-32"),
        b'\xef\xbb\xbf{"basin":"test-basin"}',
        b'{"basin":"test-basin","x":"\xff"}',
    ],
)
def test_json_bodies_must_be_utf8(api: AsgiClient, body: bytes) -> None:
    assert_error(api.post("/v1/basins", body=body, headers=JSON), "bad_json")
    assert api.get(f"/v1/basins/{BASIN}").status == 404


def test_body_of_exactly_2_mib_is_accepted(api: AsgiClient) -> None:
    response = api.post("/v1/basins", body=padded_create_body(TWO_MIB), headers=JSON)
    assert response.status == 201, response.body[:200]


def test_body_over_2_mib_is_bad_json(api: AsgiClient) -> None:
    body = padded_create_body(TWO_MIB + 1)
    assert_error(api.post("/v1/basins", body=body, headers=JSON), "bad_json")
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    assert_error(api.post("/v1/basins", chunks=chunks, headers=JSON), "bad_json")
    assert api.get(f"/v1/basins/{BASIN}").status == 404
    create_basin(api)
    big = b'{"create_stream_on_read": true, "pad": "' + b"z" * TWO_MIB + b'"}'
    assert_error(api.patch(f"/v1/basins/{BASIN}", body=big, headers=JSON), "bad_json")
    assert_error(api.put(f"/v1/basins/{BASIN}", body=big, headers=JSON), "bad_json")
    assert api.get(f"/v1/basins/{BASIN}").json()["create_stream_on_read"] is False


def test_ignored_ensure_body_may_be_large(api: AsgiClient) -> None:
    # Without a Content-Type the body is not read at all.
    response = api.put(f"/v1/basins/{BASIN}", body=b"x" * (TWO_MIB + 10))
    assert response.status == 201


def test_limit_applies_after_decompression(api: AsgiClient) -> None:
    exact = gzip.compress(padded_create_body(TWO_MIB))
    over = gzip.compress(padded_create_body(TWO_MIB + 1))
    assert len(over) < 100_000
    headers = {**JSON, "content-encoding": "gzip"}
    assert_error(api.post("/v1/basins", body=over, headers=headers), "bad_json")
    zstd_over = zstandard.ZstdCompressor().compress(padded_create_body(TWO_MIB + 1))
    assert_error(
        api.post("/v1/basins", body=zstd_over, headers={**JSON, "content-encoding": "zstd"}),
        "bad_json",
    )
    assert api.get(f"/v1/basins/{BASIN}").status == 404
    assert api.post("/v1/basins", body=exact, headers=headers).status == 201


# Response compression (spec §1.7) -----------------------------------------------------------


def _many_basins(api: AsgiClient, count: int = 12) -> bytes:
    for i in range(count):
        create_basin(api, f"compressible-basin-{i:02d}-" + "x" * 20)
    plain = api.get("/v1/basins")
    assert plain.header("content-encoding") is None
    assert len(plain.body) >= 1024
    return plain.body


def _assert_length_consistent(response: Response) -> None:
    length = response.header("content-length")
    if length is not None:
        assert int(length) == len(response.body)


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        ("gzip", "gzip"),
        ("zstd", "zstd"),
        ("gzip, deflate, br", "gzip"),
        ("br, zstd", "zstd"),
        ("zstd;q=0.5, gzip;q=0.9", "gzip"),
        ("gzip;q=0.1, zstd", "zstd"),
        ("gzip;q=0", None),
        ("br", None),
        ("deflate", None),
        ("identity", None),
        ("", None),
    ],
)
def test_large_responses_are_compressed_as_accepted(
    api: AsgiClient, accept: str, expected: str | None
) -> None:
    plain = _many_basins(api)
    response = api.get("/v1/basins", headers={"accept-encoding": accept})
    assert response.status == 200
    assert response.header("content-type") == "application/json"
    assert response.header("content-encoding") == expected
    _assert_length_consistent(response)
    if expected == "gzip":
        assert gzip.decompress(response.body) == plain
    elif expected == "zstd":
        reader = zstandard.ZstdDecompressor().stream_reader(response.body)
        assert reader.read() == plain
    else:
        assert response.body == plain


def test_small_responses_are_not_compressed(api: AsgiClient) -> None:
    create_basin(api)
    headers = {"accept-encoding": "gzip, zstd"}
    for response in [
        api.get(f"/v1/basins/{BASIN}", headers=headers),
        api.get("/v1/basins", headers=headers),
        api.get("/v1/basins/missing-basin", headers=headers),
        api.post("/v1/basins", json_body={"basin": "other-basin"}, headers=headers),
        api.get("/v1/metrics", headers=headers),
    ]:
        assert response.header("content-encoding") is None, response.headers
        _assert_length_consistent(response)
        assert response.body.startswith(b"{")


def test_compression_threshold_is_1024_bytes(api: AsgiClient) -> None:
    """Bodies of 1023 bytes are sent as they are, bodies of 1024 bytes compressed."""
    import datetime as dt

    from basins.models import Basin

    moment = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)

    def listing_with(last_name_length: int) -> bytes:
        Basin.objects.filter(name__startswith="zz").delete()
        Basin.objects.create(name="zz" + "0" * (last_name_length - 2), created_at=moment)
        return api.get("/v1/basins").body

    Basin.objects.bulk_create(
        [Basin(name=f"filler-{i}-" + "f" * 36, created_at=moment) for i in range(6)]
    )
    base = len(listing_with(8))
    assert base < 1023
    wanted = 1023 - base + 8
    assert 8 <= wanted <= 47, wanted
    for length, compressed in [(wanted, False), (wanted + 1, True)]:
        body = listing_with(length)
        assert len(body) == 1023 + int(compressed)
        response = api.get("/v1/basins", headers={"accept-encoding": "gzip"})
        assert (response.header("content-encoding") == "gzip") is compressed
        if compressed:
            assert gzip.decompress(response.body) == body
        else:
            assert response.body == body
