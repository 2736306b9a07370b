"""The declarative init file of ``serve --init-file`` (spec §9).

Format::

    {"basins": [{"name": B, "config": {...}, "streams": [{"name": S, "config": {...}}]}]}

Basin config keys: ``default_stream_config``, ``stream_cipher``,
``create_stream_on_append``, ``create_stream_on_read``. Stream config keys:
``storage_class``, ``retention_policy`` (``"infinite"`` or a duration such as
``"7d"``), ``timestamping`` (``mode``, ``uncapped``), ``delete_on_empty``
(``min_age``: a duration). Unknown keys, duplicate names and zero ages are
errors. Everything is applied in order with ensure (PUT) semantics, so fields
left out are reset to their defaults on every start.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from basins import services as basin_services
from storagecore.config import (
    BasinConfig,
    Cipher,
    OptionalStreamConfig,
    RetentionPolicy,
    StorageClass,
    TimestampingMode,
)
from storagecore.errors import S2Error
from storagecore.names import NameRejected, parse_basin_name, parse_stream_name
from streams import services as stream_services


class InitFileError(Exception):
    """The init file cannot be read, parsed or applied; the server must not start."""


@dataclass(frozen=True)
class StreamSpec:
    name: str
    config: OptionalStreamConfig


@dataclass(frozen=True)
class BasinSpec:
    name: str
    config: BasinConfig
    streams: tuple[StreamSpec, ...]


_UNIT_SECONDS = {
    "nsec": 1e-9, "ns": 1e-9,
    "usec": 1e-6, "us": 1e-6, "µs": 1e-6,
    "msec": 1e-3, "ms": 1e-3,
    "seconds": 1, "second": 1, "secs": 1, "sec": 1, "s": 1,
    "minutes": 60, "minute": 60, "mins": 60, "min": 60, "m": 60,
    "hours": 3600, "hour": 3600, "hrs": 3600, "hr": 3600, "h": 3600,
    "days": 86400, "day": 86400, "d": 86400,
    "weeks": 604800, "week": 604800, "w": 604800,
    "months": 2630016, "month": 2630016, "M": 2630016,
    "years": 31557600, "year": 31557600, "y": 31557600,
}  # fmt: skip
_DURATION_PART = re.compile(r"\s*(\d+)\s*([A-Za-zµ]+)")


def parse_duration_s(text: str) -> int:
    """A humantime-style duration (``"7d"``, ``"1week"``, ``"2h 30m"``) in whole seconds."""
    position, total = 0, 0.0
    stripped = text.strip()
    if not stripped:
        raise InitFileError(f"invalid duration {text!r}: empty")
    while position < len(stripped):
        match = _DURATION_PART.match(stripped, position)
        if match is None or match.group(2) not in _UNIT_SECONDS:
            raise InitFileError(f"invalid duration {text!r}")
        total += int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        position = match.end()
    return int(total)


def _object(value: Any, where: str, keys: set[str]) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InitFileError(f"{where}: expected an object")
    unknown = set(value) - keys
    if unknown:
        raise InitFileError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    return value


def _choice(value: Any, kind: type[StorageClass | TimestampingMode | Cipher], where: str) -> Any:
    if value is None:
        return None
    try:
        return kind(value)
    except ValueError:
        raise InitFileError(f"{where}: unknown value {value!r}") from None


def _optional_bool(value: Any, where: str) -> bool | None:
    if value is not None and type(value) is not bool:
        raise InitFileError(f"{where}: expected a boolean")
    return value


def _stream_config(value: Any, where: str) -> OptionalStreamConfig:
    if value is None:
        return OptionalStreamConfig()
    obj = _object(
        value, where, {"storage_class", "retention_policy", "timestamping", "delete_on_empty"}
    )
    retention = None
    raw_retention = obj.get("retention_policy")
    if raw_retention is not None:
        if not isinstance(raw_retention, str):
            raise InitFileError(f"{where}: retention_policy must be a string")
        if raw_retention.lower() == "infinite":
            retention = RetentionPolicy(None)
        else:
            retention = RetentionPolicy(parse_duration_s(raw_retention))
            if retention.age_s == 0:
                raise InitFileError(f"{where}: retention_policy age must be greater than 0")
    timestamping = obj.get("timestamping")
    mode = uncapped = None
    if timestamping is not None:
        ts = _object(timestamping, f"{where} timestamping", {"mode", "uncapped"})
        mode = _choice(ts.get("mode"), TimestampingMode, f"{where} timestamping.mode")
        uncapped = _optional_bool(ts.get("uncapped"), f"{where} timestamping.uncapped")
    min_age = None
    delete_on_empty = obj.get("delete_on_empty")
    if delete_on_empty is not None:
        doe = _object(delete_on_empty, f"{where} delete_on_empty", {"min_age"})
        if doe.get("min_age") is not None:
            if not isinstance(doe["min_age"], str):
                raise InitFileError(f"{where}: delete_on_empty.min_age must be a string")
            min_age = parse_duration_s(doe["min_age"])
    return OptionalStreamConfig(
        storage_class=_choice(obj.get("storage_class"), StorageClass, f"{where} storage_class"),
        retention_policy=retention,
        timestamping_mode=mode,
        timestamping_uncapped=uncapped,
        delete_on_empty_min_age_s=min_age,
    )


def _basin_config(value: Any, where: str) -> BasinConfig:
    if value is None:
        return BasinConfig()
    obj = _object(
        value,
        where,
        {
            "default_stream_config",
            "stream_cipher",
            "create_stream_on_append",
            "create_stream_on_read",
        },
    )
    return BasinConfig(
        default_stream_config=_stream_config(
            obj.get("default_stream_config"), f"{where} default_stream_config"
        ),
        stream_cipher=_choice(obj.get("stream_cipher"), Cipher, f"{where} stream_cipher"),
        create_stream_on_append=bool(
            _optional_bool(obj.get("create_stream_on_append"), f"{where} create_stream_on_append")
        ),
        create_stream_on_read=bool(
            _optional_bool(obj.get("create_stream_on_read"), f"{where} create_stream_on_read")
        ),
    )


def _name(value: Any, parse: Any, where: str) -> str:
    if not isinstance(value, str):
        raise InitFileError(f"{where}: name must be a string")
    try:
        return str(parse(value))
    except NameRejected as exc:
        raise InitFileError(f"{where}: {exc}") from None


def parse(document: Any) -> list[BasinSpec]:
    if not isinstance(document, dict):
        raise InitFileError("the init file must hold a JSON object")
    raw_basins = document.get("basins", [])
    if not isinstance(raw_basins, list):
        raise InitFileError("`basins` must be a list")
    specs: list[BasinSpec] = []
    seen_basins: set[str] = set()
    for index, raw in enumerate(raw_basins):
        obj = _object(raw, f"basins[{index}]", {"name", "config", "streams"})
        name = _name(obj.get("name"), parse_basin_name, f"basins[{index}]")
        if name in seen_basins:
            raise InitFileError(f"duplicate basin name {name!r}")
        seen_basins.add(name)
        raw_streams = obj.get("streams", [])
        if not isinstance(raw_streams, list):
            raise InitFileError(f"basin {name!r}: `streams` must be a list")
        streams: list[StreamSpec] = []
        seen_streams: set[str] = set()
        for s_index, raw_stream in enumerate(raw_streams):
            where = f"basin {name!r} streams[{s_index}]"
            s_obj = _object(raw_stream, where, {"name", "config"})
            s_name = _name(s_obj.get("name"), parse_stream_name, where)
            if s_name in seen_streams:
                raise InitFileError(f"duplicate stream name {s_name!r} in basin {name!r}")
            seen_streams.add(s_name)
            where = f"stream {s_name!r} in basin {name!r}"
            streams.append(StreamSpec(s_name, _stream_config(s_obj.get("config"), where)))
        basin_config = _basin_config(obj.get("config"), f"basin {name!r} config")
        specs.append(BasinSpec(name, basin_config, tuple(streams)))
    return specs


def load(path: Path) -> list[BasinSpec]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise InitFileError(f"failed to read init file {str(path)!r}: {exc}") from None
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise InitFileError(f"failed to parse init file {str(path)!r}: {exc}") from None
    return parse(document)


def apply(specs: list[BasinSpec]) -> None:
    for basin in specs:
        try:
            basin_services.do_ensure_basin(basin.name, basin.config)
        except S2Error as exc:
            raise InitFileError(f"failed to apply basin {basin.name!r}: {exc.message}") from None
        for stream in basin.streams:
            try:
                stream_services.do_ensure_stream(basin.name, stream.name, stream.config)
            except S2Error as exc:
                raise InitFileError(
                    f"failed to apply stream {basin.name!r}/{stream.name!r}: {exc.message}"
                ) from None
