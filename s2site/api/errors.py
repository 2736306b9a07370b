"""Rendering S2 errors as HTTP responses, and DRF's exception handler.

The code-to-status table itself lives in ``storagecore.errors``; this module only
turns an ``S2Error`` into a response. Unknown routes and wrong methods answer with
empty bodies (spec §1.2), never an HTML page.
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf_exceptions

from s2site.api.responses import empty_response, json_response
from storagecore.errors import S2Error

logger = logging.getLogger(__name__)


def error_response(error: S2Error) -> HttpResponse:
    return json_response(error.body(), status=error.status)


def exception_handler(exc: Exception, context: dict[str, Any]) -> HttpResponse | None:
    if isinstance(exc, S2Error):
        return error_response(exc)
    if isinstance(exc, drf_exceptions.MethodNotAllowed):
        view = context.get("view")
        allowed = ",".join(getattr(view, "allowed_methods", []))
        return empty_response(405, headers={"Allow": allowed})
    if isinstance(exc, drf_exceptions.NotFound):
        return empty_response(404)
    return None


@csrf_exempt  # any method on an unknown path is an empty 404, never the CSRF page
def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    return empty_response(404)


def server_error(request: HttpRequest) -> HttpResponse:
    return json_response({"code": "other", "message": "internal server error"}, status=500)
