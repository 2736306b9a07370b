"""``python manage.py s2bench BASIN``: benchmark and verify an S2 endpoint.

The bench itself lives in ``s2site.bench`` and needs no Django settings
(``python -m s2site.bench`` runs the same thing); this command only hosts it.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from s2site.bench import cli


class Command(BaseCommand):
    help = "Benchmark an S2 endpoint: S2S append and read sessions, verified (see s2site.bench)."

    def add_arguments(self, parser: CommandParser) -> None:
        cli.add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        status = cli.run(options, self.stdout, self.stderr)
        if status:
            raise SystemExit(status)
