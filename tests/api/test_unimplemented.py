"""The 501 routes (spec §1.2): arguments are extracted first, then 501 ``not_implemented``."""

from __future__ import annotations

import pytest

from tests.api.support import assert_error
from tests.asgi_client import AsgiClient, Response

NOT_IMPLEMENTED = b'{"code":"not_implemented","message":"Not implemented"}'
JSON = {"content-type": "application/json"}


def assert_501(response: Response) -> None:
    assert response.status == 501, (response.status, response.body)
    assert response.header("content-type") == "application/json"
    assert response.body == NOT_IMPLEMENTED


# Access tokens -------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["", "limit=10", "limit=0", "prefix=abc&start_after=a", "x=1"])
def test_list_access_tokens(api: AsgiClient, query: str) -> None:
    assert_501(api.get("/v1/access-tokens", query=query))


@pytest.mark.parametrize("query", ["limit=abc", "limit=-1", "limit=1.5"])
def test_list_access_tokens_with_bad_query(api: AsgiClient, query: str) -> None:
    assert_error(api.get("/v1/access-tokens", query=query), "bad_query")


def test_issue_access_token(api: AsgiClient) -> None:
    body = {"id": "my-token", "scope": {"basins": {"prefix": ""}, "ops": ["list-basins"]}}
    assert_501(api.post("/v1/access-tokens", json_body=body))
    assert_501(api.post("/v1/access-tokens", json_body={"id": "t", "scope": {}}))


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b'{"id": "t", "scope": {}}', {}),
        (b'{"id": "t", "scope": {}}', {"content-type": "text/plain"}),
        (b"", JSON),
        (b"{", JSON),
        (b"[]", JSON),
        (b"{}", JSON),
        (b'{"scope": {}}', JSON),
        (b'{"id": "t"}', JSON),
        (b'{"id": 5, "scope": {}}', JSON),
    ],
)
def test_issue_access_token_parses_the_body_first(
    api: AsgiClient, body: bytes, headers: dict[str, str]
) -> None:
    assert_error(api.post("/v1/access-tokens", body=body, headers=headers), "bad_json")


@pytest.mark.parametrize("token_id", ["t", "a" * 96, "with%2Fslash", "%C3%A9"])
def test_revoke_access_token(api: AsgiClient, token_id: str) -> None:
    assert_501(api.delete(f"/v1/access-tokens/{token_id}"))


@pytest.mark.parametrize("token_id", ["a" * 97, "%FF", "%C3%A9" * 49])
def test_revoke_access_token_validates_the_id(api: AsgiClient, token_id: str) -> None:
    assert_error(api.delete(f"/v1/access-tokens/{token_id}"), "bad_path")


# Locations -----------------------------------------------------------------------------------


def test_locations(api: AsgiClient) -> None:
    assert_501(api.get("/v1/locations"))
    assert_501(api.get("/v1/locations/default"))
    assert_501(api.put("/v1/locations/default", json_body="aws:us-east-1"))
    assert_501(api.put("/v1/locations/default", json_body="x" * 64))


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b'"aws:us-east-1"', {}),
        (b'"aws:us-east-1"', {"content-type": "text/plain"}),
        (b"", JSON),
        (b'"bad location"', JSON),
        (b'""', JSON),
        (b'"' + b"x" * 65 + b'"', JSON),
        (b"5", JSON),
        (b'{"name": "aws:us-east-1"}', JSON),
        (b"null", JSON),
    ],
)
def test_set_default_location_parses_the_body_first(
    api: AsgiClient, body: bytes, headers: dict[str, str]
) -> None:
    assert_error(api.put("/v1/locations/default", body=body, headers=headers), "bad_json")


# Metrics -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "set=active-basins",
        "set=account-ops",
        "set=account-ops&start=0&end=4294967295&interval=minute",
        "set=active-basins&interval=hour",
        "set=active-basins&interval=day&unknown=1",
    ],
)
def test_account_metrics(api: AsgiClient, query: str) -> None:
    assert_501(api.get("/v1/metrics", query=query))


@pytest.mark.parametrize(
    "query",
    [
        "",
        "start=1",
        "set=",
        "set=storage",
        "set=Active-Basins",
        "set=active-basins&start=-1",
        "set=active-basins&start=4294967296",
        "set=active-basins&end=abc",
        "set=active-basins&interval=week",
        "set=active-basins&interval=",
    ],
)
def test_account_metrics_with_bad_query(api: AsgiClient, query: str) -> None:
    assert_error(api.get("/v1/metrics", query=query), "bad_query")


@pytest.mark.parametrize(
    "metric_set",
    ["storage", "append-ops", "read-ops", "read-throughput", "append-throughput", "basin-ops"],
)
def test_basin_metrics(api: AsgiClient, metric_set: str) -> None:
    # No existence check: the basin need not exist.
    assert_501(api.get("/v1/metrics/missing-basin", query=f"set={metric_set}"))


def test_basin_metrics_arguments(api: AsgiClient) -> None:
    assert_error(api.get("/v1/metrics/some-basin"), "bad_query")
    assert_error(api.get("/v1/metrics/some-basin", query="set=active-basins"), "bad_query")
    assert_error(api.get("/v1/metrics/some-basin", query="set=storage&end=-5"), "bad_query")
    # The path is extracted before the query.
    assert_error(api.get("/v1/metrics/BAD"), "bad_path")
    assert_error(api.get("/v1/metrics/short", query="set=storage"), "bad_path")


def test_stream_metrics(api: AsgiClient) -> None:
    assert_501(api.get("/v1/metrics/some-basin/some-stream", query="set=storage"))
    assert_501(api.get("/v1/metrics/some-basin/a%2Fb", query="set=storage&interval=day"))
    assert_error(api.get("/v1/metrics/some-basin/s", query="set=append-ops"), "bad_query")
    assert_error(api.get("/v1/metrics/some-basin/s"), "bad_query")
    assert_error(api.get("/v1/metrics/some-basin/%2E", query="set=storage"), "bad_path")
    assert_error(api.get("/v1/metrics/some-basin/%FF"), "bad_path")
    assert_error(api.get("/v1/metrics/BAD-/s"), "bad_path")
