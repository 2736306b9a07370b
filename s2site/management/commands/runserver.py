"""``runserver`` refuses to start: it cannot serve S2 clients.

Django's development server speaks neither HTTP/2 cleartext (the Python SDK's
only protocol) nor full-duplex streaming, so it would start a server the SDKs
cannot use. ``python manage.py serve`` runs the real stack.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = "Not available: use `python manage.py serve` (HTTP/1.1 + HTTP/2 via granian)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("args", nargs="*")

    def handle(self, *args: Any, **options: Any) -> None:
        raise CommandError(
            "runserver cannot serve S2 clients (no HTTP/2 cleartext, no full-duplex "
            "streaming). Start the server with: python manage.py serve [--port 8080]"
        )
