"""Admin forms. They build the same typed values as the API (``storagecore.config``)
and validate them with the same rules; saving goes through the services."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from basins.models import Basin
from storagecore.config import (
    BasinConfig,
    Cipher,
    OptionalStreamConfig,
    RetentionPolicy,
    StorageClass,
    TimestampingMode,
)
from storagecore.errors import S2Error
from storagecore.names import NameRejected, parse_basin_name

_DEFAULT = [("", "(default)")]

STREAM_CONFIG_FIELDS = (
    "storage_class",
    "retention_policy",
    "retention_age_s",
    "timestamping_mode",
    "timestamping_uncapped",
    "delete_on_empty_min_age_s",
)


class StreamConfigFields(forms.Form):
    """The fields of a stream configuration; a blank field means 'not set'."""

    storage_class = forms.ChoiceField(
        choices=_DEFAULT + [(c.value, c.value) for c in StorageClass], required=False
    )
    retention_policy = forms.ChoiceField(
        choices=[*_DEFAULT, ("age", "age"), ("infinite", "infinite")], required=False
    )
    retention_age_s = forms.IntegerField(
        required=False, min_value=0, label="Retention age (seconds)"
    )
    timestamping_mode = forms.ChoiceField(
        choices=_DEFAULT + [(m.value, m.value) for m in TimestampingMode], required=False
    )
    timestamping_uncapped = forms.ChoiceField(
        choices=[*_DEFAULT, ("true", "yes"), ("false", "no")], required=False
    )
    delete_on_empty_min_age_s = forms.IntegerField(
        required=False, min_value=0, label="Delete-on-empty minimum age (seconds; 0 = off)"
    )

    @staticmethod
    def initial_for(config: OptionalStreamConfig) -> dict[str, Any]:
        retention = config.retention_policy
        uncapped = config.timestamping_uncapped
        return {
            "storage_class": config.storage_class.value if config.storage_class else "",
            "retention_policy": (
                "" if retention is None else ("infinite" if retention.age_s is None else "age")
            ),
            "retention_age_s": retention.age_s if retention else None,
            "timestamping_mode": (
                config.timestamping_mode.value if config.timestamping_mode else ""
            ),
            "timestamping_uncapped": "" if uncapped is None else str(uncapped).lower(),
            "delete_on_empty_min_age_s": config.delete_on_empty_min_age_s,
        }

    def stream_config(self) -> OptionalStreamConfig:
        """The configuration in the cleaned data; raises ValidationError like the API's 422."""
        data = self.cleaned_data
        retention = None
        if data.get("retention_policy") == "infinite":
            retention = RetentionPolicy(None)
        elif data.get("retention_policy") == "age":
            if data.get("retention_age_s") is None:
                raise ValidationError({"retention_age_s": "Give the retention age in seconds."})
            retention = RetentionPolicy(data["retention_age_s"])
        uncapped = data.get("timestamping_uncapped")
        mode = data.get("timestamping_mode")
        storage_class = data.get("storage_class")
        config = OptionalStreamConfig(
            storage_class=StorageClass(storage_class) if storage_class else None,
            retention_policy=retention,
            timestamping_mode=TimestampingMode(mode) if mode else None,
            timestamping_uncapped=None if not uncapped else uncapped == "true",
            delete_on_empty_min_age_s=data.get("delete_on_empty_min_age_s"),
        )
        try:
            config.validate()
        except S2Error as exc:
            raise ValidationError({"retention_age_s": exc.message}) from None
        return config


class BasinAdminForm(StreamConfigFields, forms.ModelForm):  # type: ignore[misc]
    """A basin: its name, and its configuration with the default stream configuration."""

    stream_cipher = forms.ChoiceField(
        choices=[("", "(none)")] + [(c.value, c.value) for c in Cipher], required=False
    )
    create_stream_on_append = forms.BooleanField(required=False)
    create_stream_on_read = forms.BooleanField(required=False)

    class Meta:
        model = Basin
        fields = ["name"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            config = self.instance.basin_config()
            self.initial.update(self.initial_for(config.default_stream_config))
            self.initial["stream_cipher"] = (
                config.stream_cipher.value if config.stream_cipher else ""
            )
            self.initial["create_stream_on_append"] = config.create_stream_on_append
            self.initial["create_stream_on_read"] = config.create_stream_on_read

    def clean_name(self) -> str:
        try:
            return parse_basin_name(self.cleaned_data["name"])
        except NameRejected as exc:
            raise ValidationError(str(exc)) from None

    def basin_config(self) -> BasinConfig:
        cipher = self.cleaned_data.get("stream_cipher")
        return BasinConfig(
            default_stream_config=self.stream_config(),
            stream_cipher=Cipher(cipher) if cipher else None,
            create_stream_on_append=bool(self.cleaned_data.get("create_stream_on_append")),
            create_stream_on_read=bool(self.cleaned_data.get("create_stream_on_read")),
        )

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean()
        if self.instance.pk and self.instance.is_deleting:
            raise ValidationError("This basin is being deleted.")
        if not self.errors:
            self.cleaned_config = self.basin_config()
        return cleaned
