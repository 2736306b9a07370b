"""Resolving ``(basin, stream)`` to an open stream for the data plane, with auto-creation
(spec §3.9, §4.6) and a bounded cache that the services invalidate through events.

Resolution needs the database, so it runs in a thread; a cache hit costs nothing.
"""

from __future__ import annotations

import enum
from collections import OrderedDict
from dataclasses import dataclass

from asgiref.sync import sync_to_async

from basins.models import Basin
from storagecore.config import OptionalStreamConfig, StreamConfig
from storagecore.errors import (
    BasinNotFound,
    StreamAlreadyExists,
    StreamDeletionPending,
    StreamNotFound,
)
from storagecore.sequencer import TimestampPolicy
from storagecore.streamer import StreamSettings
from streams import services
from streams.models import Stream

CACHE_ENTRIES_MAX = 100_000


class AutoCreate(enum.Enum):
    NEVER = "never"
    ON_APPEND = "append"
    ON_READ = "read"


@dataclass(frozen=True, slots=True)
class OpenStream:
    stream_id: int
    basin: str
    name: str
    config: StreamConfig
    cipher: str | None

    @property
    def settings(self) -> StreamSettings:
        return StreamSettings(
            policy=TimestampPolicy(
                self.config.timestamping_mode, self.config.timestamping_uncapped
            ),
            retention_age_s=self.config.retention_policy.age_s,
        )


def _open_sync(basin_name: str, name: str, auto_create: AutoCreate) -> OpenStream:
    stream = (
        Stream.objects.select_related("basin").filter(basin__name=basin_name, name=name).first()
    )
    if stream is None:
        basin = Basin.objects.filter(name=basin_name).first()
        if basin is None:
            raise BasinNotFound(basin_name)
        config = basin.basin_config()
        allowed = (auto_create is AutoCreate.ON_APPEND and config.create_stream_on_append) or (
            auto_create is AutoCreate.ON_READ and config.create_stream_on_read
        )
        if not allowed:
            raise StreamNotFound(basin_name, name)
        try:
            stream = services.do_create_stream(
                basin_name, name, OptionalStreamConfig(), None
            ).stream
        except StreamAlreadyExists:
            # A concurrent creator won: use its stream.
            stream = Stream.objects.get(basin__name=basin_name, name=name)
    if stream.is_deleting:
        raise StreamDeletionPending()
    return OpenStream(
        stream_id=stream.pk,
        basin=basin_name,
        name=name,
        config=stream.stream_config(),
        cipher=stream.cipher or None,
    )


class StreamDirectory:
    def __init__(self, capacity: int = CACHE_ENTRIES_MAX) -> None:
        self.capacity = capacity
        self._cache: OrderedDict[tuple[str, str], OpenStream] = OrderedDict()

    async def open(
        self, basin: str, name: str, auto_create: AutoCreate = AutoCreate.NEVER
    ) -> OpenStream:
        key = (basin, name)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        opened = await sync_to_async(_open_sync, thread_sensitive=False)(basin, name, auto_create)
        self._cache[key] = opened
        if len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        return opened

    def invalidate_stream(self, basin: str, name: str) -> None:
        self._cache.pop((basin, name), None)

    def invalidate_basin(self, basin: str) -> None:
        for key in [k for k in self._cache if k[0] == basin]:
            del self._cache[key]
