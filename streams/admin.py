"""Django admin for streams: list, search, filter by state and basin, edit, delete -- via
the services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from basins.admin import StateFilter
from basins.forms import STREAM_CONFIG_FIELDS
from storagecore.errors import S2Error
from streams import services
from streams.forms import StreamAdminForm
from streams.models import Stream


@admin.register(Stream)
class StreamAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = StreamAdminForm
    list_display = ["name", "basin", "state", "cipher", "created_at", "deleted_at"]
    list_filter = [StateFilter, "basin"]
    list_select_related = ["basin"]
    search_fields = ["name", "basin__name"]
    ordering = ["basin__name", "name"]
    fieldsets = [
        (None, {"fields": ["basin", "name"]}),
        (
            "Configuration (blank: the basin's default, then the system default)",
            {"fields": list(STREAM_CONFIG_FIELDS)},
        ),
    ]

    @admin.display(description="state")
    def state(self, stream: Stream) -> str:
        return "deleting" if stream.is_deleting else "active"

    def get_readonly_fields(self, request: HttpRequest, obj: Stream | None = None) -> list[str]:
        return ["basin", "name", "cipher"] if obj is not None else ["cipher"]

    def save_model(self, request: HttpRequest, obj: Stream, form: Any, change: bool) -> None:
        basin_name = obj.basin.name
        try:
            if change:
                outcome = services.do_ensure_stream(basin_name, obj.name, form.cleaned_config)
            else:
                outcome = services.do_create_stream(basin_name, obj.name, form.cleaned_config, None)
        except S2Error as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        obj.pk = outcome.stream.pk

    def delete_model(self, request: HttpRequest, obj: Stream) -> None:
        services.do_delete_stream(obj.basin.name, obj.name)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Stream]) -> None:
        for stream in queryset.select_related("basin"):
            services.do_delete_stream(stream.basin.name, stream.name)
