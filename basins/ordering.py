"""Listing in UTF-8 byte order with ``prefix``, ``start_after`` and ``limit`` (spec §2.7).

SQLite compares text with ``memcmp`` (byte order for UTF-8); PostgreSQL needs the
``C`` collation to do the same, whatever the database's default collation is.
"""

from __future__ import annotations

from typing import TypeVar

from django.db import connection
from django.db.models import F, Model, QuerySet
from django.db.models.functions import Collate

_M = TypeVar("_M", bound=Model)


def byte_ordered_page(
    queryset: QuerySet[_M], field: str, prefix: str, start_after: str, limit: int
) -> tuple[list[_M], bool]:
    """One page of names in byte order, and whether more matching names follow it."""
    ordered = F(field)
    if connection.vendor == "postgresql":
        ordered = Collate(field, "C")  # type: ignore[assignment]
    queryset = queryset.alias(ordered_name=ordered)
    if prefix:
        # A range rather than LIKE: SQLite's LIKE ignores ASCII case.
        queryset = queryset.filter(ordered_name__gte=prefix)
        upper = _prefix_upper_bound(prefix)
        if upper is not None:
            queryset = queryset.filter(ordered_name__lt=upper)
    if start_after:
        queryset = queryset.filter(ordered_name__gt=start_after)
    rows = list(queryset.order_by("ordered_name")[: limit + 1])
    return rows[:limit], len(rows) > limit


def _prefix_upper_bound(prefix: str) -> str | None:
    """The least string greater than every string that starts with ``prefix``."""
    chars = list(prefix)
    while chars:
        code = ord(chars.pop()) + 1
        if code == 0xD800:  # skip the surrogates, which UTF-8 cannot hold
            code = 0xE000
        if code <= 0x10FFFF:
            return "".join(chars) + chr(code)
    return None
