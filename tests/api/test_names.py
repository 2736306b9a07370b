"""Naming rules (spec §2.1) wherever a name enters: path, S2-Basin header, JSON body, query."""

from __future__ import annotations

import pytest

from tests.api.support import (
    BASIN,
    assert_error,
    assert_error_mentions,
    create_basin,
    create_stream,
    stream_path,
)
from tests.asgi_client import AsgiClient

TOO_LONG = "basin name must not exceed 48 bytes in length"
TOO_SHORT = "basin name should be at least 8 bytes in length"
BAD_FIRST = "basin name must begin with a lowercase letter or number"
BAD_LAST = "basin name must end with a lowercase letter or number"
BAD_MIDDLE = "basin name must comprise lowercase letters, numbers, and hyphens"

# (name, message); the order of the checks is length, first, last, then the rest.
BAD_BASIN_NAMES = [
    ("a" * 49, TOO_LONG),
    ("A" * 49, TOO_LONG),
    ("abcdefg", TOO_SHORT),
    ("-bc", TOO_SHORT),
    ("abcdéf", TOO_SHORT),  # 7 bytes
    ("-abcdefgh", BAD_FIRST),
    ("Abcdefgh", BAD_FIRST),
    ("_abcdefg", BAD_FIRST),
    ("-abcdefg-", BAD_FIRST),
    ("éééé", BAD_FIRST),  # 8 bytes, 4 characters
    ("abcdefg-", BAD_LAST),
    ("abcdefgH", BAD_LAST),
    ("a_cdefg-", BAD_LAST),
    ("abc_defg", BAD_MIDDLE),
    ("abcDefgh", BAD_MIDDLE),
    ("abc.defg", BAD_MIDDLE),
    ("abc defg", BAD_MIDDLE),
    ("abcdéfg", BAD_MIDDLE),  # 8 bytes, 7 characters: length counts bytes
]

GOOD_BASIN_NAMES = ["abcdefgh", "12345678", "a-------b", "0" * 48, "a-b-c-d-e", "9abcdef0"]


def _quoted(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


# Basin names in the path: 400 bad_path.


@pytest.mark.parametrize(("name", "message"), BAD_BASIN_NAMES)
def test_basin_name_in_path_is_validated(api: AsgiClient, name: str, message: str) -> None:
    path = "/v1/basins/" + _quoted(name)
    for method in ("GET", "PUT", "DELETE"):
        assert_error_mentions(api.request(method, path), "bad_path", message)
    assert_error_mentions(api.patch(path, json_body={}), "bad_path", message)


@pytest.mark.parametrize("name", GOOD_BASIN_NAMES)
def test_valid_basin_names_in_path(api: AsgiClient, name: str) -> None:
    assert_error(api.get(f"/v1/basins/{name}"), "basin_not_found", f"basin `{name}` not found")
    created = api.put(f"/v1/basins/{name}")
    assert created.status == 201
    assert created.json()["name"] == name
    assert api.get(f"/v1/basins/{name}").status == 200


def test_basin_name_of_exactly_48_and_8_bytes(api: AsgiClient) -> None:
    for name in ("a" * 48, "a" * 8):
        assert api.put(f"/v1/basins/{name}").status == 201


# Basin names in the S2-Basin header: 400 bad_header with fixed messages (spec §1.3).


def test_missing_basin_header(api: AsgiClient) -> None:
    for method, path in [
        ("GET", "/v1/streams"),
        ("GET", "/v1/streams/s"),
        ("PUT", "/v1/streams/s"),
        ("DELETE", "/v1/streams/s"),
    ]:
        assert_error(api.request(method, path), "bad_header", "Missing header `s2-basin`")
    assert_error(
        api.post("/v1/streams", json_body={"stream": "s"}),
        "bad_header",
        "Missing header `s2-basin`",
    )
    assert_error(
        api.patch("/v1/streams/s", json_body={}), "bad_header", "Missing header `s2-basin`"
    )


@pytest.mark.parametrize(("name", "message"), BAD_BASIN_NAMES)
def test_invalid_basin_header(api: AsgiClient, name: str, message: str) -> None:
    # The test client sends header values as latin-1: encode the UTF-8 bytes that way.
    raw = name.encode().decode("latin-1")
    expected = (
        "Invalid header `s2-basin`: not UTF-8"
        if not name.isascii()
        else f"Invalid header `s2-basin`: {message}"
    )
    assert_error(api.get("/v1/streams", basin=raw), "bad_header", expected)
    assert_error(api.get("/v1/streams/s", basin=raw), "bad_header", expected)


def test_non_utf8_basin_header(api: AsgiClient) -> None:
    for raw in ("\xff\xfe-basin", "basin-\x80x"):
        assert_error(
            api.get("/v1/streams", basin=raw),
            "bad_header",
            "Invalid header `s2-basin`: not UTF-8",
        )


# Basin names inside JSON bodies: 400 bad_json.


@pytest.mark.parametrize(("name", "message"), BAD_BASIN_NAMES)
def test_basin_name_in_create_body(api: AsgiClient, name: str, message: str) -> None:
    assert_error_mentions(api.post("/v1/basins", json_body={"basin": name}), "bad_json", message)
    assert api.get("/v1/basins").json()["basins"] == []


def test_basin_field_missing_or_mistyped(api: AsgiClient) -> None:
    for body in [{}, {"basin": None}, {"basin": 12345678}, {"basin": ["abcdefgh"]}]:
        assert_error(api.post("/v1/basins", json_body=body), "bad_json")
    assert_error_mentions(api.post("/v1/basins", json_body={}), "bad_json", "basin")


@pytest.mark.parametrize(
    "location", ["", "a" * 65, "bad location", "aws/us-east-1", "é", 7, True, [], {}]
)
def test_invalid_location_is_bad_json(api: AsgiClient, location: object) -> None:
    body = {"basin": BASIN, "location": location}
    assert_error(api.post("/v1/basins", json_body=body), "bad_json")
    assert_error(
        api.put(f"/v1/basins/{BASIN}", json_body={"location": location}),
        "bad_json",
    )
    assert api.get(f"/v1/basins/{BASIN}").status == 404


@pytest.mark.parametrize("location", ["aws:us-east-1", "a", "A.b-c:9", "x" * 64, None])
def test_valid_location_is_accepted_and_ignored(api: AsgiClient, location: object) -> None:
    created = api.post("/v1/basins", json_body={"basin": BASIN, "location": location})
    assert created.status == 201
    assert created.json()["location"] is None
    ensured = api.put("/v1/basins/other-basin", json_body={"location": location})
    assert ensured.status == 201
    assert ensured.json()["location"] is None


# Stream names.


def test_stream_name_in_body(api: AsgiClient) -> None:
    create_basin(api)
    cases = [
        ("", "stream name must not be empty"),
        (".", 'stream name must not be "." or ".."'),
        ("..", 'stream name must not be "." or ".."'),
        ("s" * 513, "stream name must not exceed 512 bytes in length"),
        ("é" * 256 + "x", "stream name must not exceed 512 bytes in length"),
    ]
    for name, message in cases:
        response = api.post("/v1/streams", json_body={"stream": name}, basin=BASIN)
        assert_error_mentions(response, "bad_json", message)
    for body in [{}, {"stream": None}, {"stream": 5}]:
        assert_error(api.post("/v1/streams", json_body=body, basin=BASIN), "bad_json")
    assert api.get("/v1/streams", basin=BASIN).json()["streams"] == []


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("%2E", 'stream name must not be "." or ".."'),
        ("%2e%2e", 'stream name must not be "." or ".."'),
        ("s" * 513, "stream name must not exceed 512 bytes in length"),
        ("%C3%A9" * 256 + "x", "stream name must not exceed 512 bytes in length"),
    ],
)
def test_stream_name_in_path(api: AsgiClient, raw: str, message: str) -> None:
    create_basin(api)
    path = "/v1/streams/" + raw
    for method in ("GET", "PUT", "DELETE"):
        assert_error_mentions(api.request(method, path, basin=BASIN), "bad_path", message)
    assert_error_mentions(api.patch(path, json_body={}, basin=BASIN), "bad_path", message)


@pytest.mark.parametrize("raw", ["%FF", "%C3", "a%C3%28b", "%ED%A0%80", "%C0%AF"])
def test_stream_name_with_invalid_percent_encoded_utf8(api: AsgiClient, raw: str) -> None:
    create_basin(api)
    path = "/v1/streams/" + raw
    for method in ("GET", "PUT", "DELETE"):
        assert_error(api.request(method, path, basin=BASIN), "bad_path")
    assert_error(api.patch(path, json_body={}, basin=BASIN), "bad_path")


def test_invalid_percent_encoded_basin_in_path(api: AsgiClient) -> None:
    assert_error(api.get("/v1/basins/abcdefg%FF"), "bad_path")


@pytest.mark.parametrize(
    "name",
    [
        "a/b",
        "/leading",
        "trailing/",
        "a//b",
        "x" * 512,
        "é" * 256,
        "名前/ストリーム",
        "emoji 😀",
        "100% sure?",
        "a%2Fb",
        "hash#tag",
        "plus+sign",
        "semi;colon",
        "...",
        ".hidden",
        " ",
        "tab\there",
    ],
)
def test_stream_names_round_trip_through_the_path(api: AsgiClient, name: str) -> None:
    create_basin(api)
    info = create_stream(api, name)
    assert info["name"] == name
    path = stream_path(name)
    assert api.get(path, basin=BASIN).status == 200
    assert api.patch(path, json_body={}, basin=BASIN).status == 200
    ensured = api.put(path, basin=BASIN)
    assert ensured.status == 200
    assert ensured.header("s2-provision-result") == "noop"
    assert ensured.json()["name"] == name
    listed = api.get("/v1/streams", basin=BASIN).json()["streams"]
    assert [s["name"] for s in listed] == [name]
    assert api.delete(path, basin=BASIN).status == 202


def test_slash_in_stream_name_needs_percent_encoding(api: AsgiClient) -> None:
    create_basin(api)
    create_stream(api, "a/b")
    encoded = api.get("/v1/streams/a%2Fb", basin=BASIN)
    assert encoded.status == 200
    lower = api.get("/v1/streams/a%2fb", basin=BASIN)
    assert lower.status == 200
    raw = api.get("/v1/streams/a/b", basin=BASIN)
    assert raw.status == 404
    assert raw.body == b""


def test_unicode_stream_name_sent_percent_encoded(api: AsgiClient) -> None:
    create_basin(api)
    create_stream(api, "über")
    assert api.get("/v1/streams/%C3%BCber", basin=BASIN).status == 200
    # A different normalisation of the same text is a different name.
    assert_error(
        api.get("/v1/streams/u%CC%88ber", basin=BASIN),
        "stream_not_found",
        "stream `u\u0308ber` in basin `test-basin` not found",
    )


def test_plus_in_path_is_not_a_space(api: AsgiClient) -> None:
    create_basin(api)
    create_stream(api, "a+b")
    assert api.get("/v1/streams/a+b", basin=BASIN).status == 200
    assert_error(api.get("/v1/streams/a%20b", basin=BASIN), "stream_not_found")


def test_stream_name_of_exactly_512_bytes_in_path(api: AsgiClient) -> None:
    create_basin(api)
    response = api.put("/v1/streams/" + "%C3%A9" * 256, basin=BASIN)
    assert response.status == 201
    assert response.json()["name"] == "é" * 256


# List cursors (query): 400 bad_query.


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("prefix=" + "a" * 49, "basin prefix must not exceed 48 bytes in length"),
        ("prefix=-a", "basin prefix must begin with a lowercase letter or number"),
        ("prefix=A", "basin prefix must begin with a lowercase letter or number"),
        ("prefix=a_b", "basin prefix must comprise lowercase letters, numbers, and hyphens"),
        ("prefix=aB", "basin prefix must comprise lowercase letters, numbers, and hyphens"),
        ("prefix=a+b", "basin prefix must comprise lowercase letters, numbers, and hyphens"),
        ("start_after=" + "a" * 49, "basin start-after must not exceed 48 bytes in length"),
        ("start_after=-a", "basin start-after must begin with a lowercase letter or number"),
        (
            "start_after=ab%C3%A9",
            "basin start-after must comprise lowercase letters, numbers, and hyphens",
        ),
    ],
)
def test_invalid_basin_list_cursors(api: AsgiClient, query: str, message: str) -> None:
    assert_error_mentions(api.get("/v1/basins", query=query), "bad_query", message)


@pytest.mark.parametrize(
    "query",
    [
        "prefix=",
        "prefix=a",
        "prefix=ab-",
        "prefix=" + "a" * 48,
        "start_after=",
        "start_after=a",
        "start_after=z-",
        "start_after=0",
        "prefix=a&start_after=b-",
    ],
)
def test_valid_basin_list_cursors(api: AsgiClient, query: str) -> None:
    response = api.get("/v1/basins", query=query)
    assert response.status == 200
    assert response.json() == {"basins": [], "has_more": False}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("prefix=" + "s" * 513, "stream prefix must not exceed 512 bytes in length"),
        ("start_after=" + "s" * 513, "stream start-after must not exceed 512 bytes in length"),
        ("prefix=" + "%C3%A9" * 257, "stream prefix must not exceed 512 bytes in length"),
    ],
)
def test_invalid_stream_list_cursors(api: AsgiClient, query: str, message: str) -> None:
    create_basin(api)
    assert_error_mentions(api.get("/v1/streams", query=query, basin=BASIN), "bad_query", message)


@pytest.mark.parametrize(
    "query",
    [
        "prefix=",
        "prefix=.",
        "prefix=..",
        "start_after=.",
        "start_after=..",
        "prefix=" + "s" * 512,
        "start_after=" + "s" * 512,
        "prefix=%2F",
        "prefix=A_B",
    ],
)
def test_valid_stream_list_cursors(api: AsgiClient, query: str) -> None:
    create_basin(api)
    response = api.get("/v1/streams", query=query, basin=BASIN)
    assert response.status == 200
    assert response.json() == {"streams": [], "has_more": False}


# Request tokens.


def test_request_token_longer_than_36_bytes(api: AsgiClient) -> None:
    token = "t" * 37
    response = api.post(
        "/v1/basins", json_body={"basin": BASIN}, headers={"s2-request-token": token}
    )
    assert_error(
        response,
        "bad_header",
        "Invalid header `s2-request-token`: request token was longer than 36 bytes in length: 37",
    )
    assert api.get(f"/v1/basins/{BASIN}").status == 404
    create_basin(api)
    response = api.post(
        "/v1/streams",
        json_body={"stream": "s"},
        basin=BASIN,
        headers={"s2-request-token": "x" * 100},
    )
    assert_error(
        response,
        "bad_header",
        "Invalid header `s2-request-token`: request token was longer than 36 bytes in length: 100",
    )
    assert_error(api.get("/v1/streams/s", basin=BASIN), "stream_not_found")


def test_request_token_of_36_bytes_and_empty_token(api: AsgiClient) -> None:
    create_basin(api, headers={"s2-request-token": "t" * 36})
    create_basin(api, "other-basin", headers={"s2-request-token": ""})


def test_non_ascii_request_token_is_rejected(api: AsgiClient) -> None:
    for raw in ("tök".encode().decode("latin-1"), "\xff"):
        response = api.post(
            "/v1/basins", json_body={"basin": BASIN}, headers={"s2-request-token": raw}
        )
        assert_error(response, "bad_header", "Invalid header `s2-request-token`: not UTF-8")
    assert api.get(f"/v1/basins/{BASIN}").status == 404
