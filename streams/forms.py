"""Admin form for a stream: its basin, name and configuration (same rules as the API)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from basins.forms import StreamConfigFields
from storagecore.names import NameRejected, parse_stream_name
from streams.models import Stream


class StreamAdminForm(StreamConfigFields, forms.ModelForm):  # type: ignore[misc]
    """Blank configuration fields take the basin's default, then the system default."""

    class Meta:
        model = Stream
        fields = ["basin", "name"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial.update(self.initial_for(self.instance.stream_config().to_optional()))

    def clean_name(self) -> str:
        try:
            return parse_stream_name(self.cleaned_data["name"])
        except NameRejected as exc:
            raise ValidationError(str(exc)) from None

    def clean(self) -> dict[str, Any]:
        cleaned: dict[str, Any] = super().clean()
        if self.instance.pk and self.instance.is_deleting:
            raise ValidationError("This stream is being deleted.")
        basin = cleaned.get("basin")
        if basin is not None and basin.is_deleting:
            raise ValidationError("The basin is being deleted.")
        if not self.errors:
            self.cleaned_config = self.stream_config()
        return cleaned
