"""The official Python SDK (s2-sdk, HTTP/2 prior knowledge only) against the real server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
from s2_sdk import (
    S2,
    BasinConfig,
    Endpoints,
    EnsureStatus,
    S2ServerError,
    StreamConfig,
    Timestamping,
    TimestampingMode,
)

pytestmark = pytest.mark.e2e

T = TypeVar("T")


def run(url: str, body: Callable[[S2], Awaitable[T]]) -> T:
    """Run ``body`` with an SDK client pointed at ``url`` (account and basin endpoint alike)."""

    async def main() -> T:
        async with S2("ignored", endpoints=Endpoints(account=url, basin=url)) as s2:
            return await body(s2)

    return asyncio.run(main())


async def expect_error(awaitable: Awaitable[object], status: int, code: str) -> S2ServerError:
    with pytest.raises(S2ServerError) as caught:
        await awaitable
    assert (caught.value.status_code, caught.value.code) == (status, code)
    return caught.value


async def eventually_gone(probe: Callable[[], Awaitable[object]], code: str) -> None:
    """Deletion is asynchronous: poll until ``probe`` fails with 404 ``code``."""
    deadline = time.monotonic() + 5
    while True:
        try:
            await probe()
        except S2ServerError as exc:
            if exc.status_code == 404:
                assert exc.code == code
                return
            assert (exc.status_code, exc.code) == (409, "stream_deletion_pending")
        assert time.monotonic() < deadline, "resource still present 5 s after DELETE"
        await asyncio.sleep(0.05)


def test_basin_lifecycle(server_url: str, unique: str) -> None:
    name = f"sdk-basin-{unique}"

    async def body(s2: S2) -> None:
        config = BasinConfig(
            default_stream_config=StreamConfig(
                storage_class="standard",
                retention_policy=3600,
                timestamping=Timestamping(mode=TimestampingMode.ARRIVAL),
            ),
            create_stream_on_append=True,
        )
        info = await s2.create_basin(name, config=config)
        assert info.name == name
        assert info.deleted_at is None
        assert info.location is None
        assert info.created_at.tzinfo is not None

        got = await s2.get_basin_config(name)
        assert got.create_stream_on_append is True
        assert got.create_stream_on_read is False
        assert got.stream_cipher is None
        assert got.default_stream_config == StreamConfig(
            storage_class="standard",
            retention_policy=3600,
            timestamping=Timestamping(mode=TimestampingMode.ARRIVAL, uncapped=None),
            delete_on_empty_min_age=None,
        )

        error = await expect_error(s2.create_basin(name), 409, "resource_already_exists")
        assert error.message == f"basin `{name}` already exists"

        # PATCH: only the given fields change, nested objects merge.
        reconfigured = await s2.reconfigure_basin(
            name,
            config=BasinConfig(
                default_stream_config=StreamConfig(retention_policy="infinite"),
                create_stream_on_read=True,
            ),
        )
        assert reconfigured.create_stream_on_append is True
        assert reconfigured.create_stream_on_read is True
        assert reconfigured.default_stream_config is not None
        assert reconfigured.default_stream_config.retention_policy == "infinite"
        assert reconfigured.default_stream_config.storage_class == "standard"
        assert await s2.get_basin_config(name) == reconfigured

        await s2.delete_basin(name)
        await eventually_gone(lambda: s2.get_basin_config(name), "basin_not_found")
        await expect_error(s2.delete_basin(name), 404, "basin_not_found")
        await s2.delete_basin(name, ignore_not_found=True)

    run(server_url, body)


def test_ensure_basin(server_url: str, unique: str) -> None:
    name = f"sdk-ensure-{unique}"

    async def body(s2: S2) -> None:
        created = await s2.ensure_basin(name)
        assert created.status == EnsureStatus.CREATED
        assert created.basin.name == name

        unchanged = await s2.ensure_basin(name)
        assert unchanged.status == EnsureStatus.CONFIG_UNCHANGED
        assert unchanged.basin.created_at == created.basin.created_at

        config = BasinConfig(create_stream_on_append=True)
        updated = await s2.ensure_basin(name, config=config)
        assert updated.status == EnsureStatus.CONFIG_UPDATED
        assert updated.basin.created_at == created.basin.created_at
        assert (await s2.get_basin_config(name)).create_stream_on_append is True
        assert (await s2.ensure_basin(name, config=config)).status == EnsureStatus.CONFIG_UNCHANGED

        # Ensure is declarative: what is left out is reset to the default.
        reset = await s2.ensure_basin(name)
        assert reset.status == EnsureStatus.CONFIG_UPDATED
        assert (await s2.get_basin_config(name)).create_stream_on_append is False

    run(server_url, body)


def test_list_basins(server_url: str, unique: str) -> None:
    prefix = f"sdk-list-{unique}-"
    names = [f"{prefix}{suffix}" for suffix in ("a", "b", "c", "d")]

    async def body(s2: S2) -> None:
        for name in reversed(names):
            await s2.create_basin(name)

        page = await s2.list_basins(prefix=prefix)
        assert [b.name for b in page.items] == names
        assert page.has_more is False
        assert all(b.deleted_at is None for b in page.items)

        first = await s2.list_basins(prefix=prefix, limit=2)
        assert [b.name for b in first.items] == names[:2]
        assert first.has_more is True

        rest = await s2.list_basins(prefix=prefix, start_after=first.items[-1].name, limit=2)
        assert [b.name for b in rest.items] == names[2:]
        assert rest.has_more is False

        after_c = await s2.list_basins(prefix=prefix, start_after=names[2])
        assert [b.name for b in after_c.items] == names[3:]

        assert [b.name async for b in s2.list_all_basins(prefix=prefix)] == names
        empty = await s2.list_basins(prefix=f"{prefix}zzz")
        assert (empty.items, empty.has_more) == ([], False)

    run(server_url, body)


def test_stream_lifecycle(server_url: str, unique: str) -> None:
    basin_name = f"sdk-streams-{unique}"

    async def body(s2: S2) -> None:
        await s2.create_basin(
            basin_name,
            config=BasinConfig(default_stream_config=StreamConfig(retention_policy=86400)),
        )
        basin = s2.basin(basin_name)

        info = await basin.create_stream(
            "orders/2026", config=StreamConfig(timestamping=Timestamping(uncapped=True))
        )
        assert info.name == "orders/2026"
        assert info.deleted_at is None
        assert info.cipher is None

        # The stored config is fully resolved: stream value, then basin default, then system.
        assert await basin.get_stream_config("orders/2026") == StreamConfig(
            storage_class="express",
            retention_policy=86400,
            timestamping=Timestamping(mode=TimestampingMode.CLIENT_PREFER, uncapped=True),
            delete_on_empty_min_age=0,
        )

        error = await expect_error(
            basin.create_stream("orders/2026"), 409, "resource_already_exists"
        )
        assert error.message == f"stream `orders/2026` in basin `{basin_name}` already exists"

        reconfigured = await basin.reconfigure_stream(
            "orders/2026",
            config=StreamConfig(
                retention_policy="infinite",
                timestamping=Timestamping(mode=TimestampingMode.CLIENT_REQUIRE),
                delete_on_empty_min_age=120,
            ),
        )
        assert reconfigured == StreamConfig(
            storage_class="express",
            retention_policy="infinite",
            timestamping=Timestamping(mode=TimestampingMode.CLIENT_REQUIRE, uncapped=True),
            delete_on_empty_min_age=120,
        )
        assert await basin.get_stream_config("orders/2026") == reconfigured

        await basin.delete_stream("orders/2026")
        await eventually_gone(lambda: basin.get_stream_config("orders/2026"), "stream_not_found")
        await expect_error(basin.delete_stream("orders/2026"), 404, "stream_not_found")
        await basin.delete_stream("orders/2026", ignore_not_found=True)
        # The name is free again.
        assert (await basin.create_stream("orders/2026")).name == "orders/2026"

    run(server_url, body)


def test_ensure_and_list_streams(server_url: str, unique: str) -> None:
    basin_name = f"sdk-ensure-streams-{unique}"

    async def body(s2: S2) -> None:
        await s2.create_basin(basin_name)
        basin = s2.basin(basin_name)

        created = await basin.ensure_stream("s/1")
        assert created.status == EnsureStatus.CREATED
        assert created.stream.name == "s/1"
        assert (await basin.ensure_stream("s/1")).status == EnsureStatus.CONFIG_UNCHANGED
        config = StreamConfig(storage_class="standard")
        updated = await basin.ensure_stream("s/1", config=config)
        assert updated.status == EnsureStatus.CONFIG_UPDATED
        assert updated.stream.created_at == created.stream.created_at
        assert (await basin.get_stream_config("s/1")).storage_class == "standard"
        assert (await basin.ensure_stream("s/1", config=config)).status == (
            EnsureStatus.CONFIG_UNCHANGED
        )

        for name in ("s/3", "s/2", "t/1", "s/4"):
            await basin.create_stream(name)

        page = await basin.list_streams(prefix="s/")
        assert [s.name for s in page.items] == ["s/1", "s/2", "s/3", "s/4"]
        assert page.has_more is False

        first = await basin.list_streams(prefix="s/", limit=3)
        assert [s.name for s in first.items] == ["s/1", "s/2", "s/3"]
        assert first.has_more is True
        rest = await basin.list_streams(prefix="s/", start_after="s/3")
        assert [s.name for s in rest.items] == ["s/4"]
        assert rest.has_more is False

        everything = [s.name async for s in basin.list_all_streams()]
        assert everything == ["s/1", "s/2", "s/3", "s/4", "t/1"]

    run(server_url, body)


def test_errors_have_the_canonical_codes(server_url: str, unique: str) -> None:
    missing_basin = f"sdk-missing-{unique}"
    basin_name = f"sdk-errors-{unique}"

    async def body(s2: S2) -> None:
        error = await expect_error(s2.get_basin_config(missing_basin), 404, "basin_not_found")
        assert error.message == f"basin `{missing_basin}` not found"
        await expect_error(
            s2.reconfigure_basin(missing_basin, config=BasinConfig(create_stream_on_read=True)),
            404,
            "basin_not_found",
        )
        missing = s2.basin(missing_basin)
        await expect_error(missing.create_stream("x"), 404, "basin_not_found")
        await expect_error(missing.ensure_stream("x"), 404, "basin_not_found")
        # A stream in a missing basin reads as a missing stream.
        await expect_error(missing.get_stream_config("x"), 404, "stream_not_found")
        # Listing the streams of a missing basin is not an error.
        page = await missing.list_streams()
        assert (page.items, page.has_more) == ([], False)

        await s2.create_basin(basin_name)
        basin = s2.basin(basin_name)
        error = await expect_error(basin.get_stream_config("nope"), 404, "stream_not_found")
        assert error.message == f"stream `nope` in basin `{basin_name}` not found"
        await expect_error(
            basin.reconfigure_stream("nope", config=StreamConfig(storage_class="standard")),
            404,
            "stream_not_found",
        )
        await expect_error(
            basin.create_stream("zero", config=StreamConfig(retention_policy=0)), 422, "invalid"
        )
        await expect_error(
            s2.reconfigure_basin(
                basin_name,
                config=BasinConfig(default_stream_config=StreamConfig(retention_policy=0)),
            ),
            422,
            "invalid",
        )

    run(server_url, body)
