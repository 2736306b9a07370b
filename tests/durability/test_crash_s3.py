"""SIGKILL mid-load in S3 mode: every acknowledged append survives, exactly once.

The same crash cycles as ``test_crash_local``, with segments in a bucket of a real
S3 protocol server on loopback (moto's server mode, running in this test process,
so it outlives the killed S2 server) and the index in a SQLite file
(``DATABASE_URL``): ``manage.py serve --bucket NAME``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.durability.conftest import BUCKET, CREDENTIALS, _s3
from tests.durability.support import crash_cycles, describe
from tests.e2e.conftest import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def test_sigkill_under_load_loses_no_acknowledged_append_s3(
    tmp_path: Path, s3_endpoint: str
) -> None:
    s3 = _s3(s3_endpoint)
    s3.create_bucket(Bucket=BUCKET)
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {
        **CREDENTIALS,
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
        "DATABASE_URL": f"sqlite:///{tmp_path / 's2.sqlite3'}",
    }

    def start() -> ServerProcess:
        return ServerProcess(logs, "--bucket", BUCKET, extra_env=env)

    reports = crash_cycles(
        start, "durability-s3", kills=3, workers=16, streams=3, load_s=2.5, seed=2
    )
    print(describe(reports))
    # The segments really are objects in the bucket.
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="segments/")
    assert listed["KeyCount"] > 0
