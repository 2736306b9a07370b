"""The ``serve`` command itself: banner, ``--init-file``, signals, and ``runserver``'s refusal.

Each test here starts (or tries to start) its own server process.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import httpx
import pytest

from tests.e2e.conftest import (
    REPO_ROOT,
    SHUTDOWN_TIMEOUT_S,
    ServerProcess,
    is_listening,
    manage_command,
    server_env,
)

pytestmark = pytest.mark.e2e

INIT_FILE: dict[str, Any] = {
    "basins": [
        {
            "name": "init-basin-one",
            "config": {
                "default_stream_config": {"storage_class": "standard", "retention_policy": "1h"},
                "create_stream_on_append": True,
            },
            "streams": [
                {
                    "name": "events/a",
                    "config": {
                        "retention_policy": "infinite",
                        "timestamping": {"mode": "arrival"},
                        "delete_on_empty": {"min_age": "10m"},
                    },
                },
                {"name": "plain"},
            ],
        },
        {"name": "init-basin-two"},
    ]
}


def write_json(path: Path, document: object) -> Path:
    path.write_text(json.dumps(document))
    return path


def test_init_file_is_applied_and_sigint_stops_the_server(tmp_path: Path) -> None:
    init_file = write_json(tmp_path / "init.json", INIT_FILE)
    server = ServerProcess(tmp_path, "--init-file", str(init_file))
    try:
        server.wait_healthy()
        with httpx.Client(base_url=server.url, timeout=10.0) as client:
            basins = client.get("/v1/basins").json()
            assert [b["name"] for b in basins["basins"]] == ["init-basin-one", "init-basin-two"]
            assert client.get("/v1/basins/init-basin-one").json() == {
                "default_stream_config": {
                    "storage_class": "standard",
                    "retention_policy": {"age": 3600},
                    "timestamping": None,
                    "delete_on_empty": None,
                },
                "stream_cipher": None,
                "create_stream_on_append": True,
                "create_stream_on_read": False,
            }
            assert client.get("/v1/basins/init-basin-two").json() == {
                "default_stream_config": None,
                "stream_cipher": None,
                "create_stream_on_append": False,
                "create_stream_on_read": False,
            }
            one = {"s2-basin": "init-basin-one"}
            streams = client.get("/v1/streams", headers=one).json()
            assert [s["name"] for s in streams["streams"]] == ["events/a", "plain"]
            assert client.get("/v1/streams/events%2Fa", headers=one).json() == {
                "storage_class": "standard",
                "retention_policy": {"infinite": {}},
                "timestamping": {"mode": "arrival", "uncapped": False},
                "delete_on_empty": {"min_age_secs": 600},
            }
            assert client.get("/v1/streams/plain", headers=one).json() == {
                "storage_class": "standard",
                "retention_policy": {"age": 3600},
                "timestamping": {"mode": "client-prefer", "uncapped": False},
                "delete_on_empty": {"min_age_secs": 0},
            }
            two = client.get("/v1/streams", headers={"s2-basin": "init-basin-two"}).json()
            assert two == {"streams": [], "has_more": False}
    finally:
        code = server.stop(signal.SIGINT)
    assert code == 0, server.output()
    assert not is_listening(server.port)


def test_banner_and_sigterm_with_an_open_connection(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path)
    try:
        server.wait_healthy()
        output = server.output()
        assert f"export S2_ACCOUNT_ENDPOINT=http://localhost:{server.port}\n" in output
        assert f"export S2_BASIN_ENDPOINT=http://localhost:{server.port}\n" in output
        assert "export S2_ACCESS_TOKEN=ignored\n" in output
        # An idle keep-alive connection, as a pooled client leaves it, must not delay the exit.
        with httpx.Client(base_url=server.url) as client:
            assert client.get("/health").http_version == "HTTP/1.1"
            started = time.monotonic()
            code = server.stop(signal.SIGTERM)
            elapsed = time.monotonic() - started
    finally:
        server.kill()
    assert code == 0, server.output()
    assert elapsed < SHUTDOWN_TIMEOUT_S / 2
    assert not is_listening(server.port)


def test_unresponsive_http2_client_cannot_hold_the_server_open(tmp_path: Path) -> None:
    """After the 10 s grace period the server exits even if a client never answers GOAWAY."""
    server = ServerProcess(tmp_path)
    try:
        server.wait_healthy()
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            conn.initiate_connection()
            stream_id = conn.get_next_available_stream_id()
            request = [(":method", "GET"), (":path", "/health"), (":scheme", "http")]
            conn.send_headers(stream_id, [*request, (":authority", "localhost")], end_stream=True)
            sock.sendall(conn.data_to_send())
            assert sock.recv(65536)  # the server's SETTINGS; from now on, never read again
            started = time.monotonic()
            code = server.stop(signal.SIGTERM)
            elapsed = time.monotonic() - started
    finally:
        server.kill()
    assert code == 0, server.output()
    assert elapsed < SHUTDOWN_TIMEOUT_S + 2


def _basin(name: str, **fields: object) -> dict[str, object]:
    return {"name": name, **fields}


@pytest.mark.parametrize(
    "document, message",
    [
        pytest.param(
            {"basins": [_basin("bad-init-basin", colour="blue")]},
            "unknown field",
            id="unknown-basin-key",
        ),
        pytest.param(
            {
                "basins": [
                    _basin(
                        "bad-init-basin",
                        streams=[{"name": "s", "config": {"retention": "1d"}}],
                    )
                ]
            },
            "unknown field",
            id="unknown-stream-config-key",
        ),
        pytest.param(
            {"basins": [_basin("bad-init-basin"), _basin("bad-init-basin")]},
            "duplicate basin name",
            id="duplicate-basin",
        ),
        pytest.param(
            {"basins": [_basin("bad-init-basin", streams=[{"name": "s"}, {"name": "s"}])]},
            "duplicate stream name",
            id="duplicate-stream",
        ),
        pytest.param(
            {
                "basins": [
                    _basin(
                        "bad-init-basin",
                        streams=[{"name": "s", "config": {"retention_policy": "0s"}}],
                    )
                ]
            },
            "greater than 0",
            id="zero-age",
        ),
    ],
)
def test_invalid_init_file_aborts_start_up(
    tmp_path: Path, document: dict[str, object], message: str
) -> None:
    init_file = write_json(tmp_path / "init.json", document)
    server = ServerProcess(tmp_path, "--init-file", str(init_file))
    try:
        deadline = time.monotonic() + 30
        while server.proc.poll() is None:
            assert not is_listening(server.port), "server listened despite a bad init file"
            assert time.monotonic() < deadline, "serve did not exit"
            time.sleep(0.05)
    finally:
        server.kill()
    output = server.output()
    assert server.proc.returncode != 0, output
    assert message in output
    assert "Listening" not in output
    assert "export S2_ACCOUNT_ENDPOINT" not in output


def test_init_file_from_the_environment(tmp_path: Path) -> None:
    """``S2LITE_INIT_FILE`` stands in for ``--init-file``; a bad file aborts start-up."""
    init_file = write_json(tmp_path / "init.json", {"basins": [{"name": "x"}]})
    server = ServerProcess(tmp_path, extra_env={"S2LITE_INIT_FILE": str(init_file)})
    code = server.wait_exit(30)
    server.kill()
    assert code not in (None, 0), server.output()
    assert "basin name should be at least 8 bytes" in server.output()


def test_runserver_points_to_serve() -> None:
    result = subprocess.run(
        manage_command("runserver", "127.0.0.1:0"),
        cwd=REPO_ROOT,
        env=server_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "python manage.py serve" in result.stderr
