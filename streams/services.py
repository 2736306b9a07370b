"""Stream operations (spec §2): ``access_*`` look-ups and ``do_*`` changes.

The API views, the admin and the init file all go through these functions.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from basins.models import Basin
from basins.ordering import byte_ordered_page
from basins.services import Provision, creation_key
from storagecore.catalog.django import write_transaction
from storagecore.config import OptionalStreamConfig, StreamConfig, StreamReconfiguration
from storagecore.errors import (
    BasinDeletionPending,
    BasinNotFound,
    StreamAlreadyExists,
    StreamDeletionPending,
    StreamNotFound,
    TransactionConflict,
)
from streams import events
from streams.maintenance import empty_deadline_ms
from streams.models import Stream


@dataclass(frozen=True)
class Provisioned:
    stream: Stream
    result: Provision


def _active_basin(basin_name: str) -> Basin:
    basin = Basin.objects.filter(name=basin_name).first()
    if basin is None:
        raise BasinNotFound(basin_name)
    if basin.is_deleting:
        raise BasinDeletionPending(basin_name)
    return basin


def access_stream(basin_name: str, name: str) -> Stream:
    """An existing stream that is not being deleted (a missing basin reads as a missing stream)."""
    stream = (
        Stream.objects.select_related("basin").filter(basin__name=basin_name, name=name).first()
    )
    if stream is None:
        raise StreamNotFound(basin_name, name)
    if stream.is_deleting:
        raise StreamDeletionPending()
    return stream


def list_streams(
    basin_name: str, prefix: str, start_after: str, limit: int
) -> tuple[list[Stream], bool]:
    queryset = Stream.objects.filter(basin__name=basin_name)
    return byte_ordered_page(queryset, "name", prefix, start_after, limit)


def do_create_stream(
    basin_name: str, name: str, config: OptionalStreamConfig, request_token: str | None
) -> Provisioned:
    config.validate()
    key = creation_key(request_token, config.to_json()) if request_token is not None else ""
    try:
        with write_transaction():
            basin = _active_basin(basin_name)
            existing = Stream.objects.select_for_update().filter(basin=basin, name=name).first()
            if existing is not None:
                if existing.is_deleting:
                    raise StreamDeletionPending()
                if key and existing.creation_key == key:
                    return Provisioned(existing, Provision.NOOP)
                raise StreamAlreadyExists(basin_name, name)
            return Provisioned(_new_stream(basin, name, config, key), Provision.CREATED)
    except IntegrityError:
        raise TransactionConflict() from None


def do_ensure_stream(basin_name: str, name: str, config: OptionalStreamConfig) -> Provisioned:
    config.validate()
    try:
        with write_transaction():
            basin = _active_basin(basin_name)
            stream = Stream.objects.select_for_update().filter(basin=basin, name=name).first()
            if stream is None:
                return Provisioned(_new_stream(basin, name, config, ""), Provision.CREATED)
            if stream.is_deleting:
                raise StreamDeletionPending()
            desired = config.merge(basin.basin_config().default_stream_config)
            if stream.stream_config() == desired:
                return Provisioned(stream, Provision.NOOP)
            _arm_delete_on_empty(stream, stream.stream_config(), desired)
            stream.set_stream_config(desired)
            stream.save(update_fields=["config", "empty_deadline_ms"])
            transaction.on_commit(lambda: events.stream_changed(basin_name, name))
            return Provisioned(stream, Provision.UPDATED)
    except IntegrityError:
        raise TransactionConflict() from None


def _new_stream(basin: Basin, name: str, config: OptionalStreamConfig, key: str) -> Stream:
    basin_config = basin.basin_config()
    stream = Stream(
        basin=basin,
        name=name,
        cipher=basin_config.stream_cipher.value if basin_config.stream_cipher else "",
        created_at=timezone.now(),
        creation_key=key,
    )
    resolved = config.merge(basin_config.default_stream_config)
    stream.set_stream_config(resolved)
    _arm_delete_on_empty(stream, StreamConfig(), resolved)
    stream.save()
    return stream


def _arm_delete_on_empty(stream: Stream, before: StreamConfig, after: StreamConfig) -> None:
    """Arm the delete-on-empty deadline when the feature is switched on (spec §8):
    now + retention age (0 for infinite) + min_age + 600 s; disarm it when switched off."""
    min_age_s = after.delete_on_empty_min_age_s
    if min_age_s == 0:
        stream.empty_deadline_ms = None
    elif before.delete_on_empty_min_age_s == 0:
        now_ms = time.time_ns() // 1_000_000
        stream.empty_deadline_ms = empty_deadline_ms(after.retention_policy, min_age_s, now_ms)


def do_reconfigure_stream(
    basin_name: str, name: str, reconfiguration: StreamReconfiguration
) -> Stream:
    reconfiguration.validate()
    with write_transaction():
        basin = _active_basin(basin_name)
        stream = Stream.objects.select_for_update().filter(basin=basin, name=name).first()
        if stream is None:
            raise StreamNotFound(basin_name, name)
        if stream.is_deleting:
            raise StreamDeletionPending()
        before = stream.stream_config()
        optional = reconfiguration.apply(before.to_optional())
        optional.validate()
        after = optional.merge(basin.basin_config().default_stream_config)
        _arm_delete_on_empty(stream, before, after)
        stream.set_stream_config(after)
        stream.save(update_fields=["config", "empty_deadline_ms"])
        transaction.on_commit(lambda: events.stream_changed(basin_name, name))
        return stream


def do_delete_stream(basin_name: str, name: str) -> None:
    """Mark the stream as being deleted; the deletion task removes it (spec §2.8)."""
    with write_transaction():
        stream = (
            Stream.objects.select_for_update().filter(basin__name=basin_name, name=name).first()
        )
        if stream is None:
            raise StreamNotFound(basin_name, name)
        if stream.deleted_at is None:
            stream.deleted_at = timezone.now()
            stream.save(update_fields=["deleted_at"])
        transaction.on_commit(lambda: events.stream_changed(basin_name, name))
        transaction.on_commit(events.deletions_pending)
