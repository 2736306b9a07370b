"""``manage.py serve --bucket`` end to end: a real server on S3 (moto), restarted.

Records appended over HTTP/1.1 JSON must be read back, in order, by a new server
process on the same bucket and database, and the segments must be objects under
the ``--path`` prefix of the bucket.
"""

from __future__ import annotations

import logging
import signal
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import ServerProcess
from tests.storage.support import serve_env

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

PREFIX = "s2/e2e-run"
# One log line per request would drown a failure report.
logging.getLogger("httpx").setLevel(logging.WARNING)
STREAMS = ("events", "a/b")


def _append(http: httpx.Client, basin: str, stream: str, bodies: list[str]) -> dict[str, Any]:
    response = http.post(
        f"/v1/streams/{stream.replace('/', '%2F')}/records",
        headers={"s2-basin": basin},
        json={"records": [{"body": body} for body in bodies]},
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def _read_all(http: httpx.Client, basin: str, stream: str) -> list[tuple[int, str]]:
    records: list[tuple[int, str]] = []
    while True:
        response = http.get(
            f"/v1/streams/{stream.replace('/', '%2F')}/records",
            headers={"s2-basin": basin},
            params={"seq_num": len(records)},
        )
        if response.status_code == 416:  # the read starts at the tail: everything was read
            assert response.json()["tail"]["seq_num"] == len(records), response.text
            return records
        assert response.status_code == 200, response.text
        page = [(r["seq_num"], r["body"]) for r in response.json()["records"]]
        assert page, response.text
        records.extend(page)


def _stop(server: ServerProcess) -> None:
    code = server.stop(signal.SIGTERM)
    assert code == 0, f"exit status {code} after SIGTERM:\n{server.output()}"


def test_serve_on_s3_keeps_records_across_a_restart(
    tmp_path: Path, s3_endpoint: str, s3_client: Any, bucket: str
) -> None:
    env = serve_env(s3_endpoint, tmp_path / "s2.sqlite3")
    args = ("--bucket", bucket, "--path", PREFIX)
    basin = f"s3-e2e-{uuid.uuid4().hex[:10]}"
    expected: dict[str, list[tuple[int, str]]] = {s: [] for s in STREAMS}

    server = ServerProcess(tmp_path, *args, extra_env=env)
    try:
        server.wait_healthy()
        assert f"storage: s3 (bucket {bucket})" in server.output()
        with httpx.Client(base_url=server.url, timeout=10.0) as http:
            created = http.post(
                "/v1/basins",
                json={"basin": basin, "config": {"create_stream_on_append": True}},
            )
            assert created.status_code == 201, created.text
            for i in range(8):
                for stream in STREAMS:
                    bodies = [f"{stream}-{i}-{j}" for j in range(i % 3 + 1)]
                    ack = _append(http, basin, stream, bodies)
                    start = len(expected[stream])
                    assert (ack["start"]["seq_num"], ack["end"]["seq_num"]) == (
                        start,
                        start + len(bodies),
                    )
                    expected[stream].extend(enumerate(bodies, start))
            assert _read_all(http, basin, "events") == expected["events"]
    finally:
        _stop(server)

    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert keys, "no segment was written to the bucket"
    assert all(k.startswith(f"{PREFIX}/segments/") and k.endswith(".seg") for k in keys), keys

    restarted = ServerProcess(tmp_path, *args, extra_env=env)
    try:
        restarted.wait_healthy()
        with httpx.Client(base_url=restarted.url, timeout=10.0) as http:
            for stream in STREAMS:
                assert _read_all(http, basin, stream) == expected[stream]
            tail = http.get(f"/v1/streams/{STREAMS[0]}/records/tail", headers={"s2-basin": basin})
            assert tail.json()["tail"]["seq_num"] == len(expected[STREAMS[0]])
            ack = _append(http, basin, STREAMS[0], ["after the restart"])
            assert ack["start"]["seq_num"] == len(expected[STREAMS[0]])
    finally:
        _stop(restarted)

    after = [o["Key"] for o in s3_client.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert set(keys) < set(after)
    assert all(k.startswith(f"{PREFIX}/segments/") for k in after)
