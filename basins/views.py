"""Basin API views (spec §1.2, §2): parse at the edge, call a service, render."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse

from basins import services
from basins.models import Basin
from s2site.api import request as req
from s2site.api.responses import empty_response, json_response, rfc3339
from s2site.api.views import S2View
from storagecore.config import BasinConfig, BasinReconfiguration
from storagecore.errors import BadJson
from storagecore.names import (
    NameRejected,
    parse_basin_name,
    parse_basin_prefix,
    parse_basin_start_after,
    parse_location_name,
)

PROVISION_HEADER = "s2-provision-result"


def basin_info(basin: Basin, *, include_deleted: bool = True) -> dict[str, Any]:
    deleted_at = basin.deleted_at if include_deleted else None
    return {
        "name": basin.name,
        "location": None,
        "created_at": rfc3339(basin.created_at),
        "deleted_at": rfc3339(deleted_at),
        "state": "deleting" if deleted_at is not None else "active",
    }


def _provisioned(outcome: services.Provisioned, status: int) -> HttpResponse:
    return json_response(
        basin_info(outcome.basin, include_deleted=False),
        status=status,
        headers={PROVISION_HEADER: outcome.result.value},
    )


def _location(body: dict[str, Any]) -> None:
    """``location`` is validated and then ignored (spec §2.3)."""
    value = body.get("location")
    if value is None:
        return
    if not isinstance(value, str):
        raise BadJson("location: invalid type, expected a string")
    try:
        parse_location_name(value)
    except NameRejected as exc:
        raise BadJson(f"location: {exc}") from None


class BasinsView(S2View):
    def get(self, request: Any) -> HttpResponse:
        params = req.query(request)
        prefix = req.query_text(params, "prefix", parse_basin_prefix)
        start_after = req.query_text(params, "start_after", parse_basin_start_after)
        limit = req.list_limit(params)
        basins, has_more = services.list_basins(prefix, start_after, limit)
        return json_response({"basins": [basin_info(b) for b in basins], "has_more": has_more})

    def post(self, request: Any) -> HttpResponse:
        token = req.request_token(request)
        body = req.json_object(req.json_body(request), "CreateBasinRequest")
        name = req.json_name(body, "basin", parse_basin_name)
        config = BasinConfig.from_json(body.get("config"))
        _location(body)
        outcome = services.do_create_basin(name, config, token)
        return _provisioned(outcome, 201)


class BasinView(S2View):
    def get(self, request: Any, basin: str) -> HttpResponse:
        name = req.path_param(basin, parse_basin_name)
        return json_response(services.access_basin(name).config_json())

    def put(self, request: Any, basin: str) -> HttpResponse:
        name = req.path_param(basin, parse_basin_name)
        body = req.optional_json_body(request)
        config = BasinConfig()
        if body is not None:
            obj = req.json_object(body, "EnsureBasinRequest")
            config = BasinConfig.from_json(obj.get("config"))
            _location(obj)
        outcome = services.do_ensure_basin(name, config)
        created = outcome.result is services.Provision.CREATED
        return _provisioned(outcome, 201 if created else 200)

    def patch(self, request: Any, basin: str) -> HttpResponse:
        name = req.path_param(basin, parse_basin_name)
        reconfiguration = BasinReconfiguration.from_json(req.json_body(request))
        updated = services.do_reconfigure_basin(name, reconfiguration)
        return json_response(updated.config_json())

    def delete(self, request: Any, basin: str) -> HttpResponse:
        name = req.path_param(basin, parse_basin_name)
        services.do_delete_basin(name)
        return empty_response(202)
