"""A second server on the same local root takes the writer lease and fences out the first.

Server A appends; server B starts on the same ``--local-root`` (same SQLite database,
same objects directory). From then on every append through A fails with 503
``unavailable`` and never becomes visible, while B continues at the tail it sees.
A third server, started after both are gone, sees exactly A's pre-fence records
followed by B's.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.durability.conftest import BUCKET, CREDENTIALS, _s3
from tests.durability.support import (
    Ledger,
    Worker,
    append,
    append_after_restart,
    audit,
    check_tail,
    client,
    create_basin,
    read_all,
    running,
)
from tests.e2e.conftest import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

BASIN = "durability-fencing"
STREAM = "fenced"
FRESH_STREAM = "touched-only-after-the-fence"


def _ack(c: httpx.Client, stream: str, ids: list[str]) -> tuple[int, int]:
    response = append(c, BASIN, stream, ids)
    assert response.status_code == 200, response.text
    ack = response.json()
    return ack["start"]["seq_num"], ack["end"]["seq_num"]


def _fenced(c: httpx.Client, stream: str, ids: list[str]) -> None:
    response = append(c, BASIN, stream, ids)
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "code": "unavailable",
        "message": "this server was fenced out by another writer",
    }


def _visible(url: str, stream: str) -> list[str]:
    with client(url) as c:
        response = c.get(f"/v1/streams/{stream}/records/tail", headers={"s2-basin": BASIN})
        if response.status_code == 404:
            assert response.json()["code"] == "stream_not_found"
            return []
        return read_all(c, BASIN, stream)[0]


def test_second_server_fences_out_the_first(tmp_path: Path) -> None:
    root = tmp_path / "root"
    logs = tmp_path / "logs"
    logs.mkdir()
    _second_server_fences_out_the_first(lambda: ServerProcess(logs, "--local-root", str(root)))


def test_second_server_fences_out_the_first_s3(tmp_path: Path, s3_endpoint: str) -> None:
    """The same on one bucket and one database: the lease lives in the database."""
    bucket = f"{BUCKET}-fencing"
    _s3(s3_endpoint).create_bucket(Bucket=bucket)
    logs = tmp_path / "logs"
    logs.mkdir()
    env = {
        **CREDENTIALS,
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
        "DATABASE_URL": f"sqlite:///{tmp_path / 's2.sqlite3'}",
    }
    _second_server_fences_out_the_first(
        lambda: ServerProcess(logs, "--bucket", bucket, extra_env=env)
    )


def _second_server_fences_out_the_first(start: Callable[[], ServerProcess]) -> None:
    pre_fence = [f"a-{n}" for n in range(7)]
    b_ids = [f"b-{n}" for n in range(6)]

    with running(start()) as a:
        create_basin(a.url, BASIN)
        with client(a.url) as via_a:
            assert _ack(via_a, STREAM, pre_fence[:3]) == (0, 3)
            assert _ack(via_a, STREAM, pre_fence[3:4]) == (3, 4)
            assert _ack(via_a, STREAM, pre_fence[4:]) == (4, 7)

            with (
                running(start()) as b,
                client(b.url) as via_b,
            ):
                # B's lease is taken once its runtime is up: it serves the data plane.
                assert check_tail(via_b, BASIN, STREAM) == len(pre_fence)

                # Every append through A now fails, retryably, and is not acknowledged.
                _fenced(via_a, STREAM, ["a-late-0", "a-late-1"])
                _fenced(via_a, STREAM, ["a-late-2"])
                _fenced(via_a, FRESH_STREAM, ["a-late-3"])

                # B continues at the tail it sees.
                assert _ack(via_b, STREAM, b_ids[:2]) == (7, 9)
                _fenced(via_a, STREAM, ["a-late-4"])
                assert _ack(via_b, STREAM, b_ids[2:5]) == (9, 12)
                _fenced(via_a, STREAM, ["a-late-5"])
                assert _ack(via_b, STREAM, b_ids[5:]) == (12, 13)
                assert check_tail(via_b, BASIN, STREAM) == 13

                assert _visible(b.url, STREAM) == pre_fence + b_ids
                assert _visible(b.url, FRESH_STREAM) == []

                code = b.stop()
                assert code == 0, b.output()
        assert "fenced out by another server" in a.output()
        assert a.stop() == 0, a.output()

    # After both are gone, a new server sees the same log: A's fenced appends never landed.
    with running(start()) as c:
        assert _visible(c.url, STREAM) == pre_fence + b_ids
        assert _visible(c.url, FRESH_STREAM) == []
        with client(c.url) as via_c:
            assert _ack(via_c, STREAM, ["c-0"]) == (13, 14)
        assert c.stop() == 0, c.output()


def test_fencing_under_load(tmp_path: Path) -> None:
    """B starts while A is taking appends: A's acknowledged appends all survive at their
    positions, every append A refuses (503 ``unavailable``) stays invisible, and B goes on
    from the tail."""
    root = tmp_path / "root"
    logs = tmp_path / "logs"
    logs.mkdir()
    streams = ["load-0", "load-1"]
    ledger = Ledger()
    stop = threading.Event()
    with running(ServerProcess(logs, "--local-root", str(root))) as a:
        create_basin(a.url, BASIN)
        workers = [Worker(a.url, BASIN, streams, f"a{n}", ledger, stop, seed=n) for n in range(8)]
        for worker in workers:
            worker.start()
        try:
            deadline = time.monotonic() + 15
            while len(ledger.acked) <= 10 and time.monotonic() < deadline:
                time.sleep(0.05)  # A is under load and has acknowledged some appends
            with running(ServerProcess(logs, "--local-root", str(root))) as b:
                # Each worker stops at its first refused append.
                for worker in workers:
                    worker.join(timeout=30)
                    assert not worker.is_alive(), "A still acknowledges appends after B started"
                    assert worker.failure is None, worker.failure
                assert len(ledger.uncertain) == len(workers)
                for item in ledger.uncertain:
                    assert item.error is not None
                    assert item.error.startswith("HTTP 503: "), item.error
                    assert '"code":"unavailable"' in item.error.replace(" ", ""), item.error
                assert len(ledger.acked) > 10

                tails = audit(b.url, BASIN, streams, ledger)
                assert not any(ledger.resolved.values()), "a refused append became visible"
                assert sum(tails.values()) == sum(len(x.ids) for x in ledger.acked)
                append_after_restart(b.url, BASIN, streams, ledger, tails, "b")
                audit(b.url, BASIN, streams, ledger)
                assert b.stop() == 0, b.output()
                print(
                    f"\nfencing under load: {len(ledger.acked)} appends acknowledged by A, "
                    f"{len(ledger.uncertain)} refused with 503 after B took the lease"
                )
        finally:
            stop.set()
        assert "fenced out by another server" in a.output()
        assert a.stop() == 0, a.output()
