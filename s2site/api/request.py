"""Typed extraction of request inputs, in the order and with the errors of spec §1.4.

Every function here turns raw request data into a typed value or raises the
``bad_*`` error that the reference server gives for that input.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import unquote_to_bytes

from django.http import HttpRequest, QueryDict

from storagecore import limits
from storagecore.errors import BadHeader, BadJson, BadPath, BadQuery
from storagecore.names import NameRejected, parse_basin_name, parse_request_token

_T = TypeVar("_T")

BASIN_HEADER = "s2-basin"
REQUEST_TOKEN_HEADER = "s2-request-token"
BODY_ERROR_SCOPE_KEY = "s2.body_error"


def header(request: HttpRequest, name: str) -> str | None:
    """A header as text, or ``None`` when absent; non-UTF-8 values are ``bad_header``."""
    raw = request.META.get("HTTP_" + name.upper().replace("-", "_"))
    if raw is None:
        return None
    # ASGI header bytes reach Django decoded as latin-1. Like the reference (``http``'s
    # ``HeaderValue::to_str``), only visible ASCII and tabs are accepted as text: any
    # other byte, even within valid UTF-8, is reported as "not UTF-8".
    text = str(raw)
    if not all(c == "\t" or " " <= c <= "~" for c in text):
        raise BadHeader.invalid(name, "not UTF-8")
    return text


def basin_header(request: HttpRequest) -> str:
    value = header(request, BASIN_HEADER)
    if value is None:
        raise BadHeader.missing(BASIN_HEADER)
    try:
        return parse_basin_name(value)
    except NameRejected as exc:
        raise BadHeader.invalid(BASIN_HEADER, str(exc)) from None


def request_token(request: HttpRequest) -> str | None:
    value = header(request, REQUEST_TOKEN_HEADER)
    if value is None:
        return None
    try:
        return parse_request_token(value)
    except NameRejected as exc:
        raise BadHeader.invalid(REQUEST_TOKEN_HEADER, str(exc)) from None


def path_param(raw: str, parse: Callable[[str], _T]) -> _T:
    """Percent-decode one raw path segment (routing happened on the raw path) and parse it."""
    try:
        text = unquote_to_bytes(raw.encode("latin-1")).decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        raise BadPath("path segment is not valid UTF-8") from None
    try:
        return parse(text)
    except NameRejected as exc:
        raise BadPath(str(exc)) from None


def query(request: HttpRequest) -> QueryDict:
    return request.GET


def query_text(params: QueryDict, name: str, parse: Callable[[str], str], default: str = "") -> str:
    value = params.get(name)
    if value is None:
        return default
    try:
        return parse(value)
    except NameRejected as exc:
        raise BadQuery(f"{name}: {exc}") from None


def query_uint(params: QueryDict, name: str, maximum: int = limits.u64_max) -> int | None:
    value = params.get(name)
    if value is None:
        return None
    # Rust's integer parsing, as the reference uses it: ASCII digits after an optional `+`.
    digits = value[1:] if value.startswith("+") else value
    if not digits.isascii() or not digits.isdigit():
        raise BadQuery(f"{name}: invalid digit found in string")
    number = int(digits)
    if number > maximum:
        raise BadQuery(f"{name}: number too large to fit in target type")
    return number


def list_limit(params: QueryDict) -> int:
    """1–1000 honoured; absent, 0 or more than 1000 mean 1000 (spec §2.7)."""
    limit = query_uint(params, "limit")
    if limit is None or limit == 0 or limit > limits.list_limit_max:
        return limits.list_limit_max
    return limit


def query_bool(params: QueryDict, name: str) -> bool | None:
    value = params.get(name)
    if value is None:
        return None
    if value not in ("true", "false"):
        raise BadQuery(f"{name}: provided string was not `true` or `false`")
    return value == "true"


def query_required(params: QueryDict, name: str) -> str:
    value = params.get(name)
    if value is None:
        raise BadQuery(f"missing field `{name}`")
    return value


def query_choice(params: QueryDict, name: str, choices: tuple[str, ...]) -> str | None:
    value = params.get(name)
    if value is None:
        return None
    if value not in choices:
        raise BadQuery(f"{name}: unknown variant `{value}`")
    return value


def is_json_content_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    # Only the first comma-separated entry counts (spec §1.5).
    mime = content_type.split(",", 1)[0].split(";", 1)[0].strip().lower()
    kind, _, subtype = mime.partition("/")
    return kind == "application" and (subtype == "json" or subtype.endswith("+json"))


def _raise_constant(name: str) -> Any:
    raise ValueError(f"invalid number `{name}`")


def _decode_json(body: bytes) -> Any:
    try:
        # JSON bodies are UTF-8 only: no UTF-16/32 detection, no byte order mark.
        return json.loads(body.decode("utf-8"), parse_constant=_raise_constant)
    except (ValueError, RecursionError) as exc:
        raise BadJson(f"Failed to parse the request body as JSON: {exc}") from None


def _checked_body(request: HttpRequest) -> bytes:
    if request.scope.get(BODY_ERROR_SCOPE_KEY) if hasattr(request, "scope") else None:
        raise BadJson(f"Failed to buffer the request body: {request.scope[BODY_ERROR_SCOPE_KEY]}")
    body = request.body
    if len(body) > limits.unary_body_bytes_max:
        raise BadJson("Failed to buffer the request body: length limit exceeded")
    return body


def json_body(request: HttpRequest) -> Any:
    """A required JSON body (POST, PATCH)."""
    if not is_json_content_type(request.META.get("CONTENT_TYPE")):
        raise BadJson("Expected request with `Content-Type: application/json`")
    return _decode_json(_checked_body(request))


def optional_json_body(request: HttpRequest) -> Any | None:
    """An optional JSON body (PUT): no ``Content-Type`` means no body, whatever was sent."""
    content_type = request.META.get("CONTENT_TYPE")
    if not content_type:
        return None
    if not is_json_content_type(content_type):
        raise BadJson("Expected request with `Content-Type: application/json`")
    body = _checked_body(request)
    if not body:
        return None
    value = _decode_json(body)
    if value is None:
        # A JSON ``null`` is not "no body": the reference fails to read it as the struct.
        raise BadJson("invalid type: null, expected a JSON object")
    return value


def json_object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadJson(f"invalid type: expected struct {what}")
    return value


def json_name(obj: dict[str, Any], key: str, parse: Callable[[str], str]) -> str:
    """A required name field inside a JSON body; invalid names are ``bad_json`` (spec §6.4)."""
    if key not in obj:
        raise BadJson(f"missing field `{key}`")
    value = obj[key]
    if not isinstance(value, str):
        raise BadJson(f"{key}: invalid type, expected a string")
    try:
        return parse(value)
    except NameRejected as exc:
        raise BadJson(f"{key}: {exc}") from None


class RawRequest:
    """The request inputs of a raw ASGI handler, shaped like Django's ``HttpRequest``
    (``META``, ``GET``, ``body``, ``scope``) so that every parser here serves both."""

    def __init__(self, scope: Any, body: bytes = b"") -> None:
        self.scope = scope
        self.body = body
        meta: dict[str, str] = {}
        for raw_name, raw_value in scope.get("headers", ()):
            name = raw_name.decode("latin-1").upper().replace("-", "_")
            key = name if name in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{name}"
            value = raw_value.decode("latin-1")
            meta[key] = f"{meta[key]},{value}" if key in meta else value
        self.META = meta
        self.GET = QueryDict(scope.get("query_string", b""), encoding="utf-8")
        self.method = scope.get("method", "GET")


def body_error(request: Any) -> str | None:
    """What went wrong while the edge read the body (too large, corrupt encoding), if anything."""
    scope = getattr(request, "scope", None)
    return None if scope is None else scope.get(BODY_ERROR_SCOPE_KEY)
