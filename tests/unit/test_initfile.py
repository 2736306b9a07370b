"""The declarative init file (spec §9): parsing, validation and ensure semantics."""

from __future__ import annotations

from typing import Any

import pytest

from basins.models import Basin
from s2site import initfile
from storagecore.config import (
    Cipher,
    OptionalStreamConfig,
    RetentionPolicy,
    StorageClass,
    TimestampingMode,
)
from streams.models import Stream


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("7d", 604800), ("1w", 604800), ("1week", 604800), ("2h 30m", 9000), ("90s", 90)],
)
def test_durations(text: str, seconds: int) -> None:
    assert initfile.parse_duration_s(text) == seconds


@pytest.mark.parametrize("text", ["", "7", "7 parsecs", "d7", "1h x"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(initfile.InitFileError):
        initfile.parse_duration_s(text)


def _document() -> dict[str, Any]:
    return {
        "basins": [
            {
                "name": "init-basin",
                "config": {
                    "default_stream_config": {"retention_policy": "infinite"},
                    "stream_cipher": "aegis-256",
                    "create_stream_on_append": True,
                },
                "streams": [
                    {
                        "name": "events",
                        "config": {
                            "storage_class": "standard",
                            "retention_policy": "1d",
                            "timestamping": {"mode": "arrival", "uncapped": True},
                            "delete_on_empty": {"min_age": "1h"},
                        },
                    },
                    {"name": "plain"},
                ],
            }
        ]
    }


def test_parse() -> None:
    (basin,) = initfile.parse(_document())
    assert basin.config.stream_cipher is Cipher.AEGIS_256
    assert basin.config.default_stream_config.retention_policy == RetentionPolicy(None)
    assert basin.streams[0].config == OptionalStreamConfig(
        storage_class=StorageClass.STANDARD,
        retention_policy=RetentionPolicy(86400),
        timestamping_mode=TimestampingMode.ARRIVAL,
        timestamping_uncapped=True,
        delete_on_empty_min_age_s=3600,
    )
    assert basin.streams[1].config == OptionalStreamConfig()


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d["basins"][0].update(colour="red"),
        lambda d: d["basins"][0]["config"].update(colour="red"),
        lambda d: d["basins"][0]["streams"][0]["config"].update(colour="red"),
        lambda d: d["basins"][0]["streams"].append({"name": "plain"}),
        lambda d: d["basins"].append({"name": "init-basin"}),
        lambda d: d["basins"][0]["streams"][0]["config"].update(retention_policy="0s"),
        lambda d: d["basins"][0].update(name="Bad"),
        lambda d: d["basins"][0]["config"].update(stream_cipher="rot13"),
    ],
)
def test_rejections(mutate: Any) -> None:
    document = _document()
    mutate(document)
    with pytest.raises(initfile.InitFileError):
        initfile.parse(document)


@pytest.mark.django_db
def test_apply_is_ensure_and_resets_missing_fields() -> None:
    initfile.apply(initfile.parse(_document()))
    stream = Stream.objects.get(basin__name="init-basin", name="events")
    assert stream.stream_config().retention_policy == RetentionPolicy(86400)
    assert stream.cipher == "aegis-256"
    plain = Stream.objects.get(basin__name="init-basin", name="plain")
    assert plain.stream_config().retention_policy == RetentionPolicy(None)  # basin default

    document = _document()
    del document["basins"][0]["streams"][0]["config"]
    initfile.apply(initfile.parse(document))  # applied again on the next start
    stream.refresh_from_db()
    assert stream.stream_config().storage_class is StorageClass.EXPRESS
    assert stream.stream_config().retention_policy == RetentionPolicy(None)
    assert Basin.objects.count() == 1
