"""Stream API views (spec §1.2, §2): parse at the edge, call a service, render."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse

from basins.services import Provision
from basins.views import PROVISION_HEADER
from s2site.api import request as req
from s2site.api.responses import empty_response, json_response, rfc3339
from s2site.api.views import S2View
from storagecore.config import OptionalStreamConfig, StreamReconfiguration
from storagecore.names import parse_stream_name, parse_stream_prefix, parse_stream_start_after
from streams import services
from streams.models import Stream


def stream_info(stream: Stream, *, include_deleted: bool = True) -> dict[str, Any]:
    deleted_at = stream.deleted_at if include_deleted else None
    return {
        "name": stream.name,
        "created_at": rfc3339(stream.created_at),
        "deleted_at": rfc3339(deleted_at),
        "cipher": stream.cipher or None,
    }


def _provisioned(outcome: services.Provisioned, status: int) -> HttpResponse:
    return json_response(
        stream_info(outcome.stream, include_deleted=False),
        status=status,
        headers={PROVISION_HEADER: outcome.result.value},
    )


class StreamsView(S2View):
    def get(self, request: Any) -> HttpResponse:
        basin = req.basin_header(request)
        params = req.query(request)
        prefix = req.query_text(params, "prefix", parse_stream_prefix)
        start_after = req.query_text(params, "start_after", parse_stream_start_after)
        limit = req.list_limit(params)
        streams, has_more = services.list_streams(basin, prefix, start_after, limit)
        return json_response({"streams": [stream_info(s) for s in streams], "has_more": has_more})

    def post(self, request: Any) -> HttpResponse:
        token = req.request_token(request)
        basin = req.basin_header(request)
        body = req.json_object(req.json_body(request), "CreateStreamRequest")
        name = req.json_name(body, "stream", parse_stream_name)
        config = OptionalStreamConfig.from_json(body.get("config"))
        outcome = services.do_create_stream(basin, name, config, token)
        return _provisioned(outcome, 201)


class StreamView(S2View):
    def get(self, request: Any, stream: str) -> HttpResponse:
        basin = req.basin_header(request)
        name = req.path_param(stream, parse_stream_name)
        return json_response(services.access_stream(basin, name).stream_config().to_json())

    def put(self, request: Any, stream: str) -> HttpResponse:
        basin = req.basin_header(request)
        name = req.path_param(stream, parse_stream_name)
        config = OptionalStreamConfig.from_json(req.optional_json_body(request))
        outcome = services.do_ensure_stream(basin, name, config)
        created = outcome.result is Provision.CREATED
        return _provisioned(outcome, 201 if created else 200)

    def patch(self, request: Any, stream: str) -> HttpResponse:
        basin = req.basin_header(request)
        name = req.path_param(stream, parse_stream_name)
        reconfiguration = StreamReconfiguration.from_json(req.json_body(request))
        updated = services.do_reconfigure_stream(basin, name, reconfiguration)
        return json_response(updated.stream_config().to_json())

    def delete(self, request: Any, stream: str) -> HttpResponse:
        basin = req.basin_header(request)
        name = req.path_param(stream, parse_stream_name)
        services.do_delete_stream(basin, name)
        return empty_response(202)
