"""Basins: create, ensure, get, reconfigure and list (spec §2.2–§2.7, §2.9)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.api.support import (
    BASIN,
    BASIN_CONFIG_KEYS,
    DEFAULT_BASIN_CONFIG,
    assert_basin_info,
    assert_error,
    basin_config,
    create_basin,
    parse_time,
)
from tests.asgi_client import AsgiClient

JSON = {"content-type": "application/json"}


def token(value: str) -> dict[str, str]:
    return {"s2-request-token": value}


def sparse(**fields: Any) -> dict[str, Any]:
    """A basin's default stream config as rendered: all four keys, unset ones null."""
    rendered: dict[str, Any] = {
        "storage_class": None,
        "retention_policy": None,
        "timestamping": None,
        "delete_on_empty": None,
    }
    rendered.update(fields)
    return rendered


# Create (POST) -----------------------------------------------------------------------------


def test_create_basin(api: AsgiClient) -> None:
    before = dt.datetime.now(dt.UTC)
    response = api.post("/v1/basins", json_body={"basin": BASIN})
    after = dt.datetime.now(dt.UTC)
    assert response.status == 201
    assert response.header("s2-provision-result") == "created"
    assert response.header("content-type") == "application/json"
    info = response.json()
    assert_basin_info(info, BASIN)
    created_at = parse_time(info["created_at"])
    assert before - dt.timedelta(seconds=1) <= created_at <= after + dt.timedelta(seconds=1)
    assert basin_config(api) == DEFAULT_BASIN_CONFIG


def test_create_existing_basin_without_token_conflicts(api: AsgiClient) -> None:
    create_basin(api)
    response = api.post("/v1/basins", json_body={"basin": BASIN})
    assert_error(response, "resource_already_exists", "basin `test-basin` already exists")
    response = api.post("/v1/basins", json_body={"basin": BASIN}, headers=token("t1"))
    assert_error(response, "resource_already_exists", "basin `test-basin` already exists")


def test_create_replay_with_same_token_and_config_is_noop(api: AsgiClient) -> None:
    config = {"create_stream_on_append": True, "stream_cipher": "aegis-256"}
    body = {"basin": BASIN, "config": config}
    first = api.post("/v1/basins", json_body=body, headers=token("tok-1"))
    assert first.status == 201
    assert first.header("s2-provision-result") == "created"
    replay = api.post("/v1/basins", json_body=body, headers=token("tok-1"))
    assert replay.status == 201
    assert replay.header("s2-provision-result") == "noop"
    assert replay.json() == first.json()
    assert_basin_info(replay.json(), BASIN)


def test_create_replay_with_other_token_or_config_conflicts(api: AsgiClient) -> None:
    body = {"basin": BASIN, "config": {"create_stream_on_read": True}}
    create_basin(api, config=body["config"], headers=token("tok-1"))
    other_token = api.post("/v1/basins", json_body=body, headers=token("tok-2"))
    assert_error(other_token, "resource_already_exists", "basin `test-basin` already exists")
    other_config = api.post(
        "/v1/basins",
        json_body={"basin": BASIN, "config": {"create_stream_on_read": False}},
        headers=token("tok-1"),
    )
    assert_error(other_config, "resource_already_exists")
    no_config = api.post("/v1/basins", json_body={"basin": BASIN}, headers=token("tok-1"))
    assert_error(no_config, "resource_already_exists")
    no_token = api.post("/v1/basins", json_body=body)
    assert_error(no_token, "resource_already_exists")
    # The original is untouched by the failed attempts.
    assert basin_config(api)["create_stream_on_read"] is True


def test_created_without_token_cannot_be_replayed_with_one(api: AsgiClient) -> None:
    create_basin(api)
    response = api.post("/v1/basins", json_body={"basin": BASIN}, headers=token(""))
    assert_error(response, "resource_already_exists")


def test_empty_token_is_a_token(api: AsgiClient) -> None:
    first = create_basin(api, headers=token(""))
    replay = api.post("/v1/basins", json_body={"basin": BASIN}, headers=token(""))
    assert replay.status == 201
    assert replay.header("s2-provision-result") == "noop"
    assert replay.json()["created_at"] == first["created_at"]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({}, {"config": None}),
        ({}, {"config": {}}),
        ({"config": None}, {}),
        ({"config": {}}, {"config": None}),
        ({}, {"config": {"create_stream_on_append": False, "default_stream_config": None}}),
        ({"config": {"default_stream_config": {}}}, {}),
        ({"config": {"stream_cipher": None}}, {"config": {"create_stream_on_read": False}}),
    ],
)
def test_absent_null_and_empty_config_are_the_same_request(
    api: AsgiClient, first: dict[str, Any], second: dict[str, Any]
) -> None:
    created = api.post("/v1/basins", json_body={"basin": BASIN, **first}, headers=token("tk"))
    assert created.status == 201
    replay = api.post("/v1/basins", json_body={"basin": BASIN, **second}, headers=token("tk"))
    assert replay.status == 201
    assert replay.header("s2-provision-result") == "noop"
    assert replay.json()["created_at"] == created.json()["created_at"]


def test_replay_still_works_after_reconfigure_and_ensure(api: AsgiClient) -> None:
    body = {"basin": BASIN, "config": {"create_stream_on_append": True}}
    first = api.post("/v1/basins", json_body=body, headers=token("tok"))
    patched = api.patch(f"/v1/basins/{BASIN}", json_body={"create_stream_on_read": True})
    assert patched.status == 200
    replay = api.post("/v1/basins", json_body=body, headers=token("tok"))
    assert replay.status == 201
    assert replay.header("s2-provision-result") == "noop"
    assert replay.json()["created_at"] == first.json()["created_at"]
    # The replay changes nothing: the reconfiguration stays.
    assert basin_config(api)["create_stream_on_read"] is True

    ensured = api.put(f"/v1/basins/{BASIN}", json_body={"config": {"stream_cipher": "aegis-256"}})
    assert ensured.header("s2-provision-result") == "updated"
    replay = api.post("/v1/basins", json_body=body, headers=token("tok"))
    assert replay.status == 201
    assert replay.header("s2-provision-result") == "noop"
    assert basin_config(api)["stream_cipher"] == "aegis-256"
    assert basin_config(api)["create_stream_on_append"] is False


def test_create_with_full_config(api: AsgiClient) -> None:
    config = {
        "default_stream_config": {
            "storage_class": "standard",
            "retention_policy": {"infinite": {}},
            "timestamping": {"mode": "client-require", "uncapped": True},
            "delete_on_empty": {"min_age_secs": 3600},
        },
        "stream_cipher": "aes-256-gcm",
        "create_stream_on_append": True,
        "create_stream_on_read": True,
    }
    create_basin(api, config=config)
    assert basin_config(api) == config


def test_create_ignores_unknown_fields(api: AsgiClient) -> None:
    body = {
        "basin": BASIN,
        "scope": "aws:us-east-1",
        "extra": [1, 2],
        "config": {"unknown": True, "default_stream_config": {"whatever": 1}},
    }
    response = api.post("/v1/basins", json_body=body)
    assert response.status == 201
    assert basin_config(api) == DEFAULT_BASIN_CONFIG


@pytest.mark.parametrize(
    "config",
    [
        {"default_stream_config": {"retention_policy": {"age": 0}}},
        {
            "stream_cipher": "aegis-256",
            "default_stream_config": {"storage_class": "standard", "retention_policy": {"age": 0}},
        },
    ],
)
def test_create_with_zero_retention_age_is_invalid(api: AsgiClient, config: Any) -> None:
    response = api.post("/v1/basins", json_body={"basin": BASIN, "config": config})
    assert_error(response, "invalid", "age must be greater than 0 seconds")
    assert api.get(f"/v1/basins/{BASIN}").status == 404


def test_semantic_validation_comes_before_existence(api: AsgiClient) -> None:
    create_basin(api)
    config = {"default_stream_config": {"retention_policy": {"age": 0}}}
    response = api.post("/v1/basins", json_body={"basin": BASIN, "config": config})
    assert_error(response, "invalid")


BAD_BASIN_CONFIGS = [
    [],
    "standard",
    7,
    {"stream_cipher": "rot13"},
    {"stream_cipher": 1},
    {"create_stream_on_append": None},
    {"create_stream_on_append": "true"},
    {"create_stream_on_append": 1},
    {"create_stream_on_read": None},
    {"default_stream_config": []},
    {"default_stream_config": "express"},
    {"default_stream_config": {"storage_class": "slow"}},
    {"default_stream_config": {"storage_class": "Express"}},
    {"default_stream_config": {"retention_policy": "infinite"}},
    {"default_stream_config": {"retention_policy": {"infinite": None}}},
    {"default_stream_config": {"retention_policy": {"infinite": True}}},
    {"default_stream_config": {"retention_policy": {"age": -1}}},
    {"default_stream_config": {"retention_policy": {"age": 1.5}}},
    {"default_stream_config": {"retention_policy": {"age": "60"}}},
    {"default_stream_config": {"retention_policy": {"age": 2**64}}},
    {"default_stream_config": {"retention_policy": {"age": 1, "infinite": {}}}},
    {"default_stream_config": {"retention_policy": {"forever": {}}}},
    {"default_stream_config": {"retention_policy": {}}},
    {"default_stream_config": {"timestamping": {"mode": "server"}}},
    {"default_stream_config": {"timestamping": {"uncapped": "no"}}},
    {"default_stream_config": {"timestamping": "arrival"}},
    {"default_stream_config": {"delete_on_empty": {"min_age_secs": -5}}},
    {"default_stream_config": {"delete_on_empty": {"min_age_secs": "5"}}},
    {"default_stream_config": {"delete_on_empty": 5}},
]


@pytest.mark.parametrize("config", BAD_BASIN_CONFIGS)
def test_malformed_basin_config_is_bad_json(api: AsgiClient, config: Any) -> None:
    response = api.post("/v1/basins", json_body={"basin": BASIN, "config": config})
    assert_error(response, "bad_json")
    assert_error(api.put(f"/v1/basins/{BASIN}", json_body={"config": config}), "bad_json")
    assert api.get(f"/v1/basins/{BASIN}").status == 404


@pytest.mark.parametrize(
    "body",
    [b"", b"{", b"not json", b"[]", b"null", b'"abcdefgh"', b"{'basin': 'abcdefgh'}", b"\xff"],
)
def test_create_with_unparsable_body(api: AsgiClient, body: bytes) -> None:
    assert_error(api.post("/v1/basins", body=body, headers=JSON), "bad_json")


# Ensure (PUT) ------------------------------------------------------------------------------


def test_ensure_creates_then_noop_then_updates(api: AsgiClient) -> None:
    created = api.put(f"/v1/basins/{BASIN}")
    assert created.status == 201
    assert created.header("s2-provision-result") == "created"
    assert_basin_info(created.json(), BASIN)
    assert basin_config(api) == DEFAULT_BASIN_CONFIG

    noop = api.put(f"/v1/basins/{BASIN}")
    assert noop.status == 200
    assert noop.header("s2-provision-result") == "noop"
    assert noop.json() == created.json()

    config = {
        "create_stream_on_append": True,
        "default_stream_config": {"storage_class": "standard"},
    }
    updated = api.put(f"/v1/basins/{BASIN}", json_body={"config": config})
    assert updated.status == 200
    assert updated.header("s2-provision-result") == "updated"
    assert updated.json()["created_at"] == created.json()["created_at"]
    assert_basin_info(updated.json(), BASIN)
    assert basin_config(api)["create_stream_on_append"] is True
    assert basin_config(api)["default_stream_config"] == sparse(storage_class="standard")

    again = api.put(f"/v1/basins/{BASIN}", json_body={"config": config})
    assert again.status == 200
    assert again.header("s2-provision-result") == "noop"


def test_ensure_is_not_a_merge(api: AsgiClient) -> None:
    full = {
        "default_stream_config": {"storage_class": "standard", "retention_policy": {"age": 60}},
        "stream_cipher": "aegis-256",
        "create_stream_on_append": True,
        "create_stream_on_read": True,
    }
    create_basin(api, config=full)
    response = api.put(
        f"/v1/basins/{BASIN}",
        json_body={"config": {"default_stream_config": {"retention_policy": {"age": 60}}}},
    )
    assert response.status == 200
    assert response.header("s2-provision-result") == "updated"
    assert basin_config(api) == {
        "default_stream_config": sparse(retention_policy={"age": 60}),
        "stream_cipher": None,
        "create_stream_on_append": False,
        "create_stream_on_read": False,
    }
    # No body at all resets everything to the defaults.
    reset = api.put(f"/v1/basins/{BASIN}")
    assert reset.header("s2-provision-result") == "updated"
    assert basin_config(api) == DEFAULT_BASIN_CONFIG


def test_ensure_without_content_type_ignores_the_body(api: AsgiClient) -> None:
    body = b'{"config": {"create_stream_on_append": true}}'
    response = api.put(f"/v1/basins/{BASIN}", body=body)
    assert response.status == 201
    assert basin_config(api) == DEFAULT_BASIN_CONFIG
    # Even bytes that are not JSON are ignored.
    response = api.put(f"/v1/basins/{BASIN}", body=b"\x00garbage{")
    assert response.status == 200
    assert response.header("s2-provision-result") == "noop"


def test_ensure_with_json_content_type_and_empty_body(api: AsgiClient) -> None:
    create_basin(api, config={"create_stream_on_read": True})
    response = api.put(f"/v1/basins/{BASIN}", body=b"", headers=JSON)
    assert response.status == 200
    assert response.header("s2-provision-result") == "updated"
    assert basin_config(api) == DEFAULT_BASIN_CONFIG


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "json"]
)
def test_ensure_with_non_json_content_type(api: AsgiClient, content_type: str) -> None:
    response = api.put(f"/v1/basins/{BASIN}", body=b"{}", headers={"content-type": content_type})
    assert_error(response, "bad_json", "Expected request with `Content-Type: application/json`")
    response = api.put(f"/v1/basins/{BASIN}", body=b"", headers={"content-type": content_type})
    assert_error(response, "bad_json", "Expected request with `Content-Type: application/json`")
    assert api.get(f"/v1/basins/{BASIN}").status == 404


@pytest.mark.parametrize("body", [b"null", b"[]", b"1", b'"x"', b"{", b'{"config": 1}'])
def test_ensure_with_malformed_json_body(api: AsgiClient, body: bytes) -> None:
    assert_error(api.put(f"/v1/basins/{BASIN}", body=body, headers=JSON), "bad_json")
    assert api.get(f"/v1/basins/{BASIN}").status == 404


@pytest.mark.parametrize("body", [{}, {"config": None}, {"config": {}}, {"location": None}])
def test_ensure_with_empty_requests(api: AsgiClient, body: Any) -> None:
    create_basin(api, config={"stream_cipher": "aegis-256"})
    response = api.put(f"/v1/basins/{BASIN}", json_body=body)
    assert response.status == 200
    assert response.header("s2-provision-result") == "updated"
    assert basin_config(api) == DEFAULT_BASIN_CONFIG


def test_ensure_with_zero_retention_age(api: AsgiClient) -> None:
    config = {"default_stream_config": {"retention_policy": {"age": 0}}}
    response = api.put(f"/v1/basins/{BASIN}", json_body={"config": config})
    assert_error(response, "invalid", "age must be greater than 0 seconds")
    assert api.get(f"/v1/basins/{BASIN}").status == 404
    create_basin(api)
    response = api.put(f"/v1/basins/{BASIN}", json_body={"config": config})
    assert_error(response, "invalid", "age must be greater than 0 seconds")
    assert basin_config(api) == DEFAULT_BASIN_CONFIG


def test_ensure_compares_explicit_zero_delete_on_empty(api: AsgiClient) -> None:
    config = {"default_stream_config": {"delete_on_empty": {"min_age_secs": 0}}}
    create_basin(api)
    # Explicitly set to 0 is a different (sparse) config from unset.
    response = api.put(f"/v1/basins/{BASIN}", json_body={"config": config})
    assert response.header("s2-provision-result") == "updated"
    response = api.put(f"/v1/basins/{BASIN}", json_body={"config": config})
    assert response.header("s2-provision-result") == "noop"


# Get ----------------------------------------------------------------------------------------


def test_get_missing_basin(api: AsgiClient) -> None:
    assert_error(
        api.get("/v1/basins/missing-basin"), "basin_not_found", "basin `missing-basin` not found"
    )


def test_get_basin_config_keys(api: AsgiClient) -> None:
    create_basin(api)
    response = api.get(f"/v1/basins/{BASIN}")
    assert response.status == 200
    assert response.header("content-type") == "application/json"
    assert set(response.json()) == BASIN_CONFIG_KEYS
    assert response.json() == DEFAULT_BASIN_CONFIG


# Sparse default stream config (spec §2.2) ---------------------------------------------------


@pytest.mark.parametrize(
    ("given", "rendered"),
    [
        (None, None),
        ({}, None),
        ({"storage_class": None, "retention_policy": None}, None),
        ({"timestamping": {}}, None),
        ({"timestamping": None, "delete_on_empty": None}, None),
        ({"timestamping": {"mode": None, "uncapped": None}}, None),
        ({"storage_class": "standard"}, sparse(storage_class="standard")),
        ({"storage_class": "express"}, sparse(storage_class="express")),
        ({"retention_policy": {"infinite": {}}}, sparse(retention_policy={"infinite": {}})),
        ({"retention_policy": {"age": 1}}, sparse(retention_policy={"age": 1})),
        (
            {"timestamping": {"mode": "arrival"}},
            sparse(timestamping={"mode": "arrival", "uncapped": None}),
        ),
        (
            {"timestamping": {"uncapped": False}},
            sparse(timestamping={"mode": None, "uncapped": False}),
        ),
        ({"delete_on_empty": {}}, sparse(delete_on_empty={"min_age_secs": 0})),
        ({"delete_on_empty": {"min_age_secs": 0}}, sparse(delete_on_empty={"min_age_secs": 0})),
        ({"delete_on_empty": {"min_age_secs": 90}}, sparse(delete_on_empty={"min_age_secs": 90})),
    ],
)
def test_default_stream_config_is_rendered_sparse(
    api: AsgiClient, given: Any, rendered: Any
) -> None:
    create_basin(api, config={"default_stream_config": given})
    assert basin_config(api)["default_stream_config"] == rendered
    ensured = api.put(
        "/v1/basins/other-basin", json_body={"config": {"default_stream_config": given}}
    )
    assert ensured.status == 201
    assert basin_config(api, "other-basin")["default_stream_config"] == rendered


# Reconfigure (PATCH) ------------------------------------------------------------------------


def test_patch_missing_basin(api: AsgiClient) -> None:
    response = api.patch("/v1/basins/missing-basin", json_body={})
    assert_error(response, "basin_not_found", "basin `missing-basin` not found")


def test_patch_empty_document_changes_nothing(api: AsgiClient) -> None:
    config = {"stream_cipher": "aegis-256", "default_stream_config": {"storage_class": "standard"}}
    create_basin(api, config=config)
    before = basin_config(api)
    response = api.patch(f"/v1/basins/{BASIN}", json_body={})
    assert response.status == 200
    assert response.header("content-type") == "application/json"
    assert response.json() == before
    assert basin_config(api) == before


def test_patch_requires_a_json_body(api: AsgiClient) -> None:
    create_basin(api)
    path = f"/v1/basins/{BASIN}"
    message = "Expected request with `Content-Type: application/json`"
    assert_error(api.patch(path), "bad_json", message)
    assert_error(api.patch(path, body=b"{}"), "bad_json", message)
    assert_error(
        api.patch(path, body=b"{}", headers={"content-type": "text/json"}), "bad_json", message
    )
    assert_error(api.patch(path, body=b"", headers=JSON), "bad_json")
    assert_error(api.patch(path, body=b"null", headers=JSON), "bad_json")
    assert_error(api.patch(path, body=b"[]", headers=JSON), "bad_json")


def test_patch_flags_absent_value(api: AsgiClient) -> None:
    create_basin(api)
    path = f"/v1/basins/{BASIN}"
    response = api.patch(path, json_body={"create_stream_on_append": True})
    assert response.status == 200
    assert response.json()["create_stream_on_append"] is True
    assert response.json()["create_stream_on_read"] is False
    response = api.patch(path, json_body={"create_stream_on_read": True})
    assert response.json()["create_stream_on_append"] is True
    assert response.json()["create_stream_on_read"] is True
    response = api.patch(path, json_body={"create_stream_on_append": False})
    assert response.json()["create_stream_on_append"] is False
    assert response.json()["create_stream_on_read"] is True
    assert basin_config(api) == response.json()


@pytest.mark.parametrize(
    "document",
    [
        {"create_stream_on_append": None},
        {"create_stream_on_read": None},
        {"create_stream_on_append": "true"},
        {"create_stream_on_read": 0},
        {"stream_cipher": "aes"},
        {"stream_cipher": True},
        {"default_stream_config": []},
        {"default_stream_config": {"storage_class": "cold"}},
        {"default_stream_config": {"retention_policy": {"age": -1}}},
        {"default_stream_config": {"timestamping": {"mode": 1}}},
        {"default_stream_config": {"timestamping": 5}},
        {"default_stream_config": {"delete_on_empty": {"min_age_secs": "1"}}},
        {"default_stream_config": {"delete_on_empty": []}},
    ],
)
def test_patch_with_malformed_document(api: AsgiClient, document: Any) -> None:
    create_basin(api, config={"create_stream_on_append": True})
    before = basin_config(api)
    assert_error(api.patch(f"/v1/basins/{BASIN}", json_body=document), "bad_json")
    assert basin_config(api) == before


def test_patch_stream_cipher(api: AsgiClient) -> None:
    create_basin(api)
    path = f"/v1/basins/{BASIN}"
    assert api.patch(path, json_body={"stream_cipher": "aes-256-gcm"}).json()["stream_cipher"] == (
        "aes-256-gcm"
    )
    assert api.patch(path, json_body={"create_stream_on_read": True}).json()["stream_cipher"] == (
        "aes-256-gcm"
    )
    assert api.patch(path, json_body={"stream_cipher": "aegis-256"}).json()["stream_cipher"] == (
        "aegis-256"
    )
    assert api.patch(path, json_body={"stream_cipher": None}).json()["stream_cipher"] is None
    assert basin_config(api)["stream_cipher"] is None


def test_patch_default_stream_config_recursively(api: AsgiClient) -> None:
    create_basin(api)
    path = f"/v1/basins/{BASIN}"

    def patch(document: Any) -> Any:
        response = api.patch(path, json_body={"default_stream_config": document})
        assert response.status == 200, response.body
        assert response.json() == basin_config(api)
        return response.json()["default_stream_config"]

    assert patch({"storage_class": "standard"}) == sparse(storage_class="standard")
    assert patch({"retention_policy": {"infinite": {}}}) == sparse(
        storage_class="standard", retention_policy={"infinite": {}}
    )
    assert patch({"timestamping": {"mode": "arrival"}}) == sparse(
        storage_class="standard",
        retention_policy={"infinite": {}},
        timestamping={"mode": "arrival", "uncapped": None},
    )
    # Nested: setting uncapped keeps the mode, and vice versa.
    assert patch({"timestamping": {"uncapped": True}})["timestamping"] == {
        "mode": "arrival",
        "uncapped": True,
    }
    assert patch({"timestamping": {"mode": "client-require"}})["timestamping"] == {
        "mode": "client-require",
        "uncapped": True,
    }
    assert patch({"timestamping": {}})["timestamping"] == {
        "mode": "client-require",
        "uncapped": True,
    }
    assert patch({"timestamping": {"mode": None}})["timestamping"] == {
        "mode": None,
        "uncapped": True,
    }
    assert patch({"delete_on_empty": {"min_age_secs": 0}})["delete_on_empty"] == {"min_age_secs": 0}
    assert patch({"delete_on_empty": {"min_age_secs": 120}})["delete_on_empty"] == {
        "min_age_secs": 120
    }
    assert patch({"delete_on_empty": {}})["delete_on_empty"] == {"min_age_secs": 120}
    assert patch({"storage_class": None}) == sparse(
        retention_policy={"infinite": {}},
        timestamping={"mode": None, "uncapped": True},
        delete_on_empty={"min_age_secs": 120},
    )
    assert patch({"delete_on_empty": {"min_age_secs": None}})["delete_on_empty"] is None
    assert patch({"timestamping": {"uncapped": None}})["timestamping"] is None
    # Only the retention policy is left; clearing it leaves nothing set at all.
    assert patch({"retention_policy": None}) is None
    assert patch({"timestamping": {"mode": "arrival", "uncapped": False}}) == sparse(
        timestamping={"mode": "arrival", "uncapped": False}
    )
    assert patch({"timestamping": None}) is None
    assert patch({}) is None


def test_patch_null_default_stream_config_clears_it(api: AsgiClient) -> None:
    create_basin(
        api,
        config={
            "default_stream_config": {"storage_class": "standard", "delete_on_empty": {}},
            "stream_cipher": "aegis-256",
        },
    )
    response = api.patch(f"/v1/basins/{BASIN}", json_body={"default_stream_config": None})
    assert response.status == 200
    assert response.json() == {**DEFAULT_BASIN_CONFIG, "stream_cipher": "aegis-256"}


@pytest.mark.parametrize(
    "document",
    [
        {"default_stream_config": {"retention_policy": {"age": 0}}},
        {
            "create_stream_on_append": True,
            "default_stream_config": {"retention_policy": {"age": 0}},
        },
    ],
)
def test_patch_with_zero_retention_age(api: AsgiClient, document: Any) -> None:
    create_basin(api)
    response = api.patch(f"/v1/basins/{BASIN}", json_body=document)
    assert_error(response, "invalid", "age must be greater than 0 seconds")
    assert basin_config(api) == DEFAULT_BASIN_CONFIG
    # Validation comes before the existence check.
    assert_error(api.patch("/v1/basins/missing-basin", json_body=document), "invalid")


def test_patch_ignores_unknown_fields(api: AsgiClient) -> None:
    create_basin(api)
    response = api.patch(
        f"/v1/basins/{BASIN}",
        json_body={"location": "x", "cipher": "aegis-256", "default_stream_config": {"x": 1}},
    )
    assert response.status == 200
    assert response.json() == DEFAULT_BASIN_CONFIG


# List ---------------------------------------------------------------------------------------


def names(response: Any) -> list[str]:
    assert response.status == 200, response.body
    body = response.json()
    assert set(body) == {"basins", "has_more"}
    for info in body["basins"]:
        assert_basin_info(info, info["name"], deleting=info["deleted_at"] is not None)
    return [info["name"] for info in body["basins"]]


def test_list_empty(api: AsgiClient) -> None:
    response = api.get("/v1/basins")
    assert response.status == 200
    assert response.header("content-type") == "application/json"
    assert response.json() == {"basins": [], "has_more": False}


def test_list_is_in_byte_order(api: AsgiClient) -> None:
    # '-' < digits < letters in bytes; a collation that skipped punctuation would
    # put "abaaaaaa" before "ab-zzzzz".
    wanted = ["ab-zzzzz", "abaaaaaa", "a1bcdefg", "aabcdefg", "00000000", "zzzzzzzz", "z-------0"]
    for name in wanted:
        create_basin(api, name)
    assert names(api.get("/v1/basins")) == sorted(wanted, key=str.encode)
    assert names(api.get("/v1/basins")) == [
        "00000000",
        "a1bcdefg",
        "aabcdefg",
        "ab-zzzzz",
        "abaaaaaa",
        "z-------0",
        "zzzzzzzz",
    ]


def test_list_prefix_start_after_and_limit(api: AsgiClient) -> None:
    for name in ["alpha-001", "alpha-002", "alpha-003", "alphabet1", "beta-0001", "gamma-001"]:
        create_basin(api, name)
    assert names(api.get("/v1/basins", query="prefix=alpha-")) == [
        "alpha-001",
        "alpha-002",
        "alpha-003",
    ]
    assert names(api.get("/v1/basins", query="prefix=alpha")) == [
        "alpha-001",
        "alpha-002",
        "alpha-003",
        "alphabet1",
    ]
    # start_after is exclusive, and need not exist.
    assert names(api.get("/v1/basins", query="start_after=alpha-002")) == [
        "alpha-003",
        "alphabet1",
        "beta-0001",
        "gamma-001",
    ]
    assert names(api.get("/v1/basins", query="start_after=b")) == ["beta-0001", "gamma-001"]
    assert names(api.get("/v1/basins", query="prefix=alpha&start_after=alpha-001")) == [
        "alpha-002",
        "alpha-003",
        "alphabet1",
    ]
    # start_after before the prefix: listing starts at the prefix.
    assert names(api.get("/v1/basins", query="prefix=beta&start_after=alpha")) == ["beta-0001"]
    # start_after after every match.
    response = api.get("/v1/basins", query="prefix=alpha&start_after=alphabet1")
    assert response.json() == {"basins": [], "has_more": False}
    assert api.get("/v1/basins", query="prefix=delta").json() == {"basins": [], "has_more": False}

    page = api.get("/v1/basins", query="limit=2")
    assert names(page) == ["alpha-001", "alpha-002"]
    assert page.json()["has_more"] is True
    page = api.get("/v1/basins", query="limit=2&start_after=alpha-002")
    assert names(page) == ["alpha-003", "alphabet1"]
    assert page.json()["has_more"] is True
    page = api.get("/v1/basins", query="limit=2&start_after=alphabet1")
    assert names(page) == ["beta-0001", "gamma-001"]
    assert page.json()["has_more"] is False
    # has_more counts only items that match the prefix.
    page = api.get("/v1/basins", query="prefix=alpha-&limit=3")
    assert names(page) == ["alpha-001", "alpha-002", "alpha-003"]
    assert page.json()["has_more"] is False
    page = api.get("/v1/basins", query="prefix=alpha-&limit=2")
    assert page.json()["has_more"] is True
    page = api.get("/v1/basins", query="limit=6")
    assert len(names(page)) == 6
    assert page.json()["has_more"] is False
    page = api.get("/v1/basins", query="limit=1")
    assert names(page) == ["alpha-001"]
    assert page.json()["has_more"] is True


@pytest.mark.parametrize("limit", ["0", "1000", "1001", "5000", "18446744073709551615"])
def test_list_limit_zero_or_too_large_means_1000(api: AsgiClient, limit: str) -> None:
    from django.utils import timezone

    from basins.models import Basin

    now = timezone.now()
    Basin.objects.bulk_create(
        [Basin(name=f"basin-{i:05d}", created_at=now, config={}) for i in range(1001)]
    )
    page = api.get("/v1/basins", query=f"limit={limit}")
    listed = names(page)
    assert len(listed) == 1000
    assert listed[0] == "basin-00000"
    assert listed[-1] == "basin-00999"
    assert page.json()["has_more"] is True
    default = api.get("/v1/basins")
    assert len(names(default)) == 1000
    assert default.json()["has_more"] is True
    last = api.get("/v1/basins", query="start_after=basin-00999")
    assert names(last) == ["basin-01000"]
    assert last.json()["has_more"] is False


@pytest.mark.parametrize(
    "query",
    ["limit=-1", "limit=abc", "limit=1.5", "limit=", "limit=1e3", "limit=18446744073709551616"],
)
def test_list_with_bad_limit(api: AsgiClient, query: str) -> None:
    assert_error(api.get("/v1/basins", query=query), "bad_query")


def test_list_ignores_unknown_query_parameters(api: AsgiClient) -> None:
    create_basin(api)
    assert names(api.get("/v1/basins", query="foo=bar&limit=5&x")) == [BASIN]


def test_list_query_is_url_decoded(api: AsgiClient) -> None:
    for name in ["abc-defg", "abcdefgh"]:
        create_basin(api, name)
    assert names(api.get("/v1/basins", query="prefix=abc%2D")) == ["abc-defg"]
    assert names(api.get("/v1/basins", query="start_after=%61bc-defg")) == ["abcdefgh"]


def test_list_includes_deleting_basins(api: AsgiClient) -> None:
    create_basin(api, "basin-one")
    create_basin(api, "basin-two")
    assert api.delete("/v1/basins/basin-one").status == 202
    body = api.get("/v1/basins").json()
    assert body["has_more"] is False
    one, two = body["basins"]
    assert_basin_info(one, "basin-one", deleting=True)
    assert_basin_info(two, "basin-two")
    assert parse_time(one["deleted_at"]) >= parse_time(one["created_at"])
