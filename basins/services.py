"""Basin operations (spec §2): ``access_*`` look-ups and ``do_*`` changes.

The API views, the admin and the init file all go through these functions, so
there is one set of rules. Each function runs in one database transaction; work
that must follow a commit (waking the deletion task) is scheduled with
``transaction.on_commit``.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from basins.models import Basin
from basins.ordering import byte_ordered_page
from storagecore.catalog.django import write_transaction
from storagecore.config import BasinConfig, BasinReconfiguration, canonical_json
from storagecore.errors import (
    BasinAlreadyExists,
    BasinDeletionPending,
    BasinNotFound,
    TransactionConflict,
)
from streams import events


class Provision(enum.StrEnum):
    """The ``s2-provision-result`` of a create or ensure (spec §2.3, §2.4)."""

    CREATED = "created"
    UPDATED = "updated"
    NOOP = "noop"


@dataclass(frozen=True)
class Provisioned:
    basin: Basin
    result: Provision


def creation_key(request_token: str, requested_config_json: object) -> str:
    """Fingerprint of a create request: the token and the requested config, canonicalised."""
    token = request_token.encode()
    digest = hashlib.sha256()
    digest.update(len(token).to_bytes(8, "big"))
    digest.update(token)
    digest.update(canonical_json(requested_config_json).encode())
    return digest.hexdigest()


def access_basin(name: str) -> Basin:
    try:
        return Basin.objects.get(name=name)
    except Basin.DoesNotExist:
        raise BasinNotFound(name) from None


def list_basins(prefix: str, start_after: str, limit: int) -> tuple[list[Basin], bool]:
    return byte_ordered_page(Basin.objects.all(), "name", prefix, start_after, limit)


def do_create_basin(name: str, config: BasinConfig, request_token: str | None) -> Provisioned:
    config.validate()
    key = creation_key(request_token, config.to_json()) if request_token is not None else ""
    try:
        with write_transaction():
            existing = Basin.objects.select_for_update().filter(name=name).first()
            if existing is not None:
                return _replay_or_conflict(existing, key)
            basin = Basin(name=name, created_at=timezone.now(), creation_key=key)
            basin.set_basin_config(config)
            basin.save()
            return Provisioned(basin, Provision.CREATED)
    except IntegrityError:
        # A concurrent create won the race: judge this request against its result.
        existing = Basin.objects.filter(name=name).first()
        if existing is None:
            raise TransactionConflict() from None
        return _replay_or_conflict(existing, key)


def _replay_or_conflict(existing: Basin, key: str) -> Provisioned:
    if existing.is_deleting:
        raise BasinDeletionPending(existing.name)
    if key and existing.creation_key == key:
        return Provisioned(existing, Provision.NOOP)
    raise BasinAlreadyExists(existing.name)


def do_ensure_basin(name: str, config: BasinConfig) -> Provisioned:
    config.validate()
    try:
        with write_transaction():
            basin = Basin.objects.select_for_update().filter(name=name).first()
            if basin is None:
                basin = Basin(name=name, created_at=timezone.now())
                basin.set_basin_config(config)
                basin.save()
                return Provisioned(basin, Provision.CREATED)
            if basin.is_deleting:
                raise BasinDeletionPending(name)
            if basin.basin_config() == config:
                return Provisioned(basin, Provision.NOOP)
            basin.set_basin_config(config)
            basin.save(update_fields=["config"])
            transaction.on_commit(lambda: events.basin_changed(name))
            return Provisioned(basin, Provision.UPDATED)
    except IntegrityError:
        raise TransactionConflict() from None


def do_reconfigure_basin(name: str, reconfiguration: BasinReconfiguration) -> Basin:
    reconfiguration.validate()
    with write_transaction():
        basin = Basin.objects.select_for_update().filter(name=name).first()
        if basin is None:
            raise BasinNotFound(name)
        if basin.is_deleting:
            raise BasinDeletionPending(name)
        new_config = reconfiguration.apply(basin.basin_config())
        new_config.validate()
        basin.set_basin_config(new_config)
        basin.save(update_fields=["config"])
        transaction.on_commit(lambda: events.basin_changed(name))
        return basin


def do_delete_basin(name: str) -> None:
    """Mark the basin as being deleted; the deletion task removes its streams, then it."""
    with write_transaction():
        basin = Basin.objects.select_for_update().filter(name=name).first()
        if basin is None:
            raise BasinNotFound(name)
        if basin.deleted_at is None:
            basin.deleted_at = timezone.now()
            basin.save(update_fields=["deleted_at"])
        transaction.on_commit(lambda: events.basin_changed(name))
        transaction.on_commit(events.deletions_pending)
