"""Configuration parsing, resolution and reconfiguration (spec §2.2, §2.6)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storagecore.config import (
    BasinConfig,
    BasinReconfiguration,
    Cipher,
    OptionalStreamConfig,
    RetentionPolicy,
    StorageClass,
    StreamConfig,
    StreamReconfiguration,
    TimestampingMode,
)
from storagecore.errors import BadJson, ErrorCode, Invalid

optional_configs = st.builds(
    OptionalStreamConfig,
    storage_class=st.none() | st.sampled_from(StorageClass),
    retention_policy=st.none() | st.builds(RetentionPolicy, st.none() | st.integers(1, 2**64 - 1)),
    timestamping_mode=st.none() | st.sampled_from(TimestampingMode),
    timestamping_uncapped=st.none() | st.booleans(),
    delete_on_empty_min_age_s=st.none() | st.integers(0, 2**64 - 1),
)
basin_configs = st.builds(
    BasinConfig,
    default_stream_config=optional_configs,
    stream_cipher=st.none() | st.sampled_from(Cipher),
    create_stream_on_append=st.booleans(),
    create_stream_on_read=st.booleans(),
)


@given(optional_configs)
def test_optional_stream_config_round_trips_through_json(config: OptionalStreamConfig) -> None:
    assert OptionalStreamConfig.from_json(config.to_json()) == config


@given(basin_configs)
def test_basin_config_round_trips_through_json(config: BasinConfig) -> None:
    assert BasinConfig.from_json(config.to_json()) == config


@given(optional_configs, optional_configs)
def test_resolution_takes_stream_then_basin_then_system(
    stream: OptionalStreamConfig, basin: OptionalStreamConfig
) -> None:
    resolved = stream.merge(basin)
    system = StreamConfig()
    for name in (
        "storage_class",
        "retention_policy",
        "timestamping_mode",
        "timestamping_uncapped",
    ):
        expected = getattr(stream, name)
        if expected is None:
            expected = getattr(basin, name)
        if expected is None:
            expected = getattr(system, name)
        assert getattr(resolved, name) == expected
    assert StreamConfig.from_json(resolved.to_json()) == resolved


def test_system_defaults_render_exactly() -> None:
    assert StreamConfig().to_json() == {
        "storage_class": "express",
        "retention_policy": {"age": 604800},
        "timestamping": {"mode": "client-prefer", "uncapped": False},
        "delete_on_empty": {"min_age_secs": 0},
    }
    assert BasinConfig().to_json() == {
        "default_stream_config": None,
        "stream_cipher": None,
        "create_stream_on_append": False,
        "create_stream_on_read": False,
    }


def test_sparse_default_stream_config_rendering() -> None:
    only_mode = OptionalStreamConfig(timestamping_mode=TimestampingMode.ARRIVAL)
    assert only_mode.to_json() == {
        "storage_class": None,
        "retention_policy": None,
        "timestamping": {"mode": "arrival", "uncapped": None},
        "delete_on_empty": None,
    }
    zero_age = OptionalStreamConfig.from_json({"delete_on_empty": {}})
    assert zero_age.to_json() == {
        "storage_class": None,
        "retention_policy": None,
        "timestamping": None,
        "delete_on_empty": {"min_age_secs": 0},
    }
    assert OptionalStreamConfig.from_json({"timestamping": {}}).to_json() is None


@pytest.mark.parametrize(
    "document",
    [
        [],
        {"storage_class": "fast"},
        {"storage_class": 1},
        {"retention_policy": "infinite"},
        {"retention_policy": {"infinite": None}},
        {"retention_policy": {"age": -1}},
        {"retention_policy": {"age": 1.5}},
        {"retention_policy": {"age": 2**64}},
        {"retention_policy": {"age": 1, "infinite": {}}},
        {"retention_policy": {"forever": {}}},
        {"timestamping": {"mode": "now"}},
        {"timestamping": {"uncapped": "yes"}},
        {"delete_on_empty": {"min_age_secs": None}},
        {"delete_on_empty": {"min_age_secs": True}},
    ],
)
def test_malformed_stream_configs_are_bad_json(document: Any) -> None:
    with pytest.raises(BadJson):
        OptionalStreamConfig.from_json(document)


def test_zero_age_is_invalid_only_after_parsing() -> None:
    config = OptionalStreamConfig.from_json({"retention_policy": {"age": 0}})
    with pytest.raises(Invalid) as excinfo:
        config.validate()
    assert excinfo.value.code is ErrorCode.INVALID
    assert excinfo.value.message == "age must be greater than 0 seconds"
    # A shape error anywhere in the document wins over the semantic one.
    with pytest.raises(BadJson):
        OptionalStreamConfig.from_json({"retention_policy": {"age": 0}, "storage_class": "x"})


def test_stream_reconfiguration_absent_null_value() -> None:
    current = StreamConfig(
        storage_class=StorageClass.STANDARD,
        timestamping_mode=TimestampingMode.ARRIVAL,
        timestamping_uncapped=True,
        delete_on_empty_min_age_s=60,
    ).to_optional()
    basin = OptionalStreamConfig(timestamping_mode=TimestampingMode.CLIENT_REQUIRE)

    unchanged = StreamReconfiguration.from_json({}).apply(current).merge(basin)
    assert unchanged == current.merge(basin)

    nested = StreamReconfiguration.from_json({"timestamping": {"mode": "client-prefer"}})
    resolved = nested.apply(current).merge(basin)
    assert resolved.timestamping_mode is TimestampingMode.CLIENT_PREFER
    assert resolved.timestamping_uncapped is True  # kept

    cleared = StreamReconfiguration.from_json({"timestamping": None, "storage_class": None})
    resolved = cleared.apply(current).merge(basin)
    assert resolved.timestamping_mode is TimestampingMode.CLIENT_REQUIRE  # basin default
    assert resolved.timestamping_uncapped is False  # system default
    assert resolved.storage_class is StorageClass.EXPRESS

    doe = StreamReconfiguration.from_json({"delete_on_empty": {"min_age_secs": None}})
    assert doe.apply(current).merge(basin).delete_on_empty_min_age_s == 0
    keep = StreamReconfiguration.from_json({"delete_on_empty": {}})
    assert keep.apply(current).merge(basin).delete_on_empty_min_age_s == 60


def test_basin_reconfiguration() -> None:
    current = BasinConfig(
        default_stream_config=OptionalStreamConfig(
            storage_class=StorageClass.STANDARD, timestamping_uncapped=True
        ),
        stream_cipher=Cipher.AEGIS_256,
    )
    patched = BasinReconfiguration.from_json(
        {"default_stream_config": {"timestamping": {"mode": "arrival"}}, "stream_cipher": None}
    ).apply(current)
    assert patched.default_stream_config == OptionalStreamConfig(
        storage_class=StorageClass.STANDARD,
        timestamping_mode=TimestampingMode.ARRIVAL,
        timestamping_uncapped=True,
    )
    assert patched.stream_cipher is None
    cleared = BasinReconfiguration.from_json({"default_stream_config": None}).apply(current)
    assert cleared.default_stream_config.is_empty()
    with pytest.raises(BadJson):
        BasinReconfiguration.from_json({"create_stream_on_append": None})
    with pytest.raises(Invalid):
        BasinReconfiguration.from_json(
            {"default_stream_config": {"retention_policy": {"age": 0}}}
        ).validate()
