"""Deletion of basins and streams, the pending state and re-creation (spec §2.8).

No background task runs in these tests, so a deleted resource stays pending until
``purge_pending_deletions()`` is called: the pending state can be checked exactly.
"""

from __future__ import annotations

from streams.lifecycle import purge_pending_deletions
from tests.api.support import (
    BASIN,
    DEFAULT_BASIN_CONFIG,
    DEFAULT_STREAM_CONFIG,
    assert_basin_info,
    assert_empty,
    assert_error,
    assert_stream_info,
    basin_config,
    create_basin,
    create_stream,
    parse_time,
)
from tests.asgi_client import AsgiClient

PENDING = "basin `test-basin` is being deleted"


def token(value: str) -> dict[str, str]:
    return {"s2-request-token": value}


# Basins --------------------------------------------------------------------------------------


def test_delete_basin_is_accepted_with_empty_body(api: AsgiClient) -> None:
    create_basin(api)
    response = api.delete(f"/v1/basins/{BASIN}")
    assert_empty(response, 202)
    assert response.header("content-type") is None


def test_delete_missing_basin(api: AsgiClient) -> None:
    response = api.delete("/v1/basins/missing-basin")
    assert_error(response, "basin_not_found", "basin `missing-basin` not found")


def test_repeated_basin_delete_while_pending(api: AsgiClient) -> None:
    create_basin(api)
    assert_empty(api.delete(f"/v1/basins/{BASIN}"), 202)
    first = api.get("/v1/basins").json()["basins"][0]["deleted_at"]
    assert_empty(api.delete(f"/v1/basins/{BASIN}"), 202)
    # The deletion time is that of the first request.
    assert api.get("/v1/basins").json()["basins"][0]["deleted_at"] == first


def test_basin_pending_deletion_state(api: AsgiClient) -> None:
    config = {
        "create_stream_on_append": True,
        "default_stream_config": {"storage_class": "standard"},
    }
    create_basin(api, config=config, headers=token("tok"))
    create_stream(api, "s")
    assert_empty(api.delete(f"/v1/basins/{BASIN}"), 202)

    # Its config is still readable, and it is listed as deleting.
    assert basin_config(api) == {
        **DEFAULT_BASIN_CONFIG,
        "create_stream_on_append": True,
        "default_stream_config": {
            "storage_class": "standard",
            "retention_policy": None,
            "timestamping": None,
            "delete_on_empty": None,
        },
    }
    (info,) = api.get("/v1/basins").json()["basins"]
    assert_basin_info(info, BASIN, deleting=True)

    # Every write to the basin is refused, also an idempotent replay.
    body = {"basin": BASIN, "config": config}
    assert_error(api.post("/v1/basins", json_body=body), "basin_deletion_pending", PENDING)
    assert_error(
        api.post("/v1/basins", json_body=body, headers=token("tok")),
        "basin_deletion_pending",
        PENDING,
    )
    assert_error(api.put(f"/v1/basins/{BASIN}"), "basin_deletion_pending", PENDING)
    assert_error(
        api.put(f"/v1/basins/{BASIN}", json_body={"config": config}),
        "basin_deletion_pending",
        PENDING,
    )
    assert_error(
        api.patch(f"/v1/basins/{BASIN}", json_body={"stream_cipher": "aegis-256"}),
        "basin_deletion_pending",
        PENDING,
    )
    assert_error(api.patch(f"/v1/basins/{BASIN}", json_body={}), "basin_deletion_pending", PENDING)

    # And so is every stream write in it.
    assert_error(
        api.post("/v1/streams", json_body={"stream": "t"}, basin=BASIN),
        "basin_deletion_pending",
        PENDING,
    )
    assert_error(
        api.post("/v1/streams", json_body={"stream": "s"}, basin=BASIN),
        "basin_deletion_pending",
        PENDING,
    )
    assert_error(api.put("/v1/streams/t", basin=BASIN), "basin_deletion_pending", PENDING)
    assert_error(api.put("/v1/streams/s", basin=BASIN), "basin_deletion_pending", PENDING)
    assert_error(
        api.patch("/v1/streams/s", json_body={}, basin=BASIN), "basin_deletion_pending", PENDING
    )
    assert_error(
        api.patch("/v1/streams/t", json_body={}, basin=BASIN), "basin_deletion_pending", PENDING
    )
    # Nothing changed.
    assert basin_config(api)["stream_cipher"] is None
    names = [s["name"] for s in api.get("/v1/streams", basin=BASIN).json()["streams"]]
    assert names == ["s"]


def test_basin_is_gone_after_purge_and_can_be_recreated(api: AsgiClient) -> None:
    original = create_basin(api, config={"stream_cipher": "aegis-256"}, headers=token("tok"))
    create_stream(api, "s")
    create_stream(api, "t")
    create_basin(api, "other-basin")
    create_stream(api, "s", basin="other-basin")
    assert_empty(api.delete(f"/v1/basins/{BASIN}"), 202)

    purge_pending_deletions()

    assert_error(api.get(f"/v1/basins/{BASIN}"), "basin_not_found", "basin `test-basin` not found")
    assert_error(api.delete(f"/v1/basins/{BASIN}"), "basin_not_found")
    assert_error(api.patch(f"/v1/basins/{BASIN}", json_body={}), "basin_not_found")
    assert [b["name"] for b in api.get("/v1/basins").json()["basins"]] == ["other-basin"]
    assert api.get("/v1/streams", basin=BASIN).json() == {"streams": [], "has_more": False}
    assert_error(api.get("/v1/streams/s", basin=BASIN), "stream_not_found")
    assert_error(api.post("/v1/streams", json_body={"stream": "s"}, basin=BASIN), "basin_not_found")
    # Other basins are untouched.
    assert api.get("/v1/streams/s", basin="other-basin").status == 200

    # The name is free again; the old token means nothing any more.
    again = api.post(
        "/v1/basins",
        json_body={"basin": BASIN, "config": {"stream_cipher": "aegis-256"}},
        headers=token("tok"),
    )
    assert again.status == 201
    assert again.header("s2-provision-result") == "created"
    assert parse_time(again.json()["created_at"]) >= parse_time(original["created_at"])
    assert api.get("/v1/streams", basin=BASIN).json()["streams"] == []


def test_empty_basin_is_recreated_by_ensure_after_purge(api: AsgiClient) -> None:
    create_basin(api)
    api.delete(f"/v1/basins/{BASIN}")
    purge_pending_deletions()
    response = api.put(f"/v1/basins/{BASIN}")
    assert response.status == 201
    assert response.header("s2-provision-result") == "created"


# Streams -------------------------------------------------------------------------------------


def test_delete_stream_is_accepted_with_empty_body(api: AsgiClient) -> None:
    create_basin(api)
    create_stream(api, "s")
    response = api.delete("/v1/streams/s", basin=BASIN)
    assert_empty(response, 202)
    assert response.header("content-type") is None


def test_delete_missing_stream(api: AsgiClient) -> None:
    create_basin(api)
    assert_error(
        api.delete("/v1/streams/nope", basin=BASIN),
        "stream_not_found",
        "stream `nope` in basin `test-basin` not found",
    )
    assert_error(
        api.delete("/v1/streams/nope", basin="missing-basin"),
        "stream_not_found",
        "stream `nope` in basin `missing-basin` not found",
    )


def test_stream_pending_deletion_state(api: AsgiClient) -> None:
    create_basin(api)
    create_stream(api, "s", config={"storage_class": "standard"}, headers=token("tok"))
    create_stream(api, "other")
    assert_empty(api.delete("/v1/streams/s", basin=BASIN), 202)
    assert_empty(api.delete("/v1/streams/s", basin=BASIN), 202)

    pending = "stream deletion pending"
    assert_error(api.get("/v1/streams/s", basin=BASIN), "stream_deletion_pending", pending)
    assert_error(
        api.post("/v1/streams", json_body={"stream": "s"}, basin=BASIN),
        "stream_deletion_pending",
        pending,
    )
    replay = api.post(
        "/v1/streams",
        json_body={"stream": "s", "config": {"storage_class": "standard"}},
        basin=BASIN,
        headers=token("tok"),
    )
    assert_error(replay, "stream_deletion_pending", pending)
    assert_error(api.put("/v1/streams/s", basin=BASIN), "stream_deletion_pending", pending)
    assert_error(
        api.patch("/v1/streams/s", json_body={"storage_class": "express"}, basin=BASIN),
        "stream_deletion_pending",
        pending,
    )
    listed = api.get("/v1/streams", basin=BASIN).json()["streams"]
    assert [s["name"] for s in listed] == ["other", "s"]
    assert_stream_info(listed[0], "other")
    assert_stream_info(listed[1], "s", deleting=True)
    # The basin itself is unaffected.
    assert api.patch(f"/v1/basins/{BASIN}", json_body={}).status == 200
    assert api.get("/v1/streams/other", basin=BASIN).status == 200


def test_stream_is_gone_after_purge_and_can_be_recreated(api: AsgiClient) -> None:
    create_basin(api)
    original = create_stream(api, "s", config={"storage_class": "standard"}, headers=token("t"))
    create_stream(api, "keep")
    api.delete("/v1/streams/s", basin=BASIN)

    purge_pending_deletions()

    assert_error(
        api.get("/v1/streams/s", basin=BASIN),
        "stream_not_found",
        "stream `s` in basin `test-basin` not found",
    )
    assert_error(api.delete("/v1/streams/s", basin=BASIN), "stream_not_found")
    assert_error(api.patch("/v1/streams/s", json_body={}, basin=BASIN), "stream_not_found")
    listed = api.get("/v1/streams", basin=BASIN).json()
    assert [s["name"] for s in listed["streams"]] == ["keep"]
    # The basin stays.
    assert api.get(f"/v1/basins/{BASIN}").status == 200

    again = create_stream(api, "s", headers=token("t"))
    assert parse_time(again["created_at"]) >= parse_time(original["created_at"])
    assert api.get("/v1/streams/s", basin=BASIN).json() == DEFAULT_STREAM_CONFIG


def test_stream_recreated_by_ensure_after_purge(api: AsgiClient) -> None:
    create_basin(api)
    create_stream(api, "s")
    api.delete("/v1/streams/s", basin=BASIN)
    purge_pending_deletions()
    response = api.put("/v1/streams/s", json_body={"storage_class": "standard"}, basin=BASIN)
    assert response.status == 201
    assert response.header("s2-provision-result") == "created"
