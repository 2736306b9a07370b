"""End-to-end fixtures: the real ``python manage.py serve`` process on a loopback port.

Most tests share one server (``server_url``); tests about start-up and shut-down
start their own with ``ServerProcess``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT_S = 30.0
SHUTDOWN_TIMEOUT_S = 10.0

# Variables that ``serve`` sets for its re-executed self; an inherited value would
# change how the server under test is configured.
_SERVER_ENV_VARS = (
    "DATABASE_URL",
    "S2_SERVE_CONFIGURED",
    "S2_SERVE_TEMP_DIR",
    "S2_STORAGE",
    "S2_LOCAL_ROOT",
    "S2_BUCKET",
    "S2_PATH",
    "S2_CORS",
    "S2LITE_INIT_FILE",
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def is_listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def server_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SERVER_ENV_VARS}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def manage_command(*args: str) -> list[str]:
    return [sys.executable, "manage.py", *args]


class ServerProcess:
    """One ``manage.py serve`` process; its output goes to ``log_path``."""

    def __init__(
        self, log_dir: Path, *extra_args: str, extra_env: dict[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"serve-{self.port}.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                manage_command(
                    "serve", "--host", "127.0.0.1", "--port", str(self.port), *extra_args
                ),
                cwd=REPO_ROOT,
                env={**server_env(), **(extra_env or {})},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_healthy(self, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode}:\n{self.output()}")
            try:
                response = httpx.get(f"{self.url}/health", timeout=1.0)
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            assert response.http_version == "HTTP/1.1"
            if response.status_code == 200:
                return
            time.sleep(0.05)
        self.kill()
        pytest.fail(f"server did not become healthy in {timeout_s} s:\n{self.output()}")

    def wait_exit(self, timeout_s: float) -> int | None:
        try:
            return self.proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int | None:
        """Send ``sig``; the exit status, or ``None`` (after killing it) if it hung."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        code = self.wait_exit(SHUTDOWN_TIMEOUT_S + 2)
        if code is None:
            self.kill()
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@pytest.fixture(scope="session")
def server_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server-logs")


@pytest.fixture(scope="session")
def server_url(server_logs: Path) -> Iterator[str]:
    """The base URL of a server shared by the whole session; stopped with SIGTERM."""
    server = ServerProcess(server_logs)
    try:
        server.wait_healthy()
        yield server.url
    finally:
        started = time.monotonic()
        code = server.stop(signal.SIGTERM)
        elapsed = time.monotonic() - started
        assert code == 0, f"exit status {code} after SIGTERM:\n{server.output()}"
        assert elapsed < SHUTDOWN_TIMEOUT_S + 1


@pytest.fixture
def unique() -> str:
    """A short name component unique to the test (basin names are global to the server)."""
    return uuid.uuid4().hex[:12]
