"""JSON responses in the exact shapes of the spec (compact, UTF-8)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from django.http import HttpResponse
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import BaseRenderer, JSONRenderer

JSON_CONTENT_TYPE = "application/json"


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def json_response(
    value: Any, status: int = 200, headers: dict[str, str] | None = None
) -> HttpResponse:
    return HttpResponse(
        dumps(value), status=status, content_type=JSON_CONTENT_TYPE, headers=headers
    )


def empty_response(status: int, headers: dict[str, str] | None = None) -> HttpResponse:
    response = HttpResponse(b"", status=status, headers=headers)
    del response["Content-Type"]
    return response


def rfc3339(moment: dt.datetime | None) -> str | None:
    """UTC, ``Z`` suffix, fractional seconds with trailing zeros trimmed (spec §2.9)."""
    if moment is None:
        return None
    moment = moment.astimezone(dt.UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


class CompactJSONRenderer(JSONRenderer):
    compact = True
    ensure_ascii = False


class FirstRendererNegotiation(BaseContentNegotiation):
    """The API picks its response format itself (spec §1.5); ``Accept`` never yields 406."""

    def select_parser(self, request: Any, parsers: Any) -> Any:
        return parsers[0] if parsers else None

    def select_renderer(
        self, request: Any, renderers: list[BaseRenderer], format_suffix: Any = None
    ) -> tuple[BaseRenderer, str]:
        return renderers[0], renderers[0].media_type
