"""The ASGI application: lifespan plus the HTTP stack (ARCHITECTURE §1).

``http``: CORS (unless disabled) → body-less HEAD responses → the ``/v1`` edge
(raw-path routing, compression) → Django, whose unary bodies are capped at 2 MiB.
``lifespan``: opens and closes the server runtime (background tasks).
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "s2site.settings")
django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from s2site.api.edge import ASGIApp, BodyLimit, Cors, HeadWithoutBody, V1Edge  # noqa: E402
from s2site.runtime import Lifespan  # noqa: E402


def build_http_app() -> ASGIApp:
    app: ASGIApp = HeadWithoutBody(V1Edge(BodyLimit(django_application)))
    return Cors(app) if settings.S2_CORS else app


application = ProtocolTypeRouter({"http": build_http_app(), "lifespan": Lifespan()})
