"""Basin and stream configuration: typed values, resolution and reconfiguration (spec §2.2, §2.6).

Three shapes exist, as in S2:

* ``OptionalStreamConfig`` -- every field may be unset. A basin's default stream
  configuration is stored this way (sparse), and so is what a client asked for.
* ``StreamConfig`` -- every field concrete. A stream stores its configuration
  resolved field by field: stream value, then basin default, then system default.
* ``StreamReconfiguration`` / ``BasinReconfiguration`` -- PATCH documents in which
  every field is absent (``UNSET``: leave alone), ``None`` (clear) or a value.

``from_json`` constructors take already-decoded JSON values. A value of the wrong
shape raises ``BadJson`` (400); a well-formed but unacceptable value raises
``Invalid`` (422), and only after the whole document has been read, as the
reference server deserializes first and validates second.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field, replace
from typing import Any, Final, TypeVar

from storagecore import limits
from storagecore.errors import BadJson, Invalid


class Unset(enum.Enum):
    """Marker for a field absent from a PATCH document."""

    UNSET = "unset"


UNSET: Final = Unset.UNSET


class StorageClass(enum.StrEnum):
    STANDARD = "standard"
    EXPRESS = "express"


class TimestampingMode(enum.StrEnum):
    CLIENT_PREFER = "client-prefer"
    CLIENT_REQUIRE = "client-require"
    ARRIVAL = "arrival"


class Cipher(enum.StrEnum):
    AEGIS_256 = "aegis-256"
    AES_256_GCM = "aes-256-gcm"


@dataclass(frozen=True)
class RetentionPolicy:
    """Retention by age in seconds; ``age_s is None`` means infinite."""

    age_s: int | None

    def validate(self) -> None:
        if self.age_s == 0:
            raise Invalid("age must be greater than 0 seconds")

    def to_json(self) -> dict[str, Any]:
        if self.age_s is None:
            return {"infinite": {}}
        return {"age": self.age_s}


DEFAULT_RETENTION = RetentionPolicy(limits.default_retention_age_s)


@dataclass(frozen=True)
class StreamConfig:
    """A fully resolved stream configuration."""

    storage_class: StorageClass = StorageClass.EXPRESS
    retention_policy: RetentionPolicy = DEFAULT_RETENTION
    timestamping_mode: TimestampingMode = TimestampingMode.CLIENT_PREFER
    timestamping_uncapped: bool = False
    delete_on_empty_min_age_s: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "storage_class": self.storage_class.value,
            "retention_policy": self.retention_policy.to_json(),
            "timestamping": {
                "mode": self.timestamping_mode.value,
                "uncapped": self.timestamping_uncapped,
            },
            "delete_on_empty": {"min_age_secs": self.delete_on_empty_min_age_s},
        }

    def to_optional(self) -> OptionalStreamConfig:
        return OptionalStreamConfig(
            storage_class=self.storage_class,
            retention_policy=self.retention_policy,
            timestamping_mode=self.timestamping_mode,
            timestamping_uncapped=self.timestamping_uncapped,
            delete_on_empty_min_age_s=self.delete_on_empty_min_age_s,
        )

    @classmethod
    def from_json(cls, value: Any) -> StreamConfig:
        """Read a stored, resolved configuration (unset fields take system defaults)."""
        return OptionalStreamConfig.from_json(value).merge(OptionalStreamConfig())


@dataclass(frozen=True)
class OptionalStreamConfig:
    storage_class: StorageClass | None = None
    retention_policy: RetentionPolicy | None = None
    timestamping_mode: TimestampingMode | None = None
    timestamping_uncapped: bool | None = None
    delete_on_empty_min_age_s: int | None = None

    def merge(self, basin_defaults: OptionalStreamConfig) -> StreamConfig:
        """Resolve field by field: this value, then the basin default, then the system default."""
        system = StreamConfig()
        return StreamConfig(
            storage_class=_first(
                self.storage_class, basin_defaults.storage_class, system.storage_class
            ),
            retention_policy=_first(
                self.retention_policy, basin_defaults.retention_policy, system.retention_policy
            ),
            timestamping_mode=_first(
                self.timestamping_mode,
                basin_defaults.timestamping_mode,
                system.timestamping_mode,
            ),
            timestamping_uncapped=_first(
                self.timestamping_uncapped,
                basin_defaults.timestamping_uncapped,
                system.timestamping_uncapped,
            ),
            delete_on_empty_min_age_s=_first(
                self.delete_on_empty_min_age_s,
                basin_defaults.delete_on_empty_min_age_s,
                system.delete_on_empty_min_age_s,
            ),
        )

    def is_empty(self) -> bool:
        return self == OptionalStreamConfig()

    def validate(self) -> None:
        if self.retention_policy is not None:
            self.retention_policy.validate()

    def to_json(self) -> dict[str, Any] | None:
        """The sparse API form: ``None`` when nothing is set (spec §2.2)."""
        if self.is_empty():
            return None
        timestamping = None
        if self.timestamping_mode is not None or self.timestamping_uncapped is not None:
            timestamping = {
                "mode": None if self.timestamping_mode is None else self.timestamping_mode.value,
                "uncapped": self.timestamping_uncapped,
            }
        delete_on_empty = None
        if self.delete_on_empty_min_age_s is not None:
            delete_on_empty = {"min_age_secs": self.delete_on_empty_min_age_s}
        return {
            "storage_class": None if self.storage_class is None else self.storage_class.value,
            "retention_policy": (
                None if self.retention_policy is None else self.retention_policy.to_json()
            ),
            "timestamping": timestamping,
            "delete_on_empty": delete_on_empty,
        }

    @classmethod
    def from_json(cls, value: Any) -> OptionalStreamConfig:
        """Parse an API ``StreamConfig`` object (or ``null``) without validating it."""
        if value is None:
            return cls()
        obj = _object(value, "StreamConfig")
        timestamping = _nullable_object(obj.get("timestamping"), "TimestampingConfig")
        delete_on_empty = _nullable_object(obj.get("delete_on_empty"), "DeleteOnEmptyConfig")
        return cls(
            storage_class=_nullable_enum(obj.get("storage_class"), StorageClass),
            retention_policy=_nullable_retention(obj.get("retention_policy")),
            timestamping_mode=(
                None
                if timestamping is None
                else _nullable_enum(timestamping.get("mode"), TimestampingMode)
            ),
            timestamping_uncapped=(
                None if timestamping is None else _nullable_bool(timestamping.get("uncapped"))
            ),
            delete_on_empty_min_age_s=(
                None
                if delete_on_empty is None
                else _u64(delete_on_empty.get("min_age_secs", 0), "min_age_secs")
            ),
        )


@dataclass(frozen=True)
class TimestampingReconfiguration:
    mode: TimestampingMode | Unset | None = UNSET
    uncapped: bool | Unset | None = UNSET


@dataclass(frozen=True)
class DeleteOnEmptyReconfiguration:
    min_age_s: int | Unset | None = UNSET


@dataclass(frozen=True)
class StreamReconfiguration:
    storage_class: StorageClass | Unset | None = UNSET
    retention_policy: RetentionPolicy | Unset | None = UNSET
    timestamping: TimestampingReconfiguration | Unset | None = UNSET
    delete_on_empty: DeleteOnEmptyReconfiguration | Unset | None = UNSET

    def validate(self) -> None:
        if isinstance(self.retention_policy, RetentionPolicy):
            self.retention_policy.validate()

    def apply(self, config: OptionalStreamConfig) -> OptionalStreamConfig:
        changes: dict[str, Any] = {}
        if self.storage_class is not UNSET:
            changes["storage_class"] = self.storage_class
        if self.retention_policy is not UNSET:
            changes["retention_policy"] = self.retention_policy
        if self.timestamping is None:
            changes["timestamping_mode"] = None
            changes["timestamping_uncapped"] = None
        elif isinstance(self.timestamping, TimestampingReconfiguration):
            if self.timestamping.mode is not UNSET:
                changes["timestamping_mode"] = self.timestamping.mode
            if self.timestamping.uncapped is not UNSET:
                changes["timestamping_uncapped"] = self.timestamping.uncapped
        if self.delete_on_empty is None:
            changes["delete_on_empty_min_age_s"] = None
        elif (
            isinstance(self.delete_on_empty, DeleteOnEmptyReconfiguration)
            and self.delete_on_empty.min_age_s is not UNSET
        ):
            changes["delete_on_empty_min_age_s"] = self.delete_on_empty.min_age_s
        return replace(config, **changes)

    @classmethod
    def from_json(cls, value: Any) -> StreamReconfiguration:
        obj = _object(value, "StreamReconfiguration")
        timestamping: TimestampingReconfiguration | Unset | None = UNSET
        if "timestamping" in obj:
            ts = _nullable_object(obj["timestamping"], "TimestampingReconfiguration")
            timestamping = None
            if ts is not None:
                timestamping = TimestampingReconfiguration(
                    mode=(_nullable_enum(ts["mode"], TimestampingMode) if "mode" in ts else UNSET),
                    uncapped=_nullable_bool(ts["uncapped"]) if "uncapped" in ts else UNSET,
                )
        delete_on_empty: DeleteOnEmptyReconfiguration | Unset | None = UNSET
        if "delete_on_empty" in obj:
            doe = _nullable_object(obj["delete_on_empty"], "DeleteOnEmptyReconfiguration")
            delete_on_empty = None
            if doe is not None:
                min_age: int | Unset | None = UNSET
                if "min_age_secs" in doe:
                    raw = doe["min_age_secs"]
                    min_age = None if raw is None else _u64(raw, "min_age_secs")
                delete_on_empty = DeleteOnEmptyReconfiguration(min_age_s=min_age)
        return cls(
            storage_class=(
                _nullable_enum(obj["storage_class"], StorageClass)
                if "storage_class" in obj
                else UNSET
            ),
            retention_policy=(
                _nullable_retention(obj["retention_policy"]) if "retention_policy" in obj else UNSET
            ),
            timestamping=timestamping,
            delete_on_empty=delete_on_empty,
        )


@dataclass(frozen=True)
class BasinConfig:
    default_stream_config: OptionalStreamConfig = field(default_factory=OptionalStreamConfig)
    stream_cipher: Cipher | None = None
    create_stream_on_append: bool = False
    create_stream_on_read: bool = False

    def validate(self) -> None:
        self.default_stream_config.validate()

    def to_json(self) -> dict[str, Any]:
        return {
            "default_stream_config": self.default_stream_config.to_json(),
            "stream_cipher": None if self.stream_cipher is None else self.stream_cipher.value,
            "create_stream_on_append": self.create_stream_on_append,
            "create_stream_on_read": self.create_stream_on_read,
        }

    @classmethod
    def from_json(cls, value: Any) -> BasinConfig:
        """Parse an API ``BasinConfig`` object (or ``null``) without validating it."""
        if value is None:
            return cls()
        obj = _object(value, "BasinConfig")
        return cls(
            default_stream_config=OptionalStreamConfig.from_json(obj.get("default_stream_config")),
            stream_cipher=_nullable_enum(obj.get("stream_cipher"), Cipher),
            create_stream_on_append=_bool(obj.get("create_stream_on_append", False)),
            create_stream_on_read=_bool(obj.get("create_stream_on_read", False)),
        )


@dataclass(frozen=True)
class BasinReconfiguration:
    default_stream_config: StreamReconfiguration | Unset | None = UNSET
    stream_cipher: Cipher | Unset | None = UNSET
    create_stream_on_append: bool | Unset = UNSET
    create_stream_on_read: bool | Unset = UNSET

    def validate(self) -> None:
        if isinstance(self.default_stream_config, StreamReconfiguration):
            self.default_stream_config.validate()

    def apply(self, config: BasinConfig) -> BasinConfig:
        changes: dict[str, Any] = {}
        if self.default_stream_config is None:
            changes["default_stream_config"] = OptionalStreamConfig()
        elif isinstance(self.default_stream_config, StreamReconfiguration):
            changes["default_stream_config"] = self.default_stream_config.apply(
                config.default_stream_config
            )
        if self.stream_cipher is not UNSET:
            changes["stream_cipher"] = self.stream_cipher
        if self.create_stream_on_append is not UNSET:
            changes["create_stream_on_append"] = self.create_stream_on_append
        if self.create_stream_on_read is not UNSET:
            changes["create_stream_on_read"] = self.create_stream_on_read
        return replace(config, **changes)

    @classmethod
    def from_json(cls, value: Any) -> BasinReconfiguration:
        obj = _object(value, "BasinReconfiguration")
        default: StreamReconfiguration | Unset | None = UNSET
        if "default_stream_config" in obj:
            raw = obj["default_stream_config"]
            default = None if raw is None else StreamReconfiguration.from_json(raw)
        return cls(
            default_stream_config=default,
            stream_cipher=(
                _nullable_enum(obj["stream_cipher"], Cipher) if "stream_cipher" in obj else UNSET
            ),
            create_stream_on_append=(
                _bool(obj["create_stream_on_append"]) if "create_stream_on_append" in obj else UNSET
            ),
            create_stream_on_read=(
                _bool(obj["create_stream_on_read"]) if "create_stream_on_read" in obj else UNSET
            ),
        )


def canonical_json(value: Any) -> str:
    """A stable text form of a JSON value, for fingerprints and equality."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


# JSON shape checks. Each raises BadJson with a message in the spirit of a deserializer.

_T = TypeVar("_T")
_E = TypeVar("_E", bound=enum.Enum)


def _first(*values: _T | None) -> _T:
    for value in values:
        if value is not None:
            return value
    raise AssertionError("the last value is always a system default")


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadJson(f"invalid type: {_kind(value)}, expected struct {what}")
    return value


def _nullable_object(value: Any, what: str) -> dict[str, Any] | None:
    return None if value is None else _object(value, what)


def _bool(value: Any) -> bool:
    if type(value) is not bool:
        raise BadJson(f"invalid type: {_kind(value)}, expected a boolean")
    return value


def _nullable_bool(value: Any) -> bool | None:
    return None if value is None else _bool(value)


def _u64(value: Any, what: str) -> int:
    if type(value) is not int:
        raise BadJson(f"{what}: invalid type: {_kind(value)}, expected u64")
    if not 0 <= value <= limits.u64_max:
        raise BadJson(f"{what}: invalid value: integer `{value}`, expected u64")
    return value


def _nullable_enum(value: Any, enum_type: type[_E]) -> _E | None:
    if value is None:
        return None
    if isinstance(value, str):
        for member in enum_type:
            if member.value == value:
                return member
        variants = ", ".join(f"`{m.value}`" for m in enum_type)
        raise BadJson(f"unknown variant `{value}`, expected one of {variants}")
    raise BadJson(f"invalid type: {_kind(value)}, expected a string")


def _nullable_retention(value: Any) -> RetentionPolicy | None:
    if value is None:
        return None
    obj = _object(value, "RetentionPolicy")
    if len(obj) != 1:
        raise BadJson("retention_policy: expected an object with exactly one key")
    ((key, inner),) = obj.items()
    if key == "age":
        return RetentionPolicy(_u64(inner, "age"))
    if key == "infinite":
        _object(inner, "InfiniteRetention")
        return RetentionPolicy(None)
    raise BadJson(f"unknown variant `{key}`, expected `age` or `infinite`")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{str(value).lower()}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{value}`"
    if isinstance(value, str):
        return f"string {json.dumps(value)}"
    if isinstance(value, list):
        return "sequence"
    return "map"
