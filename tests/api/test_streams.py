"""Streams: create, ensure, get, reconfigure, list, config resolution (spec §2.2–§2.7, §2.9)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from tests.api.support import (
    BASIN,
    DEFAULT_STREAM_CONFIG,
    STREAM_CONFIG_KEYS,
    assert_error,
    assert_stream_info,
    create_basin,
    create_stream,
    parse_time,
    stream_config,
    stream_path,
)
from tests.asgi_client import AsgiClient

JSON = {"content-type": "application/json"}


def token(value: str) -> dict[str, str]:
    return {"s2-request-token": value}


def resolved(**changes: Any) -> dict[str, Any]:
    config = dict(DEFAULT_STREAM_CONFIG)
    config.update(changes)
    return config


def patch_basin(api: AsgiClient, document: Any, basin: str = BASIN) -> None:
    response = api.patch(f"/v1/basins/{basin}", json_body=document)
    assert response.status == 200, response.body


@pytest.fixture
def basin(api: AsgiClient) -> str:
    create_basin(api)
    return BASIN


# Create (POST) -----------------------------------------------------------------------------


def test_create_stream(api: AsgiClient, basin: str) -> None:
    before = dt.datetime.now(dt.UTC)
    response = api.post("/v1/streams", json_body={"stream": "events"}, basin=basin)
    after = dt.datetime.now(dt.UTC)
    assert response.status == 201
    assert response.header("s2-provision-result") == "created"
    assert response.header("content-type") == "application/json"
    assert_stream_info(response.json(), "events")
    created_at = parse_time(response.json()["created_at"])
    assert before - dt.timedelta(seconds=1) <= created_at <= after + dt.timedelta(seconds=1)
    assert stream_config(api, "events") == DEFAULT_STREAM_CONFIG


def test_create_stream_in_missing_basin(api: AsgiClient) -> None:
    response = api.post("/v1/streams", json_body={"stream": "s"}, basin="missing-basin")
    assert_error(response, "basin_not_found", "basin `missing-basin` not found")
    response = api.post(
        "/v1/streams", json_body={"stream": "s"}, basin="missing-basin", headers=token("t")
    )
    assert_error(response, "basin_not_found")


def test_create_existing_stream_conflicts(api: AsgiClient, basin: str) -> None:
    create_stream(api, "s")
    response = api.post("/v1/streams", json_body={"stream": "s"}, basin=basin)
    assert_error(
        response, "resource_already_exists", "stream `s` in basin `test-basin` already exists"
    )
    response = api.post("/v1/streams", json_body={"stream": "s"}, basin=basin, headers=token("t"))
    assert_error(response, "resource_already_exists")


def test_same_stream_name_in_two_basins(api: AsgiClient, basin: str) -> None:
    create_basin(api, "other-basin")
    create_stream(api, "s", config={"storage_class": "standard"})
    create_stream(api, "s", basin="other-basin")
    assert stream_config(api, "s")["storage_class"] == "standard"
    assert stream_config(api, "s", basin="other-basin")["storage_class"] == "express"


def test_create_replay(api: AsgiClient, basin: str) -> None:
    body = {"stream": "s", "config": {"retention_policy": {"age": 60}}}
    first = api.post("/v1/streams", json_body=body, basin=basin, headers=token("tok-1"))
    assert first.status == 201
    replay = api.post("/v1/streams", json_body=body, basin=basin, headers=token("tok-1"))
    assert replay.status == 201
    assert replay.header("s2-provision-result") == "noop"
    assert replay.json() == first.json()

    for headers, config in [
        (token("tok-2"), body["config"]),
        (token("tok-1"), {"retention_policy": {"age": 61}}),
        (token("tok-1"), None),
        ({}, body["config"]),
    ]:
        attempt: dict[str, Any] = {"stream": "s"}
        if config is not None:
            attempt["config"] = config
        response = api.post("/v1/streams", json_body=attempt, basin=basin, headers=headers)
        assert_error(
            response, "resource_already_exists", "stream `s` in basin `test-basin` already exists"
        )
    assert stream_config(api, "s")["retention_policy"] == {"age": 60}


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ({}, {"config": None}),
        ({}, {"config": {}}),
        ({"config": {}}, {}),
        ({"config": None}, {"config": {}}),
        ({"config": {"storage_class": None, "timestamping": None}}, {}),
        ({"config": {"timestamping": {}}}, {"config": {"timestamping": {"mode": None}}}),
    ],
)
def test_absent_null_and_empty_stream_config_are_the_same_request(
    api: AsgiClient, basin: str, first: dict[str, Any], second: dict[str, Any]
) -> None:
    created = api.post(
        "/v1/streams", json_body={"stream": "s", **first}, basin=basin, headers=token("tk")
    )
    assert created.status == 201
    replay = api.post(
        "/v1/streams", json_body={"stream": "s", **second}, basin=basin, headers=token("tk")
    )
    assert replay.status == 201
    assert replay.header("s2-provision-result") == "noop"
    assert replay.json()["created_at"] == created.json()["created_at"]


def test_replay_after_reconfigure_ensure_and_basin_default_change(
    api: AsgiClient, basin: str
) -> None:
    body = {"stream": "s", "config": {"storage_class": "standard"}}
    first = api.post("/v1/streams", json_body=body, basin=basin, headers=token("tok"))
    assert first.status == 201

    def replay() -> None:
        response = api.post("/v1/streams", json_body=body, basin=basin, headers=token("tok"))
        assert response.status == 201
        assert response.header("s2-provision-result") == "noop"
        assert response.json()["created_at"] == first.json()["created_at"]

    assert (
        api.patch("/v1/streams/s", json_body={"retention_policy": {"age": 5}}, basin=basin).status
        == 200
    )
    replay()
    assert stream_config(api, "s")["retention_policy"] == {"age": 5}
    ensured = api.put("/v1/streams/s", json_body={"storage_class": "express"}, basin=basin)
    assert ensured.header("s2-provision-result") == "updated"
    replay()
    assert stream_config(api, "s")["storage_class"] == "express"
    patch_basin(api, {"default_stream_config": {"storage_class": "standard"}})
    replay()


def test_create_with_zero_retention_age(api: AsgiClient, basin: str) -> None:
    body = {"stream": "s", "config": {"retention_policy": {"age": 0}}}
    response = api.post("/v1/streams", json_body=body, basin=basin)
    assert_error(response, "invalid", "age must be greater than 0 seconds")
    assert_error(api.get("/v1/streams/s", basin=basin), "stream_not_found")
    # Semantic validation comes before the basin look-up.
    response = api.post("/v1/streams", json_body=body, basin="missing-basin")
    assert_error(response, "invalid", "age must be greater than 0 seconds")


BAD_STREAM_CONFIGS = [
    [],
    "express",
    1,
    {"storage_class": "slow"},
    {"storage_class": 1},
    {"retention_policy": "infinite"},
    {"retention_policy": {"infinite": None}},
    {"retention_policy": {"age": -1}},
    {"retention_policy": {"age": 0.5}},
    {"retention_policy": {"age": None}},
    {"retention_policy": {"age": 1, "infinite": {}}},
    {"timestamping": {"mode": "client"}},
    {"timestamping": {"uncapped": 1}},
    {"timestamping": []},
    {"delete_on_empty": {"min_age_secs": 1.0}},
    {"delete_on_empty": {"min_age_secs": -1}},
    {"delete_on_empty": True},
]


@pytest.mark.parametrize("config", BAD_STREAM_CONFIGS)
def test_malformed_stream_config(api: AsgiClient, basin: str, config: Any) -> None:
    response = api.post("/v1/streams", json_body={"stream": "s", "config": config}, basin=basin)
    assert_error(response, "bad_json")
    if isinstance(config, dict):
        assert_error(api.put("/v1/streams/s", json_body=config, basin=basin), "bad_json")
    assert_error(api.get("/v1/streams/s", basin=basin), "stream_not_found")


def test_create_requires_json(api: AsgiClient, basin: str) -> None:
    message = "Expected request with `Content-Type: application/json`"
    assert_error(api.post("/v1/streams", body=b'{"stream":"s"}', basin=basin), "bad_json", message)
    assert_error(
        api.post(
            "/v1/streams",
            body=b'{"stream":"s"}',
            basin=basin,
            headers={"content-type": "text/plain"},
        ),
        "bad_json",
        message,
    )
    for body in [b"", b"null", b"[]", b"{", b'{"stream":']:
        assert_error(api.post("/v1/streams", body=body, basin=basin, headers=JSON), "bad_json")
    assert api.get("/v1/streams", basin=basin).json()["streams"] == []


def test_create_ignores_unknown_fields(api: AsgiClient, basin: str) -> None:
    body = {"stream": "s", "basin": "nope", "config": {"cipher": "aegis-256", "x": 1}}
    info = api.post("/v1/streams", json_body=body, basin=basin).json()
    assert_stream_info(info, "s", cipher=None)


# Get ----------------------------------------------------------------------------------------


def test_get_stream_config(api: AsgiClient, basin: str) -> None:
    create_stream(api, "s")
    response = api.get("/v1/streams/s", basin=basin)
    assert response.status == 200
    assert response.header("content-type") == "application/json"
    assert set(response.json()) == STREAM_CONFIG_KEYS
    assert response.json() == DEFAULT_STREAM_CONFIG


def test_get_missing_stream(api: AsgiClient, basin: str) -> None:
    assert_error(
        api.get("/v1/streams/nope", basin=basin),
        "stream_not_found",
        "stream `nope` in basin `test-basin` not found",
    )
    # A missing basin also reads as a missing stream.
    assert_error(
        api.get("/v1/streams/nope", basin="missing-basin"),
        "stream_not_found",
        "stream `nope` in basin `missing-basin` not found",
    )


# Configuration resolution (spec §2.2) -------------------------------------------------------


def test_stream_config_resolves_stream_then_basin_then_system(api: AsgiClient) -> None:
    create_basin(
        api,
        config={
            "default_stream_config": {
                "storage_class": "standard",
                "timestamping": {"uncapped": True},
                "delete_on_empty": {"min_age_secs": 30},
            }
        },
    )
    create_stream(api, "s", config={"timestamping": {"mode": "arrival"}})
    assert stream_config(api, "s") == {
        "storage_class": "standard",
        "retention_policy": {"age": 604800},
        "timestamping": {"mode": "arrival", "uncapped": True},
        "delete_on_empty": {"min_age_secs": 30},
    }
    create_stream(
        api,
        "t",
        config={
            "storage_class": "express",
            "retention_policy": {"infinite": {}},
            "timestamping": {"mode": "client-require", "uncapped": False},
            "delete_on_empty": {"min_age_secs": 0},
        },
    )
    assert stream_config(api, "t") == {
        "storage_class": "express",
        "retention_policy": {"infinite": {}},
        "timestamping": {"mode": "client-require", "uncapped": False},
        "delete_on_empty": {"min_age_secs": 0},
    }
    create_stream(api, "u", config={"delete_on_empty": {}})
    assert stream_config(api, "u")["delete_on_empty"] == {"min_age_secs": 0}


def test_basin_default_changes_do_not_affect_existing_streams(api: AsgiClient) -> None:
    create_basin(api, config={"default_stream_config": {"retention_policy": {"age": 100}}})
    create_stream(api, "old")
    patch_basin(
        api,
        {"default_stream_config": {"retention_policy": {"age": 200}, "storage_class": "standard"}},
    )
    assert stream_config(api, "old") == resolved(retention_policy={"age": 100})
    create_stream(api, "new")
    assert stream_config(api, "new") == resolved(
        retention_policy={"age": 200}, storage_class="standard"
    )
    patch_basin(api, {"default_stream_config": None})
    assert stream_config(api, "new") == resolved(
        retention_policy={"age": 200}, storage_class="standard"
    )


# Cipher (spec §2.2, §2.9) -------------------------------------------------------------------


def test_cipher_is_copied_from_the_basin_at_creation(api: AsgiClient) -> None:
    create_basin(api, config={"stream_cipher": "aes-256-gcm"})
    info = create_stream(api, "first")
    assert_stream_info(info, "first", cipher="aes-256-gcm")
    patch_basin(api, {"stream_cipher": "aegis-256"})
    assert_stream_info(create_stream(api, "second"), "second", cipher="aegis-256")
    ensured = api.put("/v1/streams/third", basin=BASIN)
    assert_stream_info(ensured.json(), "third", cipher="aegis-256")
    patch_basin(api, {"stream_cipher": None})
    assert_stream_info(create_stream(api, "fourth"), "fourth", cipher=None)

    listed = {s["name"]: s["cipher"] for s in api.get("/v1/streams", basin=BASIN).json()["streams"]}
    assert listed == {
        "first": "aes-256-gcm",
        "fourth": None,
        "second": "aegis-256",
        "third": "aegis-256",
    }
    # Neither ensure nor reconfigure changes it; it is not part of the stream config.
    updated = api.put("/v1/streams/first", json_body={"storage_class": "standard"}, basin=BASIN)
    assert updated.header("s2-provision-result") == "updated"
    assert updated.json()["cipher"] == "aes-256-gcm"
    patched = api.patch("/v1/streams/first", json_body={"cipher": None}, basin=BASIN)
    assert patched.status == 200
    assert "cipher" not in patched.json()
    listed = {s["name"]: s["cipher"] for s in api.get("/v1/streams", basin=BASIN).json()["streams"]}
    assert listed["first"] == "aes-256-gcm"


def test_replay_returns_the_original_cipher(api: AsgiClient) -> None:
    create_basin(api, config={"stream_cipher": "aegis-256"})
    create_stream(api, "s", headers=token("t"))
    patch_basin(api, {"stream_cipher": "aes-256-gcm"})
    replay = api.post("/v1/streams", json_body={"stream": "s"}, basin=BASIN, headers=token("t"))
    assert replay.header("s2-provision-result") == "noop"
    assert replay.json()["cipher"] == "aegis-256"


# Ensure (PUT) ------------------------------------------------------------------------------


def test_ensure_stream_created_noop_updated(api: AsgiClient, basin: str) -> None:
    created = api.put("/v1/streams/s", basin=basin)
    assert created.status == 201
    assert created.header("s2-provision-result") == "created"
    assert_stream_info(created.json(), "s")
    assert stream_config(api, "s") == DEFAULT_STREAM_CONFIG

    noop = api.put("/v1/streams/s", basin=basin)
    assert noop.status == 200
    assert noop.header("s2-provision-result") == "noop"
    assert noop.json() == created.json()

    updated = api.put(
        "/v1/streams/s", json_body={"retention_policy": {"infinite": {}}}, basin=basin
    )
    assert updated.status == 200
    assert updated.header("s2-provision-result") == "updated"
    assert updated.json()["created_at"] == created.json()["created_at"]
    assert_stream_info(updated.json(), "s")
    assert stream_config(api, "s") == resolved(retention_policy={"infinite": {}})

    again = api.put("/v1/streams/s", json_body={"retention_policy": {"infinite": {}}}, basin=basin)
    assert again.status == 200
    assert again.header("s2-provision-result") == "noop"


def test_ensure_stream_is_not_a_merge(api: AsgiClient) -> None:
    create_basin(api, config={"default_stream_config": {"storage_class": "standard"}})
    create_stream(
        api,
        "s",
        config={
            "storage_class": "express",
            "retention_policy": {"age": 10},
            "timestamping": {"mode": "arrival", "uncapped": True},
            "delete_on_empty": {"min_age_secs": 5},
        },
    )
    response = api.put(
        "/v1/streams/s", json_body={"timestamping": {"mode": "arrival"}}, basin=BASIN
    )
    assert response.header("s2-provision-result") == "updated"
    # Unmentioned fields are reset: to the basin default, else the system default.
    assert stream_config(api, "s") == {
        "storage_class": "standard",
        "retention_policy": {"age": 604800},
        "timestamping": {"mode": "arrival", "uncapped": False},
        "delete_on_empty": {"min_age_secs": 0},
    }


def test_ensure_compares_the_resolved_config(api: AsgiClient) -> None:
    create_basin(api, config={"default_stream_config": {"storage_class": "standard"}})
    assert api.put("/v1/streams/s", basin=BASIN).status == 201
    same = api.put("/v1/streams/s", json_body={"storage_class": "standard"}, basin=BASIN)
    assert same.header("s2-provision-result") == "noop"
    explicit = api.put(
        "/v1/streams/s",
        json_body=DEFAULT_STREAM_CONFIG | {"storage_class": "standard"},
        basin=BASIN,
    )
    assert explicit.header("s2-provision-result") == "noop"
    patch_basin(api, {"default_stream_config": None})
    # Same request, but the basin default it resolves against has changed.
    changed = api.put("/v1/streams/s", basin=BASIN)
    assert changed.status == 200
    assert changed.header("s2-provision-result") == "updated"
    assert stream_config(api, "s") == DEFAULT_STREAM_CONFIG


def test_ensure_stream_body_handling(api: AsgiClient, basin: str) -> None:
    # No Content-Type: the body is ignored, whatever it is.
    response = api.put("/v1/streams/s", body=b'{"storage_class": "standard"}', basin=basin)
    assert response.status == 201
    assert stream_config(api, "s") == DEFAULT_STREAM_CONFIG
    response = api.put("/v1/streams/s", body=b"not json at all", basin=basin)
    assert response.status == 200
    assert response.header("s2-provision-result") == "noop"
    # JSON content type and an empty body: no body.
    api.patch("/v1/streams/s", json_body={"storage_class": "standard"}, basin=basin)
    response = api.put("/v1/streams/s", body=b"", headers=JSON, basin=basin)
    assert response.status == 200
    assert response.header("s2-provision-result") == "updated"
    assert stream_config(api, "s") == DEFAULT_STREAM_CONFIG
    # Any other content type is rejected, body or not.
    message = "Expected request with `Content-Type: application/json`"
    for content_type in ("text/plain", "application/protobuf", "multipart/form-data"):
        headers = {"content-type": content_type}
        assert_error(
            api.put("/v1/streams/s", body=b"{}", headers=headers, basin=basin), "bad_json", message
        )
        assert_error(
            api.put("/v1/streams/t", body=b"", headers=headers, basin=basin), "bad_json", message
        )
    assert_error(api.get("/v1/streams/t", basin=basin), "stream_not_found")
    for body in [b"null", b"[]", b"{", b"7"]:
        assert_error(api.put("/v1/streams/t", body=body, headers=JSON, basin=basin), "bad_json")
    assert_error(api.get("/v1/streams/t", basin=basin), "stream_not_found")


def test_ensure_stream_takes_a_bare_stream_config(api: AsgiClient, basin: str) -> None:
    # The body is a StreamConfig itself, not {"config": ...}: a wrapper is an unknown field.
    response = api.put(
        "/v1/streams/s", json_body={"config": {"storage_class": "standard"}}, basin=basin
    )
    assert response.status == 201
    assert stream_config(api, "s") == DEFAULT_STREAM_CONFIG


def test_ensure_stream_in_missing_basin(api: AsgiClient) -> None:
    response = api.put("/v1/streams/s", basin="missing-basin")
    assert_error(response, "basin_not_found", "basin `missing-basin` not found")


def test_ensure_stream_with_zero_retention_age(api: AsgiClient, basin: str) -> None:
    body = {"retention_policy": {"age": 0}}
    assert_error(api.put("/v1/streams/s", json_body=body, basin=basin), "invalid")
    assert_error(api.get("/v1/streams/s", basin=basin), "stream_not_found")
    create_stream(api, "s")
    response = api.put("/v1/streams/s", json_body=body, basin=basin)
    assert_error(response, "invalid", "age must be greater than 0 seconds")
    assert stream_config(api, "s") == DEFAULT_STREAM_CONFIG


def test_ensure_keeps_created_at_and_token(api: AsgiClient, basin: str) -> None:
    first = create_stream(api, "s", config={"storage_class": "standard"}, headers=token("t"))
    api.put("/v1/streams/s", json_body={"retention_policy": {"age": 9}}, basin=basin)
    replay = api.post(
        "/v1/streams",
        json_body={"stream": "s", "config": {"storage_class": "standard"}},
        basin=basin,
        headers=token("t"),
    )
    assert replay.header("s2-provision-result") == "noop"
    assert replay.json()["created_at"] == first["created_at"]


# Reconfigure (PATCH) ------------------------------------------------------------------------


def test_patch_stream_absent_null_value(api: AsgiClient) -> None:
    create_basin(
        api,
        config={
            "default_stream_config": {
                "storage_class": "standard",
                "timestamping": {"uncapped": True},
                "delete_on_empty": {"min_age_secs": 77},
            }
        },
    )
    create_stream(
        api,
        "s",
        config={
            "storage_class": "express",
            "retention_policy": {"age": 10},
            "timestamping": {"mode": "arrival", "uncapped": False},
            "delete_on_empty": {"min_age_secs": 5},
        },
    )

    def patch(document: Any) -> Any:
        response = api.patch("/v1/streams/s", json_body=document, basin=BASIN)
        assert response.status == 200, response.body
        assert response.header("content-type") == "application/json"
        assert response.json() == stream_config(api, "s")
        return response.json()

    start = stream_config(api, "s")
    assert patch({}) == start
    assert patch({"retention_policy": {"age": 20}}) == start | {"retention_policy": {"age": 20}}
    # Nested: the mode changes, uncapped stays.
    assert patch({"timestamping": {"mode": "client-require"}})["timestamping"] == {
        "mode": "client-require",
        "uncapped": False,
    }
    assert patch({"timestamping": {"uncapped": True}})["timestamping"] == {
        "mode": "client-require",
        "uncapped": True,
    }
    assert patch({"timestamping": {}})["timestamping"] == {
        "mode": "client-require",
        "uncapped": True,
    }
    # null: re-resolved from the basin default, then the system default.
    assert patch({"storage_class": None})["storage_class"] == "standard"
    assert patch({"retention_policy": None})["retention_policy"] == {"age": 604800}
    assert patch({"timestamping": {"mode": None}})["timestamping"] == {
        "mode": "client-prefer",
        "uncapped": True,
    }
    patch({"timestamping": {"uncapped": False}})
    assert patch({"timestamping": {"uncapped": None}})["timestamping"] == {
        "mode": "client-prefer",
        "uncapped": True,
    }
    patch({"timestamping": {"mode": "arrival", "uncapped": False}})
    assert patch({"timestamping": None})["timestamping"] == {
        "mode": "client-prefer",
        "uncapped": True,
    }
    assert patch({"delete_on_empty": {}})["delete_on_empty"] == {"min_age_secs": 5}
    assert patch({"delete_on_empty": {"min_age_secs": 3}})["delete_on_empty"] == {"min_age_secs": 3}
    assert patch({"delete_on_empty": {"min_age_secs": None}})["delete_on_empty"] == {
        "min_age_secs": 77
    }
    patch({"delete_on_empty": {"min_age_secs": 4}})
    assert patch({"delete_on_empty": None})["delete_on_empty"] == {"min_age_secs": 77}
    # With no basin default, null falls through to the system default.
    patch_basin(api, {"default_stream_config": None})
    assert (
        patch({"storage_class": None, "timestamping": None, "delete_on_empty": None})
        == DEFAULT_STREAM_CONFIG
    )


def test_patch_does_not_pick_up_basin_defaults_for_absent_fields(api: AsgiClient) -> None:
    create_basin(api)
    create_stream(api, "s")
    patch_basin(api, {"default_stream_config": {"storage_class": "standard"}})
    response = api.patch("/v1/streams/s", json_body={"retention_policy": {"age": 5}}, basin=BASIN)
    assert response.json() == resolved(retention_policy={"age": 5})


def test_patch_stream_errors(api: AsgiClient, basin: str) -> None:
    assert_error(
        api.patch("/v1/streams/nope", json_body={}, basin=basin),
        "stream_not_found",
        "stream `nope` in basin `test-basin` not found",
    )
    # The basin is checked first.
    assert_error(
        api.patch("/v1/streams/nope", json_body={}, basin="missing-basin"),
        "basin_not_found",
        "basin `missing-basin` not found",
    )
    create_stream(api, "s")
    message = "Expected request with `Content-Type: application/json`"
    assert_error(api.patch("/v1/streams/s", basin=basin), "bad_json", message)
    assert_error(api.patch("/v1/streams/s", body=b"{}", basin=basin), "bad_json", message)
    for body in [b"", b"null", b"[]", b"{"]:
        assert_error(api.patch("/v1/streams/s", body=body, headers=JSON, basin=basin), "bad_json")
    for document in [
        {"storage_class": "fast"},
        {"retention_policy": {"age": -5}},
        {"retention_policy": "infinite"},
        {"timestamping": {"mode": "x"}},
        {"timestamping": {"uncapped": "yes"}},
        {"timestamping": 1},
        {"delete_on_empty": {"min_age_secs": 1.5}},
        {"delete_on_empty": "x"},
    ]:
        assert_error(api.patch("/v1/streams/s", json_body=document, basin=basin), "bad_json")
    age_zero = {"retention_policy": {"age": 0}}
    response = api.patch("/v1/streams/s", json_body=age_zero, basin=basin)
    assert_error(response, "invalid", "age must be greater than 0 seconds")
    assert stream_config(api, "s") == DEFAULT_STREAM_CONFIG
    # Validation comes before the look-ups.
    response = api.patch("/v1/streams/nope", json_body=age_zero, basin="missing-basin")
    assert_error(response, "invalid")


# List ---------------------------------------------------------------------------------------


def stream_names(response: Any) -> list[str]:
    assert response.status == 200, response.body
    body = response.json()
    assert set(body) == {"streams", "has_more"}
    for info in body["streams"]:
        assert_stream_info(
            info, info["name"], cipher=info["cipher"], deleting=info["deleted_at"] is not None
        )
    return [info["name"] for info in body["streams"]]


def test_list_streams_of_missing_basin_is_empty(api: AsgiClient) -> None:
    response = api.get("/v1/streams", basin="missing-basin")
    assert response.status == 200
    assert response.json() == {"streams": [], "has_more": False}


def test_list_streams_in_byte_order(api: AsgiClient, basin: str) -> None:
    # Byte order of UTF-8: not case-insensitive ("B" < "a"), not UTF-16 order
    # (U+FF21 < U+1F600 in UTF-8 but not in UTF-16), not a locale collation.
    wanted = ["a", "B", "Z", "_", "ä", "é", "日本", "Ａ", "😀", "10", "9", "a-b", "a b", "ab", "A"]
    for name in wanted:
        create_stream(api, name)
    assert stream_names(api.get("/v1/streams", basin=basin)) == [
        "10",
        "9",
        "A",
        "B",
        "Z",
        "_",
        "a",
        "a b",
        "a-b",
        "ab",
        "ä",
        "é",
        "日本",
        "Ａ",
        "😀",
    ]


def test_list_streams_prefix_start_after_limit(api: AsgiClient, basin: str) -> None:
    for name in ["log/1", "log/2", "log/3", "log0", "logs", "metrics", "Log/1", "ログ"]:
        create_stream(api, name)
    assert stream_names(api.get("/v1/streams", basin=basin, query="prefix=log%2F")) == [
        "log/1",
        "log/2",
        "log/3",
    ]
    # Prefix matching is case-sensitive.
    assert stream_names(api.get("/v1/streams", basin=basin, query="prefix=Log")) == ["Log/1"]
    assert stream_names(api.get("/v1/streams", basin=basin, query="prefix=%E3%83%AD")) == ["ログ"]
    assert stream_names(
        api.get("/v1/streams", basin=basin, query="prefix=log&start_after=log%2F3")
    ) == ["log0", "logs"]
    assert stream_names(api.get("/v1/streams", basin=basin, query="start_after=logs")) == [
        "metrics",
        "ログ",
    ]
    assert stream_names(
        api.get("/v1/streams", basin=basin, query="prefix=metrics&start_after=a")
    ) == ["metrics"]
    page = api.get("/v1/streams", basin=basin, query="prefix=log&limit=2")
    assert stream_names(page) == ["log/1", "log/2"]
    assert page.json()["has_more"] is True
    page = api.get("/v1/streams", basin=basin, query="prefix=log%2F&limit=3")
    assert stream_names(page) == ["log/1", "log/2", "log/3"]
    assert page.json()["has_more"] is False
    page = api.get("/v1/streams", basin=basin, query="limit=0")
    assert len(stream_names(page)) == 8
    assert page.json()["has_more"] is False


def test_list_streams_query_uses_form_decoding(api: AsgiClient, basin: str) -> None:
    for name in ["my stream", "my+stream", "my-stream"]:
        create_stream(api, name)
    # "+" is a space in a query string; "%2B" is a plus.
    assert stream_names(api.get("/v1/streams", basin=basin, query="prefix=my+")) == ["my stream"]
    assert stream_names(api.get("/v1/streams", basin=basin, query="prefix=my%2B")) == ["my+stream"]


def test_list_streams_limit_clamped_to_1000(api: AsgiClient, basin: str) -> None:
    from django.utils import timezone

    from basins.models import Basin
    from streams.models import Stream

    owner = Basin.objects.get(name=basin)
    now = timezone.now()
    Stream.objects.bulk_create(
        [
            Stream(basin=owner, name=f"s{i:04d}", created_at=now, config=DEFAULT_STREAM_CONFIG)
            for i in range(1001)
        ]
    )
    for query in ["", "limit=0", "limit=1001", "limit=1000"]:
        page = api.get("/v1/streams", basin=basin, query=query)
        listed = stream_names(page)
        assert len(listed) == 1000
        assert listed[-1] == "s0999"
        assert page.json()["has_more"] is True
    page = api.get("/v1/streams", basin=basin, query="limit=999")
    assert len(stream_names(page)) == 999


@pytest.mark.parametrize("query", ["limit=-1", "limit=x", "limit=2.0", "limit="])
def test_list_streams_bad_limit(api: AsgiClient, basin: str, query: str) -> None:
    assert_error(api.get("/v1/streams", basin=basin, query=query), "bad_query")


def test_list_streams_includes_deleting_streams(api: AsgiClient, basin: str) -> None:
    create_stream(api, "a")
    create_stream(api, "b")
    assert api.delete("/v1/streams/a", basin=basin).status == 202
    body = api.get("/v1/streams", basin=basin).json()
    a, b = body["streams"]
    assert_stream_info(a, "a", deleting=True)
    assert_stream_info(b, "b")
    assert parse_time(a["deleted_at"]) >= parse_time(a["created_at"])


def test_streams_of_other_basins_are_not_listed(api: AsgiClient, basin: str) -> None:
    create_basin(api, "other-basin")
    create_stream(api, "mine")
    create_stream(api, "theirs", basin="other-basin")
    assert stream_names(api.get("/v1/streams", basin=basin)) == ["mine"]
    assert stream_names(api.get("/v1/streams", basin="other-basin")) == ["theirs"]


def test_info_objects_of_a_stream_named_like_a_path(api: AsgiClient, basin: str) -> None:
    info = create_stream(api, "a/b/c")
    assert_stream_info(info, "a/b/c")
    assert api.get(stream_path("a/b/c"), basin=basin).json() == DEFAULT_STREAM_CONFIG
