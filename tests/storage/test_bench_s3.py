"""s2bench against ``manage.py serve --bucket`` on S3 (moto on loopback): a verified run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ServerProcess
from tests.e2e.test_s2bench import bench_command, check_stream_report, run_bench
from tests.storage.support import serve_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def test_stream_bench_in_s3_mode(
    tmp_path: Path, s3_endpoint: str, s3_client: Any, bucket: str
) -> None:
    env = serve_env(s3_endpoint, tmp_path / "s2.sqlite3")
    server = ServerProcess(tmp_path, "--bucket", bucket, "--path", "bench", extra_env=env)
    try:
        server.wait_healthy()
        args = ("--duration", "2s", "--catchup-delay", "0s", "--target-mibps", "2")
        result = run_bench(bench_command(server.url, "bench-s3", *args, "--record-size", "8192"))
        assert result.returncode == 0, result.stderr
        check_stream_report(json.loads(result.stdout), 8192)
        listed = s3_client.list_objects_v2(Bucket=bucket, Prefix="bench/")
        assert listed.get("KeyCount", 0) > 0
    finally:
        assert server.stop() == 0, server.output()
