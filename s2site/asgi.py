"""The ASGI application: lifespan plus the HTTP stack (ARCHITECTURE §1).

``http``: CORS (unless disabled) → body-less HEAD responses → the ``/v1`` edge
(raw-path routing, compression) → the record routes (raw ASGI, ``streams.dataplane``)
or Django, whose unary bodies are capped at 2 MiB. ``lifespan``: opens and closes
the server runtime (the record log and background tasks).
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "s2site.settings")
django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from s2site import runtime  # noqa: E402
from s2site.api.edge import (  # noqa: E402
    ASGIApp,
    BodyLimit,
    Cors,
    HeadWithoutBody,
    Receive,
    Scope,
    Send,
    V1Edge,
)
from s2site.metrics import MetricsApp  # noqa: E402
from streams.dataplane import RecordsApp, is_records_path  # noqa: E402


class Router:
    """Record routes to the raw ASGI data plane, ``/metrics`` to the exposition,
    everything else to Django."""

    def __init__(self, records: ASGIApp, metrics: ASGIApp, django: ASGIApp) -> None:
        self.records = records
        self.metrics = metrics
        self.django = django

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and is_records_path(scope["path"]):
            await self.records(scope, receive, send)
        elif scope["type"] == "http" and scope["path"] == "/metrics":
            await self.metrics(scope, receive, send)
        else:
            await self.django(scope, receive, send)


def build_http_app() -> ASGIApp:
    router = Router(
        RecordsApp(runtime.current), MetricsApp(runtime.current), BodyLimit(django_application)
    )
    app: ASGIApp = HeadWithoutBody(V1Edge(router))
    return Cors(app) if settings.S2_CORS else app


application = ProtocolTypeRouter({"http": build_http_app(), "lifespan": runtime.Lifespan()})
