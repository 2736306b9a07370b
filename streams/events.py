"""Notifications from the services to the running server, delivered after commit.

The services change rows; the server keeps state derived from them (a cache of
resolved streams, the deletion task). ``install`` registers the server's
listener; without one (management commands, tests without a server) the
notifications are no-ops. Call these through ``transaction.on_commit``.
"""

from __future__ import annotations

from typing import Protocol


class Listener(Protocol):
    def stream_changed(self, basin: str, stream: str) -> None: ...

    def basin_changed(self, basin: str) -> None: ...

    def deletions_pending(self) -> None: ...


_listener: Listener | None = None


def install(listener: Listener | None) -> None:
    global _listener
    _listener = listener


def stream_changed(basin: str, stream: str) -> None:
    if _listener is not None:
        _listener.stream_changed(basin, stream)


def basin_changed(basin: str) -> None:
    if _listener is not None:
        _listener.basin_changed(basin)


def deletions_pending() -> None:
    if _listener is not None:
        _listener.deletions_pending()
