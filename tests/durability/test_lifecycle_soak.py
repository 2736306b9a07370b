"""Soak: appends, trims, compaction and garbage collection racing with readers and a SIGKILL.

A real server runs with every background pass a fraction of a second apart and no
garbage-collection grace at all, so that segments are deleted as soon as no index
row references them -- while readers are in the middle of reading them. Writers
append unique ids to three streams, a trimmer keeps each stream to its last few
hundred records, readers read the streams over and over and check every page
(contiguous sequence numbers, each id at its acknowledged position, never twice).
The server is SIGKILLed mid-load and restarted on the same storage, the load goes
on, and then: every acknowledged record above the trim point reads back exactly
once, nothing trimmed reads back, and the number of objects and of index rows is
bounded by the retained data, not by the number of appends. Local directory and S3.
"""

from __future__ import annotations

import base64
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.durability.conftest import BUCKET, CREDENTIALS, _s3
from tests.durability.support import client, create_basin, kill_group, records_path, running
from tests.e2e.conftest import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

STREAMS = ["soak-a", "soak-b", "soak-c"]
BASIN = "lifecycle-soak"
KEEP = 300  # records the trimmer keeps per stream
BATCH = 20  # records per append
LOAD_S = 6.0
SETTLE_S = 3.0
# Each of the two load phases lasts at least LOAD_S / 2 and until this many appends were
# acknowledged in it (a loaded machine, or S3's flush interval, can make a phase slow), but
# no more than LOAD_EXTENSION_S longer.
MIN_APPENDS_PER_PHASE = 60
LOAD_EXTENSION_S = 15.0
B64 = {"s2-basin": BASIN, "s2-format": "base64"}
ENV = {
    "S2_TRIM_INTERVAL_S": "0.2",
    "S2_RETENTION_INTERVAL_S": "0.2",
    "S2_GC_INTERVAL_S": "0.1",
    "S2_GC_GRACE_S": "0",
    "S2_ORPHAN_SWEEP_INTERVAL_S": "0.5",
    "S2_COMPACTION_INTERVAL_S": "0.2",
    "S2_COMPACTION_TARGET_BYTES": "8192",
}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@dataclass
class Ledger:
    """Acknowledged ids by (stream, seq), ids whose fate is unknown, problems seen."""

    acked: dict[tuple[str, int], str] = field(default_factory=dict)
    uncertain: set[str] = field(default_factory=set)
    trimmed_to: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    appends: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class Load:
    """Writer, trimmer and reader threads against one server until ``stop``."""

    def __init__(self, url: str, ledger: Ledger, tag: str) -> None:
        self.url = url
        self.ledger = ledger
        self.tag = tag
        self.stopping = threading.Event()
        self.server_down = threading.Event()
        self.threads = [
            threading.Thread(target=self._writer, args=(i,), daemon=True) for i in range(3)
        ]
        self.threads.append(threading.Thread(target=self._trimmer, daemon=True))
        self.threads += [
            threading.Thread(target=self._reader, args=(i,), daemon=True) for i in range(2)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _problem(self, text: str) -> None:
        if not self.server_down.is_set():
            with self.ledger.lock:
                self.ledger.problems.append(text)

    def _writer(self, index: int) -> None:
        stream = STREAMS[index]
        n = 0
        with client(self.url) as c:
            while not self.stopping.is_set():
                ids = [f"{self.tag}-{index}-{n + i}" for i in range(BATCH)]
                n += BATCH
                body = {"records": [{"body": _b64(i.encode())} for i in ids]}
                try:
                    response = c.post(records_path(stream), headers=B64, json=body)
                except httpx.HTTPError:
                    with self.ledger.lock:
                        self.ledger.uncertain.update(ids)
                    continue
                if response.status_code != 200:
                    with self.ledger.lock:
                        self.ledger.uncertain.update(ids)
                    self._problem(f"append {response.status_code}: {response.text}")
                    continue
                start = response.json()["start"]["seq_num"]
                with self.ledger.lock:
                    self.ledger.appends += 1
                    for offset, record_id in enumerate(ids):
                        self.ledger.acked[(stream, start + offset)] = record_id

    def _trimmer(self) -> None:
        with client(self.url) as c:
            while not self.stopping.wait(0.3):
                for stream in STREAMS:
                    try:
                        tail = c.get(records_path(stream) + "/tail", headers=B64)
                        if tail.status_code != 200:
                            continue
                        point = tail.json()["tail"]["seq_num"] - KEEP
                        if point <= 0:
                            continue
                        trim = {
                            "headers": [[_b64(b""), _b64(b"trim")]],
                            "body": _b64(point.to_bytes(8, "big")),
                        }
                        response = c.post(
                            records_path(stream), headers=B64, json={"records": [trim]}
                        )
                    except httpx.HTTPError:
                        continue
                    if response.status_code == 200:
                        with self.ledger.lock:
                            self.ledger.trimmed_to[stream] = max(
                                point, self.ledger.trimmed_to.get(stream, 0)
                            )

    def _reader(self, index: int) -> None:
        with client(self.url) as c:
            while not self.stopping.is_set():
                for stream in STREAMS[index::2] + STREAMS[1 - index :: 2]:
                    try:
                        read_stream(c, stream, self.ledger, self._problem)
                    except httpx.HTTPError:
                        continue


def read_stream(
    c: httpx.Client, stream: str, ledger: Ledger, problem: Callable[[str], None]
) -> list[tuple[int, str]]:
    """Every record of ``stream`` from 0 to the tail seen at the start, checked page by page."""
    tail_response = c.get(records_path(stream) + "/tail", headers=B64)
    if tail_response.status_code != 200:
        problem(f"tail {tail_response.status_code}: {tail_response.text}")
        return []
    tail = tail_response.json()["tail"]["seq_num"]
    seq = 0
    out: list[tuple[int, str]] = []
    while seq < tail:
        response = c.get(records_path(stream), headers=B64, params={"seq_num": seq})
        if response.status_code != 200:
            problem(f"read {stream}@{seq} {response.status_code}: {response.text}")
            return out
        records = response.json()["records"]
        if not records:
            problem(f"empty read of {stream} at {seq} below the tail {tail}")
            return out
        for record in records:
            number = record["seq_num"]
            if out and number != out[-1][0] + 1:
                problem(f"{stream}: {number} follows {out[-1][0]} (gap or duplicate)")
            if number < seq:
                problem(f"{stream}: read at {seq} returned {number}")
            body = base64.b64decode(record.get("body", "")).decode(errors="replace")
            with ledger.lock:
                expected = ledger.acked.get((stream, number))
            if not record.get("headers") and expected is not None and body != expected:
                problem(f"{stream}@{number}: {body!r} instead of {expected!r}")
            out.append((number, "" if record.get("headers") else body))
        seq = records[-1]["seq_num"] + 1
    return out


@dataclass
class Storage:
    count_objects: Callable[[], int]
    database: Path


def _keep_loading(ledger: Ledger) -> None:
    before, started = ledger.appends, time.monotonic()
    while time.monotonic() - started < LOAD_S / 2 + LOAD_EXTENSION_S:
        time.sleep(0.05)
        enough = ledger.appends - before >= MIN_APPENDS_PER_PHASE
        if enough and time.monotonic() - started >= LOAD_S / 2:
            return


def soak(start: Callable[[], ServerProcess], storage: Storage) -> dict[str, int]:
    ledger = Ledger()
    first = start()
    with running(first):
        create_basin(first.url, BASIN)
        with client(first.url) as c:
            for stream in STREAMS:
                created = c.post("/v1/streams", headers=B64, json={"stream": stream})
                assert created.status_code == 201, created.text
        load = Load(first.url, ledger, "one")
        load.start()
        _keep_loading(ledger)
        load.server_down.set()
        kill_group(first)
        load.stop()
    second = start()
    with running(second):
        load = Load(second.url, ledger, "two")
        load.start()
        _keep_loading(ledger)
        load.stop()
        time.sleep(SETTLE_S)  # the passes catch up: trim, compaction, GC
        with client(second.url) as c:
            final = {
                stream: read_stream(c, stream, ledger, ledger.problems.append) for stream in STREAMS
            }
        objects = storage.count_objects()
        with sqlite3.connect(storage.database) as db:
            rows = db.execute("SELECT COUNT(*) FROM storagecore_chunk").fetchone()[0]
            garbage = db.execute("SELECT COUNT(*) FROM storagecore_garbagesegment").fetchone()[0]
    assert not ledger.problems, "\n".join(ledger.problems[:20])
    for stream, records in final.items():
        assert records, stream
        first_seq = records[0][0]
        # Nothing below the last acknowledged trim reads back; everything above does, once.
        assert first_seq >= ledger.trimmed_to.get(stream, 0), (stream, first_seq)
        bodies = [body for _, body in records if body]
        assert len(bodies) == len(set(bodies)), f"{stream}: a record read back twice"
        seen = dict(records)
        for (acked_stream, seq), record_id in ledger.acked.items():
            if acked_stream == stream and seq >= first_seq:
                assert seen.get(seq) == record_id, (stream, seq, record_id, seen.get(seq))
        unknown = {b for b in bodies} - set(ledger.acked.values()) - ledger.uncertain
        assert not unknown, f"{stream}: records nobody appended: {sorted(unknown)[:5]}"
    # Bounded by what is retained (three streams of ~KEEP records), not by the appends.
    assert ledger.appends >= 2 * MIN_APPENDS_PER_PHASE, ledger.appends
    assert set(ledger.trimmed_to) == set(STREAMS), ledger.trimmed_to
    bound = len(STREAMS) * 80
    assert rows <= bound, f"{rows} index rows after {ledger.appends} appends"
    assert objects <= rows + 10, f"{objects} objects for {rows} index rows"
    assert garbage <= 10, f"{garbage} garbage notes left"
    return {"appends": ledger.appends, "rows": rows, "objects": objects, "garbage": garbage}


def test_soak_local_directory(tmp_path: Path) -> None:
    root = tmp_path / "root"
    logs = tmp_path / "logs"
    logs.mkdir()

    def start() -> ServerProcess:
        return ServerProcess(logs, "--local-root", str(root), extra_env=ENV)

    def count_objects() -> int:
        return sum(1 for p in (root / "objects" / "segments").iterdir() if p.is_file())

    print(soak(start, Storage(count_objects, root / "s2.sqlite3")))


def test_soak_s3(tmp_path: Path, s3_endpoint: str) -> None:
    s3 = _s3(s3_endpoint)
    s3.create_bucket(Bucket=BUCKET)
    logs = tmp_path / "logs"
    logs.mkdir()
    database = tmp_path / "s2.sqlite3"
    env = {
        **ENV,
        **CREDENTIALS,
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
        "DATABASE_URL": f"sqlite:///{database}",
    }

    def start() -> ServerProcess:
        return ServerProcess(logs, "--bucket", BUCKET, extra_env=env)

    def count_objects() -> int:
        listed = s3.list_objects_v2(Bucket=BUCKET, Prefix="segments/")
        return int(listed["KeyCount"])

    print(soak(start, Storage(count_objects, database)))
