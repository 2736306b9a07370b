"""The base API view, and the routes that are not about basins or streams.

``S2View`` is a DRF ``APIView`` with the S2 conventions: no content negotiation
failures, no OPTIONS handler (preflights are answered by the CORS layer; a plain
OPTIONS is a 405 as in the reference), empty-bodied 405 responses, and every
``S2Error`` rendered through the one error table.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.views import APIView

from s2site.api import request as req
from s2site.api.responses import empty_response
from storagecore import limits
from storagecore.errors import BadJson, NotImplementedRoute
from storagecore.names import (
    NameRejected,
    parse_basin_name,
    parse_location_name,
    parse_stream_name,
)


class S2View(APIView):
    http_method_names = ["get", "post", "put", "patch", "delete", "head"]

    def finalize_response(
        self, request: Any, response: HttpResponse, *args: Any, **kwargs: Any
    ) -> HttpResponse:
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.status_code != 405 and "Allow" in response:
            del response["Allow"]  # DRF adds it everywhere; S2 sends it on 405 only
        return response


@csrf_exempt  # a POST must get the 405 below, not Django's CSRF page
def health(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return empty_response(405, headers={"Allow": "GET,HEAD"})
    return HttpResponse(b"OK", content_type="text/plain; charset=utf-8")


# Routes the reference answers with 501 after extracting their arguments (spec §1.2).

_METRIC_SETS_ACCOUNT = ("active-basins", "account-ops")
_METRIC_SETS_BASIN = (
    "storage",
    "append-ops",
    "read-ops",
    "read-throughput",
    "append-throughput",
    "basin-ops",
)
_METRIC_SETS_STREAM = ("storage",)
_METRIC_INTERVALS = ("minute", "hour", "day")


def _metrics_query(request: Any, sets: tuple[str, ...]) -> None:
    params = req.query(request)
    req.query_required(params, "set")
    req.query_choice(params, "set", sets)
    req.query_uint(params, "start", limits.u32_max)
    req.query_uint(params, "end", limits.u32_max)
    req.query_choice(params, "interval", _METRIC_INTERVALS)


class AccessTokensView(S2View):
    def get(self, request: Any) -> HttpResponse:
        params = req.query(request)
        req.query_uint(params, "limit")
        raise NotImplementedRoute()

    def post(self, request: Any) -> HttpResponse:
        body = req.json_object(req.json_body(request), "AccessTokenInfo")
        token_id = body.get("id")
        if not isinstance(token_id, str):
            raise BadJson("missing field `id`")
        if "scope" not in body or not isinstance(body["scope"], dict):
            raise BadJson("missing field `scope`")
        raise NotImplementedRoute()


class AccessTokenView(S2View):
    def delete(self, request: Any, token_id: str) -> HttpResponse:
        req.path_param(token_id, _access_token_id)
        raise NotImplementedRoute()


def _access_token_id(value: str) -> str:
    if (
        not limits.access_token_id_bytes_min
        <= len(value.encode())
        <= (limits.access_token_id_bytes_max)
    ):
        raise NameRejected(
            f"access token id must be between {limits.access_token_id_bytes_min} and "
            f"{limits.access_token_id_bytes_max} bytes in length"
        )
    return value


class LocationsView(S2View):
    def get(self, request: Any) -> HttpResponse:
        raise NotImplementedRoute()


class DefaultLocationView(S2View):
    def get(self, request: Any) -> HttpResponse:
        raise NotImplementedRoute()

    def put(self, request: Any) -> HttpResponse:
        value = req.json_body(request)
        if not isinstance(value, str):
            raise BadJson("invalid type: expected a location name string")
        try:
            parse_location_name(value)
        except NameRejected as exc:
            raise BadJson(str(exc)) from None
        raise NotImplementedRoute()


class AccountMetricsView(S2View):
    def get(self, request: Any) -> HttpResponse:
        _metrics_query(request, _METRIC_SETS_ACCOUNT)
        raise NotImplementedRoute()


class BasinMetricsView(S2View):
    def get(self, request: Any, basin: str) -> HttpResponse:
        req.path_param(basin, parse_basin_name)
        _metrics_query(request, _METRIC_SETS_BASIN)
        raise NotImplementedRoute()


class StreamMetricsView(S2View):
    def get(self, request: Any, basin: str, stream: str) -> HttpResponse:
        req.path_param(basin, parse_basin_name)
        req.path_param(stream, parse_stream_name)
        _metrics_query(request, _METRIC_SETS_STREAM)
        raise NotImplementedRoute()
