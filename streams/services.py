"""Stream operations (spec §2): ``access_*`` look-ups and ``do_*`` changes.

The API views, the admin and the init file all go through these functions.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from basins.models import Basin
from basins.ordering import byte_ordered_page
from basins.services import Provision, creation_key, write_transaction
from storagecore.config import OptionalStreamConfig, StreamReconfiguration
from storagecore.errors import (
    BasinDeletionPending,
    BasinNotFound,
    StreamAlreadyExists,
    StreamDeletionPending,
    StreamNotFound,
    TransactionConflict,
)
from streams import events
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
            stream.set_stream_config(desired)
            stream.save(update_fields=["config"])
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
    stream.set_stream_config(config.merge(basin_config.default_stream_config))
    stream.save()
    return stream


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
        optional = reconfiguration.apply(stream.stream_config().to_optional())
        optional.validate()
        stream.set_stream_config(optional.merge(basin.basin_config().default_stream_config))
        stream.save(update_fields=["config"])
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
