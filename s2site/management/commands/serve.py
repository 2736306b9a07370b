"""``python manage.py serve``: the S2 server, the ``s2 lite`` of this project (ARCHITECTURE §4).

granian serves HTTP/1.1 and HTTP/2 cleartext (prior knowledge) on one port, as
every official S2 client needs. The command first turns its flags into
environment variables and re-executes itself with them, so that this process and
granian's worker load the same settings; then it migrates the database, applies
the init file and starts granian. Any error before the listener opens aborts
start-up with a non-zero exit.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

_CONFIGURED = "S2_SERVE_CONFIGURED"
_TEMP_DIR = "S2_SERVE_TEMP_DIR"

# HTTP/2 flow control (ARCHITECTURE §1): a connection window larger than a
# stream's, so that one slow session cannot stall its neighbours; large frames
# for fast uploads.
HTTP2_CONNECTION_WINDOW_BYTES = 16 * 1024 * 1024
HTTP2_STREAM_WINDOW_BYTES = 4 * 1024 * 1024
HTTP2_MAX_FRAME_BYTES = 64 * 1024
HTTP2_MAX_CONCURRENT_STREAMS = 1000
CONNECTION_BACKLOG = 4096
# Graceful shutdown (spec §1.1): connections get 10 s to finish; after that the worker
# is stopped anyway, so an idle HTTP/2 client that never answers GOAWAY cannot hold
# the server open.
SHUTDOWN_GRACE_S = 10


class Command(BaseCommand):
    help = "Run the S2 server: HTTP/1.1 and HTTP/2 cleartext on one port."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="0.0.0.0", help="address to listen on")
        parser.add_argument("--port", type=int, default=8080, help="port to listen on")
        storage = parser.add_mutually_exclusive_group()
        storage.add_argument(
            "--local-root",
            metavar="DIR",
            help="keep segments and the SQLite database in DIR (fsync'd)",
        )
        storage.add_argument(
            "--bucket",
            metavar="NAME",
            help="keep segments in this S3 bucket (endpoint and credentials from AWS_*)",
        )
        parser.add_argument("--path", default="", metavar="PREFIX", help="key prefix in the store")
        parser.add_argument(
            "--init-file",
            metavar="FILE",
            default=os.environ.get("S2LITE_INIT_FILE") or None,
            help="apply basins and streams from this JSON file at start-up",
        )
        parser.add_argument("--no-cors", action="store_true", help="send no CORS headers")
        parser.add_argument(
            "--append-inflight-bytes",
            type=_size,
            default=None,
            metavar="SIZE",
            help="server-wide cap on appended bytes not yet durable (default 128MiB, min 1MiB)",
        )
        parser.add_argument(
            "--access-log", action="store_true", help="log every request (granian's access log)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if os.environ.get(_CONFIGURED) != "1":
            self._reexec_configured(options)
        try:
            self._prepare(options)
            self._banner(options["port"])
            self._run_granian(options)
        finally:
            temp_dir = os.environ.get(_TEMP_DIR)
            if temp_dir:
                shutil.rmtree(temp_dir, ignore_errors=True)

    def _reexec_configured(self, options: dict[str, Any]) -> None:
        env = dict(os.environ)
        env[_CONFIGURED] = "1"
        env["S2_CORS"] = "0" if options["no_cors"] else "1"
        env["S2_PATH"] = options["path"]
        if options["append_inflight_bytes"] is not None:
            env["S2_APPEND_INFLIGHT_BYTES"] = str(max(options["append_inflight_bytes"], 1 << 20))
        if options["local_root"]:
            from storagecore.objstore.localfs import make_dirs_durable

            root = Path(options["local_root"]).resolve()
            # The database and the segments live under it: its name must survive a crash too.
            make_dirs_durable(root)
            env["S2_STORAGE"] = "local"
            env["S2_LOCAL_ROOT"] = str(root)
        elif options["bucket"]:
            env["S2_STORAGE"] = "s3"
            env["S2_BUCKET"] = options["bucket"]
        else:
            env["S2_STORAGE"] = "memory"
            if not env.get("DATABASE_URL"):
                # In-memory mode persists nothing: a throw-away database, removed at exit.
                temp_dir = tempfile.mkdtemp(prefix="s2-memory-")
                env[_TEMP_DIR] = temp_dir
                env["DATABASE_URL"] = f"sqlite:///{temp_dir}/s2.sqlite3"
                env["S2_SQLITE_SYNCHRONOUS"] = "OFF"
        sys.stdout.flush()
        os.execve(sys.executable, [sys.executable, *sys.argv], env)

    def _prepare(self, options: dict[str, Any]) -> None:
        from s2site import initfile

        call_command("migrate", interactive=False, verbosity=0)
        self._ensure_superuser()
        if options["init_file"]:
            try:
                initfile.apply(initfile.load(Path(options["init_file"])))
            except initfile.InitFileError as exc:
                raise CommandError(str(exc)) from None

    def _ensure_superuser(self) -> None:
        """Create the admin user named by DJANGO_SUPERUSER_USERNAME/PASSWORD if it is missing."""
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME")
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD")
        if not username or not password:
            return
        from django.contrib.auth import get_user_model

        user_model = get_user_model()
        if not user_model.objects.filter(username=username).exists():
            user_model.objects.create_superuser(
                username=username,
                email=os.environ.get("DJANGO_SUPERUSER_EMAIL", ""),
                password=password,
            )

    def _banner(self, port: int) -> None:
        from django.conf import settings

        self.stdout.write(
            f"storage: {settings.S2_STORAGE}"
            + (f" ({settings.S2_LOCAL_ROOT})" if settings.S2_LOCAL_ROOT else "")
            + (f" (bucket {settings.S2_BUCKET})" if settings.S2_BUCKET else "")
        )
        self.stdout.write(
            "copy/paste into a new terminal to point the S2 CLI and SDKs at this server:\n"
            f"export S2_ACCOUNT_ENDPOINT=http://localhost:{port}\n"
            f"export S2_BASIN_ENDPOINT=http://localhost:{port}\n"
            "export S2_ACCESS_TOKEN=ignored\n"
        )
        self.stdout.flush()

    def _run_granian(self, options: dict[str, Any]) -> None:
        from granian import Granian
        from granian.constants import HTTPModes, Interfaces
        from granian.http import HTTP2Settings

        server = Granian(
            target="s2site.asgi:application",
            address=options["host"],
            port=options["port"],
            interface=Interfaces.ASGI,
            # One process owns every stream (ARCHITECTURE §1).
            workers=1,
            http=HTTPModes.auto,
            websockets=False,
            backlog=CONNECTION_BACKLOG,
            backpressure=CONNECTION_BACKLOG,
            http2_settings=HTTP2Settings(
                initial_connection_window_size=HTTP2_CONNECTION_WINDOW_BYTES,
                initial_stream_window_size=HTTP2_STREAM_WINDOW_BYTES,
                max_frame_size=HTTP2_MAX_FRAME_BYTES,
                max_concurrent_streams=HTTP2_MAX_CONCURRENT_STREAMS,
            ),
            log_access=options["access_log"],
            workers_kill_timeout=SHUTDOWN_GRACE_S,
        )
        server.serve()


_SIZE_UNITS = {"": 1, "b": 1, "kib": 1 << 10, "kb": 1000, "mib": 1 << 20, "mb": 1000**2,
               "gib": 1 << 30, "gb": 1000**3}  # fmt: skip


def _size(text: str) -> int:
    """A byte size such as ``128MiB``, ``64mb`` or ``1048576``."""
    import re

    match = re.fullmatch(r"\s*(\d+)\s*([A-Za-z]*)\s*", text)
    if match is None or match.group(2).lower() not in _SIZE_UNITS:
        raise ValueError(f"invalid size {text!r}")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2).lower()]
