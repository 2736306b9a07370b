"""The server runtime: what lives as long as the server process, opened by ASGI lifespan.

Today that is the background deletion task (spec §2.8); the record log's engine
joins it here. ``Lifespan`` is the ASGI app for the ``lifespan`` scope.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from streams import lifecycle

logger = logging.getLogger(__name__)

Message = MutableMapping[str, Any]


class Runtime:
    def __init__(self) -> None:
        self.deletions = lifecycle.DeletionTask()

    async def start(self) -> None:
        self.deletions.start()
        lifecycle.install(self.deletions)
        # Finish deletions that a previous run left pending.
        self.deletions.wake()

    async def stop(self) -> None:
        lifecycle.install(None)
        await self.deletions.stop()


class Lifespan:
    def __init__(self) -> None:
        self.runtime: Runtime | None = None

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.runtime = Runtime()
                    await self.runtime.start()
                except Exception as exc:  # report any start-up failure to the server
                    logger.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.runtime is not None:
                    await self.runtime.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return
