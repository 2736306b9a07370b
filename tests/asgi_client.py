"""A synchronous client that drives the project's full ASGI HTTP stack in-process.

Requests go through exactly what granian would call (CORS, the /v1 edge, Django),
with ``raw_path`` set as a real server sets it, so routing, compression and error
rendering are tested without a network.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from s2site.asgi import build_http_app


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    trailers: list[Any] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    def json(self) -> Any:
        return json.loads(self.body)


class AsgiClient:
    """Runs every request on one event loop; with ``lifespan=True`` the server runtime
    (record log, deletion task) is started on that loop first and stopped by ``close``."""

    def __init__(self, app: Any = None, *, lifespan: bool = False) -> None:
        self.app = app if app is not None else build_http_app()
        self.loop = asyncio.new_event_loop()
        self._lifespan_queue: asyncio.Queue[dict[str, Any]] | None = None
        self._lifespan_task: asyncio.Task[None] | None = None
        if lifespan:
            self.loop.run_until_complete(self._start_lifespan())

    async def _start_lifespan(self) -> None:
        from s2site.runtime import Lifespan

        inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        outbox: asyncio.Queue[MutableMapping[str, Any]] = asyncio.Queue()
        self._lifespan_queue = inbox
        self._lifespan_outbox = outbox
        self._lifespan_task = asyncio.ensure_future(
            Lifespan()({"type": "lifespan"}, inbox.get, outbox.put)
        )
        await inbox.put({"type": "lifespan.startup"})
        message = await outbox.get()
        assert message["type"] == "lifespan.startup.complete", message

    def close(self) -> None:
        if self._lifespan_queue is not None and self._lifespan_task is not None:
            self.loop.run_until_complete(self._lifespan_queue.put({"type": "lifespan.shutdown"}))
            self.loop.run_until_complete(self._lifespan_task)
        self.loop.close()

    def run(self, coroutine: Any) -> Any:
        """Run a coroutine on the client's loop (where the runtime lives)."""
        return self.loop.run_until_complete(coroutine)

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        basin: str | None = None,
        query: str = "",
        chunks: list[bytes] | None = None,
    ) -> Response:
        all_headers = {k.lower(): v for k, v in (headers or {}).items()}
        if json_body is not None:
            body = json.dumps(json_body).encode()
            all_headers.setdefault("content-type", "application/json")
        if basin is not None:
            all_headers["s2-basin"] = basin
        parts = chunks if chunks is not None else [body or b""]
        return self.loop.run_until_complete(self._run(method, path, query, all_headers, parts))

    def get(self, path: str, **kwargs: Any) -> Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Response:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Response:
        return self.request("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Response:
        return self.request("DELETE", path, **kwargs)

    async def _run(
        self, method: str, path: str, query: str, headers: dict[str, str], parts: list[bytes]
    ) -> Response:
        raw_path = path.encode("latin-1") if path.isascii() else quote(path).encode()
        from urllib.parse import unquote

        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": unquote(raw_path.decode("latin-1")),
            "raw_path": raw_path,
            "root_path": "",
            "query_string": query.encode(),
            "headers": [(k.encode(), v.encode("latin-1")) for k, v in headers.items()],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8080),
        }
        pending = list(parts)
        disconnect = asyncio.Event()

        async def receive() -> dict[str, Any]:
            if pending:
                chunk = pending.pop(0)
                return {"type": "http.request", "body": chunk, "more_body": bool(pending)}
            await disconnect.wait()
            return {"type": "http.disconnect"}

        response = Response(status=0, headers=[])
        chunks: list[bytes] = []

        async def send(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                response.status = message["status"]
                response.headers = [
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in message["headers"]
                ]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    disconnect.set()

        await self.app(scope, receive, send)
        disconnect.set()
        response.body = b"".join(chunks)
        return response
