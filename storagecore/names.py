"""Basin and stream names, list cursors and tokens (spec §2.1).

``parse_*`` functions return the validated string or raise ``NameRejected`` with
the reference server's message; the edge decides whether that becomes
``bad_path``, ``bad_header``, ``bad_json`` or ``bad_query``.
"""

from __future__ import annotations

import re

from storagecore import limits


class NameRejected(ValueError):
    """A name, prefix or token failed validation; ``str()`` is the S2 message."""


_BASIN_BODY = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
_BASIN_EDGE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_LOCATION = re.compile(r"[A-Za-z0-9:.\-]+")


def _check_basin(name: str, field: str, *, is_prefix: bool) -> str:
    size = len(name.encode())
    if size > limits.basin_name_bytes_max:
        raise NameRejected(
            f"basin {field} must not exceed {limits.basin_name_bytes_max} bytes in length"
        )
    if not is_prefix and size < limits.basin_name_bytes_min:
        raise NameRejected(
            f"basin {field} should be at least {limits.basin_name_bytes_min} bytes in length"
        )
    if not name:
        return name
    if name[0] not in _BASIN_EDGE:
        raise NameRejected(f"basin {field} must begin with a lowercase letter or number")
    if not is_prefix and len(name) > 1 and name[-1] not in _BASIN_EDGE:
        raise NameRejected(f"basin {field} must end with a lowercase letter or number")
    inner = name[1:] if is_prefix else name[1:-1]
    if any(c not in _BASIN_BODY for c in inner):
        raise NameRejected(f"basin {field} must comprise lowercase letters, numbers, and hyphens")
    return name


def parse_basin_name(name: str) -> str:
    return _check_basin(name, "name", is_prefix=False)


def parse_basin_prefix(prefix: str) -> str:
    return _check_basin(prefix, "prefix", is_prefix=True)


def parse_basin_start_after(start_after: str) -> str:
    return _check_basin(start_after, "start-after", is_prefix=True)


def _check_stream(name: str, field: str, *, is_prefix: bool) -> str:
    if not is_prefix:
        if not name:
            raise NameRejected(f"stream {field} must not be empty")
        if name in (".", ".."):
            raise NameRejected(f'stream {field} must not be "." or ".."')
    if len(name.encode()) > limits.stream_name_bytes_max:
        raise NameRejected(
            f"stream {field} must not exceed {limits.stream_name_bytes_max} bytes in length"
        )
    return name


def parse_stream_name(name: str) -> str:
    return _check_stream(name, "name", is_prefix=False)


def parse_stream_prefix(prefix: str) -> str:
    return _check_stream(prefix, "prefix", is_prefix=True)


def parse_stream_start_after(start_after: str) -> str:
    return _check_stream(start_after, "start-after", is_prefix=True)


def parse_request_token(token: str) -> str:
    size = len(token.encode())
    if size > limits.request_token_bytes_max:
        raise NameRejected(
            f"request token was longer than {limits.request_token_bytes_max} bytes in length: "
            f"{size}"
        )
    return token


def parse_location_name(name: str) -> str:
    if not (limits.location_name_chars_min <= len(name) <= limits.location_name_chars_max):
        raise NameRejected(
            f"location name must be between {limits.location_name_chars_min} and "
            f"{limits.location_name_chars_max} characters"
        )
    if not _LOCATION.fullmatch(name):
        raise NameRejected("location name must comprise letters, numbers, ':', '.' and '-'")
    return name
