"""Django admin for basins: list, search, filter by state, edit, delete -- via the services."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from basins import services
from basins.forms import STREAM_CONFIG_FIELDS, BasinAdminForm
from basins.models import Basin
from storagecore.errors import S2Error


class StateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "active"), ("deleting", "deleting")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "active":
            return queryset.filter(deleted_at__isnull=True)
        if self.value() == "deleting":
            return queryset.filter(deleted_at__isnull=False)
        return queryset


@admin.register(Basin)
class BasinAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = BasinAdminForm
    list_display = ["name", "state", "stream_count", "created_at", "deleted_at"]
    list_filter = [StateFilter]
    search_fields = ["name"]
    ordering = ["name"]
    fieldsets = [
        (None, {"fields": ["name"]}),
        (
            "Configuration",
            {"fields": ["stream_cipher", "create_stream_on_append", "create_stream_on_read"]},
        ),
        ("Default stream configuration", {"fields": list(STREAM_CONFIG_FIELDS)}),
    ]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Basin]:
        return super().get_queryset(request).annotate(_stream_count=Count("streams"))

    @admin.display(description="streams", ordering="_stream_count")
    def stream_count(self, basin: Any) -> int:
        return int(getattr(basin, "_stream_count", 0))

    @admin.display(description="state")
    def state(self, basin: Basin) -> str:
        return "deleting" if basin.is_deleting else "active"

    def get_readonly_fields(self, request: HttpRequest, obj: Basin | None = None) -> list[str]:
        return ["name"] if obj is not None else []

    def save_model(self, request: HttpRequest, obj: Basin, form: Any, change: bool) -> None:
        try:
            if change:
                outcome = services.do_ensure_basin(obj.name, form.cleaned_config)
            else:
                outcome = services.do_create_basin(obj.name, form.cleaned_config, None)
        except S2Error as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        obj.pk = outcome.basin.pk

    def delete_model(self, request: HttpRequest, obj: Basin) -> None:
        services.do_delete_basin(obj.name)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Basin]) -> None:
        for basin in queryset:
            services.do_delete_basin(basin.name)
