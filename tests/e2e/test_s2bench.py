"""s2bench against a real server: the stream bench and the followers bench report
verified runs; a record slipped into the bench's stream makes it fail (exit 1)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import REPO_ROOT, ServerProcess, server_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

LATENCY_KEYS = {"count", "min", "p50", "p90", "p99", "max"}


def bench_command(url: str, basin: str, *args: str, django: bool = False) -> list[str]:
    entry = ["manage.py", "s2bench"] if django else ["-m", "s2site.bench"]
    return [sys.executable, *entry, basin, "--endpoint", url, "--no-progress", "--json", *args]


def bench_env() -> dict[str, str]:
    """The plain-script mode must not need Django settings."""
    env = server_env()
    env.pop("DJANGO_SETTINGS_MODULE", None)
    return env


def run_bench(command: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=REPO_ROOT, env=bench_env(), capture_output=True, text=True, timeout=150
    )


def check_stream_report(report: dict[str, Any], record_size: int) -> None:
    write, catchup = report["write"], report["catchup"]
    assert report["verification_errors"] == 0
    assert report["record_size"] == record_size
    assert write["records"] > 0 and write["bytes"] == write["records"] * record_size
    assert write["mibps"] > 0 and write["elapsed_s"] > 0
    assert catchup["records"] == write["records"] and catchup["bytes"] == write["bytes"]
    assert catchup["mibps"] > 0 and catchup["records_per_s"] > 0
    for key in ("ack_latency_ms", "e2e_latency_ms"):
        summary = report[key]
        assert set(summary) == LATENCY_KEYS
        assert summary["count"] == write["records"]
        assert 0 <= summary["min"] <= summary["p50"] <= summary["p99"] <= summary["max"]


def stream_bench(url: str, basin: str, record_size: int = 4096) -> dict[str, Any]:
    args = ("--duration", "2s", "--catchup-delay", "0s", "--target-mibps", "2")
    result = run_bench(bench_command(url, basin, *args, "--record-size", str(record_size)))
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    check_stream_report(report, record_size)
    return report


def test_stream_bench_in_memory_mode(server_url: str, unique: str) -> None:
    report = stream_bench(server_url, f"bench-{unique}")
    # 2 MiB/s of 4 KiB records for 2 s: every record due is written.
    assert report["write"]["records"] == 1024
    # The bench deletes its stream afterwards.
    with httpx.Client(base_url=server_url) as client:
        listed = client.get("/v1/streams", headers={"s2-basin": f"bench-{unique}"}).json()
    assert report["stream"] not in {s["name"] for s in listed["streams"] if not s["deleted_at"]}


def test_stream_bench_in_local_directory_mode(tmp_path: Path, unique: str) -> None:
    server = ServerProcess(tmp_path, "--local-root", str(tmp_path / "data"))
    try:
        server.wait_healthy()
        stream_bench(server.url, f"bench-{unique}", record_size=8192)
        segments = list((tmp_path / "data" / "objects").rglob("*"))
        assert any(p.is_file() for p in segments)
    finally:
        assert server.stop() == 0, server.output()


def test_followers_bench_through_the_django_command(server_url: str, unique: str) -> None:
    args = ("--followers", "30", "--duration", "1s", "--append-interval", "100ms")
    result = run_bench(bench_command(server_url, f"bench-{unique}", *args, django=True))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["verification_errors"] == 0
    assert report["followers"] == 30 and report["records"] == 10
    assert report["deliveries"] == 300
    assert report["delivery_latency_ms"]["count"] == 300
    assert report["all_delivered_latency_ms"]["count"] == 10
    assert report["all_delivered_latency_ms"]["max"] >= report["delivery_latency_ms"]["p50"]


def test_a_foreign_record_in_the_stream_fails_the_run(server_url: str, unique: str) -> None:
    basin = f"bench-{unique}"
    args = ("--duration", "8s", "--catchup-delay", "0s", "--target-mibps", "1")
    bench = subprocess.Popen(
        bench_command(server_url, basin, *args),
        cwd=REPO_ROOT,
        env=bench_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with httpx.Client(base_url=server_url, headers={"s2-basin": basin}) as client:
            stream = _wait_for_bench_stream(client)
            time.sleep(0.5)
            slipped = client.post(
                f"/v1/streams/{stream}/records",
                json={"records": [{"body": "not from the bench", "timestamp": 1}]},
            )
            assert slipped.status_code == 200, slipped.text
        _out, err = bench.communicate(timeout=60)
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
    assert bench.returncode == 1, err
    assert "verification failed" in err


def _wait_for_bench_stream(client: httpx.Client) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        response = client.get("/v1/streams", params={"prefix": "bench-"})
        if response.status_code == 200 and response.json()["streams"]:
            return str(response.json()["streams"][0]["name"])
        time.sleep(0.05)
    raise AssertionError("the bench did not create its stream")


def test_followers_bench_over_sse(server_url: str, unique: str) -> None:
    args = ("--followers", "10", "--sse", "--duration", "1s", "--append-interval", "200ms")
    result = run_bench(bench_command(server_url, f"bench-{unique}", *args))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["protocol"] == "sse" and report["verification_errors"] == 0
    assert report["records"] == 5 and report["deliveries"] == 50
