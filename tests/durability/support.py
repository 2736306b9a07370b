"""Crash-test machinery: a real server under concurrent append load, SIGKILL, and an audit.

Client workers (threads, one HTTP/1.1 connection each) append JSON batches of records
whose bodies are unique ids, and keep a ledger of every append: acknowledged (with the
sequence numbers of the ack) or uncertain (the server died, or answered with an error,
before acknowledging it). ``audit`` reads every stream back from 0 and checks the
ledger against it: each acknowledged record exactly once at its acknowledged position,
each uncertain append wholly present (contiguous, in order) or wholly absent, nothing
duplicated and nothing unknown, contiguous sequence numbers, tail = record count.
With a cipher, the basin encrypts its streams and every record request carries the key.
"""

from __future__ import annotations

import base64
import logging
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import quote

import httpx

from tests.e2e.conftest import ServerProcess

# One log line per request would drown any failure report.
logging.getLogger("httpx").setLevel(logging.WARNING)

REQUEST_TIMEOUT_S = 10.0
READ_PAGE = 1000
# Each kill round loads the server until more than this many appends were acknowledged
# (and for at least its load time), but for no more than LOAD_EXTENSION_S beyond that time.
MIN_ACKED_PER_ROUND = 10
LOAD_EXTENSION_S = 10.0
BATCH_SIZES = (1, 1, 1, 2, 3, 5, 8, 20)
ENCRYPTION_KEY = base64.b64encode(bytes(range(7, 39))).decode()


def kill_group(server: ServerProcess) -> None:
    """SIGKILL granian's main process and its worker (the whole process group) at once."""
    assert server.proc.poll() is None, f"server died before the kill:\n{server.output()}"
    os.killpg(server.proc.pid, signal.SIGKILL)
    server.proc.wait(timeout=10)


@contextmanager
def running(server: ServerProcess) -> Iterator[ServerProcess]:
    """The server, healthy; killed (SIGKILL to its group) if still running on exit."""
    try:
        server.wait_healthy()
        yield server
    finally:
        if server.proc.poll() is None:
            os.killpg(server.proc.pid, signal.SIGKILL)
            server.proc.wait(timeout=10)


def records_path(stream: str) -> str:
    return f"/v1/streams/{quote(stream, safe='')}/records"


def client(url: str, headers: dict[str, str] | None = None) -> httpx.Client:
    return httpx.Client(
        base_url=url, http1=True, http2=False, timeout=REQUEST_TIMEOUT_S, headers=headers
    )


def key_headers(cipher: str | None) -> dict[str, str]:
    return {} if cipher is None else {"s2-encryption-key": ENCRYPTION_KEY}


def create_basin(url: str, basin: str, cipher: str | None = None) -> None:
    config = {"create_stream_on_append": True, "stream_cipher": cipher}
    with client(url) as c:
        response = c.post("/v1/basins", json={"basin": basin, "config": config})
        assert response.status_code == 201, response.text


def append(c: httpx.Client, basin: str, stream: str, ids: list[str]) -> httpx.Response:
    return c.post(
        records_path(stream),
        headers={"s2-basin": basin},
        json={"records": [{"body": i} for i in ids]},
    )


def check_tail(c: httpx.Client, basin: str, stream: str) -> int:
    response = c.get(records_path(stream) + "/tail", headers={"s2-basin": basin})
    assert response.status_code == 200, response.text
    return int(response.json()["tail"]["seq_num"])


def read_all(c: httpx.Client, basin: str, stream: str) -> tuple[list[str], int]:
    """Every record body from seq 0, by unary reads of at most 1000 records; and the tail.

    Checks that sequence numbers are contiguous from 0 and timestamps non-decreasing."""
    tail = check_tail(c, basin, stream)
    bodies: list[str] = []
    last_ts = 0
    while len(bodies) < tail:
        response = c.get(
            records_path(stream),
            headers={"s2-basin": basin},
            params={"seq_num": len(bodies), "count": READ_PAGE},
        )
        assert response.status_code == 200, response.text
        records = response.json()["records"]
        assert records, f"{stream}: empty read at seq {len(bodies)} below tail {tail}"
        assert len(records) <= READ_PAGE
        for record in records:
            assert record["seq_num"] == len(bodies), (stream, record["seq_num"], len(bodies))
            assert record["timestamp"] >= last_ts
            last_ts = record["timestamp"]
            bodies.append(record.get("body", ""))
    assert len(bodies) == tail
    assert check_tail(c, basin, stream) == tail, "tail moved while nothing was appending"
    return bodies, tail


@dataclass
class Append:
    stream: str
    ids: list[str]
    start: int | None = None  # acknowledged sequence numbers, when acknowledged
    end: int | None = None
    error: str | None = None  # why it is uncertain


@dataclass
class Ledger:
    acked: list[Append] = field(default_factory=list)
    uncertain: list[Append] = field(default_factory=list)
    # Whether each uncertain append turned out to be durable (fixed at its first audit).
    resolved: dict[int, bool] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ack(self, item: Append) -> None:
        with self.lock:
            self.acked.append(item)

    def lost_track(self, item: Append) -> None:
        with self.lock:
            self.uncertain.append(item)


@dataclass
class KillReport:
    """What was going on when the server was killed, and what survived it."""

    acked_appends: int = 0
    acked_records: int = 0
    inflight_appends: int = 0  # requests under way at the moment of the kill
    inflight_records: int = 0
    unanswered: int = 0  # appends that got no answer (in flight, or sent after the kill)
    unanswered_durable: int = 0  # of those, found whole after the restart
    http_errors: list[str] = field(default_factory=list)


class Worker(threading.Thread):
    def __init__(
        self,
        url: str,
        basin: str,
        streams: list[str],
        tag: str,
        ledger: Ledger,
        stop: threading.Event,
        seed: int,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(name=f"append-{tag}", daemon=True)
        self.headers = headers
        self.url, self.basin, self.streams, self.tag = url, basin, streams, tag
        self.ledger, self.stop = ledger, stop
        self.random = random.Random(seed)
        self.counter = 0
        self.failure: BaseException | None = None
        self.current: Append | None = None  # the append whose request is under way

    def run(self) -> None:
        try:
            self._run()
        except BaseException as exc:  # noqa: BLE001 -- re-raised in the test thread
            self.failure = exc

    def _run(self) -> None:
        with client(self.url, self.headers) as c:
            while not self.stop.is_set():
                size = self.random.choice(BATCH_SIZES)
                ids = [f"{self.tag}-{self.counter + i}" for i in range(size)]
                self.counter += size
                item = Append(self.random.choice(self.streams), ids)
                self.current = item
                try:
                    response = append(c, self.basin, item.stream, ids)
                except httpx.TransportError as exc:
                    item.error = f"{type(exc).__name__}: {exc}"
                    self.ledger.lost_track(item)
                    return
                finally:
                    self.current = None
                if response.status_code != 200:
                    item.error = f"HTTP {response.status_code}: {response.text}"
                    self.ledger.lost_track(item)
                    return
                ack = response.json()
                item.start, item.end = ack["start"]["seq_num"], ack["end"]["seq_num"]
                assert item.end - item.start == size, ack
                assert ack["tail"]["seq_num"] >= item.end, ack
                self.ledger.ack(item)


def load_then_kill(
    server: ServerProcess,
    basin: str,
    streams: list[str],
    ledger: Ledger,
    round_tag: str,
    workers: int,
    load_s: float,
    seed: int,
    headers: dict[str, str],
) -> KillReport:
    """Append from ``workers`` threads for ``load_s`` seconds, then SIGKILL the server."""
    stop = threading.Event()
    threads = [
        Worker(
            server.url, basin, streams, f"{round_tag}w{n}", ledger, stop, seed * 1000 + n, headers
        )
        for n in range(workers)
    ]
    acked_before, uncertain_before = len(ledger.acked), len(ledger.uncertain)
    for thread in threads:
        thread.start()
    # At least ``load_s``, and until enough appends were acknowledged for the round to mean
    # something (a loaded machine can be slow to get going), within a bound.
    started = time.monotonic()
    while time.monotonic() - started < load_s + LOAD_EXTENSION_S:
        time.sleep(0.05)
        enough = len(ledger.acked) - acked_before > MIN_ACKED_PER_ROUND
        if enough and time.monotonic() - started >= load_s:
            break
    assert not [t.failure for t in threads if t.failure], [t.failure for t in threads]
    assert all(t.is_alive() for t in threads), "a worker stopped before the kill: " + repr(
        [a.error for a in ledger.uncertain[uncertain_before:]]
    )
    inflight = [t.current for t in threads if t.current is not None]
    kill_group(server)
    stop.set()  # requests started after the kill fail to connect
    for thread in threads:
        thread.join(timeout=REQUEST_TIMEOUT_S + 5)
        assert not thread.is_alive(), f"{thread.name} is stuck"
        assert thread.failure is None, thread.failure
    report = KillReport()
    with ledger.lock:
        new_acked = ledger.acked[acked_before:]
        new_uncertain = ledger.uncertain[uncertain_before:]
    report.acked_appends = len(new_acked)
    report.acked_records = sum(len(a.ids) for a in new_acked)
    report.inflight_appends = len(inflight)
    report.inflight_records = sum(len(a.ids) for a in inflight if a is not None)
    report.unanswered = len(new_uncertain)
    report.http_errors = [
        a.error or "" for a in new_uncertain if (a.error or "").startswith("HTTP")
    ]
    return report


def audit(
    url: str, basin: str, streams: list[str], ledger: Ledger, headers: dict[str, str] | None = None
) -> dict[str, int]:
    """Check every stream against the ledger; returns each stream's tail."""
    where: dict[str, tuple[str, int]] = {}
    tails: dict[str, int] = {}
    with client(url, headers) as c:
        for stream in streams:
            bodies, tails[stream] = read_all(c, basin, stream)
            for seq, body in enumerate(bodies):
                assert body not in where, f"record {body} duplicated: {where[body]}, {stream}@{seq}"
                where[body] = (stream, seq)

    known: set[str] = set()
    for item in ledger.acked:
        assert item.start is not None
        for offset, record_id in enumerate(item.ids):
            known.add(record_id)
            assert where.get(record_id) == (item.stream, item.start + offset), (
                f"acknowledged record {record_id} expected at {item.stream}@"
                f"{item.start + offset}, found at {where.get(record_id)}"
            )
    for index, item in enumerate(ledger.uncertain):
        known.update(item.ids)
        found = [where.get(record_id) for record_id in item.ids]
        present = [f for f in found if f is not None]
        assert len(present) in (0, len(item.ids)), f"partial batch {item}: {found}"
        durable = bool(present)
        if durable:
            first_stream, first_seq = present[0]
            assert found == [(first_stream, first_seq + i) for i in range(len(item.ids))], (
                f"unacknowledged batch not contiguous: {item} {found}"
            )
            assert first_stream == item.stream
        previous = ledger.resolved.setdefault(index, durable)
        assert previous == durable, f"uncertain append {item} changed from {previous} to {durable}"
    unknown = set(where) - known
    assert not unknown, f"records that nobody appended: {sorted(unknown)[:5]}"
    return tails


def append_after_restart(
    url: str,
    basin: str,
    streams: list[str],
    ledger: Ledger,
    tails: dict[str, int],
    tag: str,
    headers: dict[str, str] | None = None,
) -> None:
    """One acknowledged append per stream, which must start exactly at the audited tail."""
    with client(url, headers) as c:
        for n, stream in enumerate(streams):
            ids = [f"{tag}-{n}-{i}" for i in range(3)]
            response = append(c, basin, stream, ids)
            assert response.status_code == 200, response.text
            ack = response.json()
            assert ack["start"]["seq_num"] == tails[stream], (stream, ack, tails[stream])
            assert ack["end"]["seq_num"] == tails[stream] + len(ids)
            assert ack["tail"]["seq_num"] == tails[stream] + len(ids)
            ledger.ack(Append(stream, ids, ack["start"]["seq_num"], ack["end"]["seq_num"]))


def crash_cycles(
    start_server: Callable[[], ServerProcess],
    basin: str,
    *,
    kills: int,
    workers: int,
    streams: int,
    load_s: float,
    seed: int,
    cipher: str | None = None,
) -> list[KillReport]:
    """Load, SIGKILL, restart, audit, append at the tail: ``kills`` times; then a final audit."""
    names = [f"crash-{n}" for n in range(streams)]
    headers = key_headers(cipher)
    ledger = Ledger()
    reports: list[KillReport] = []
    servers = [start_server()]
    try:
        server = servers[0]
        server.wait_healthy()
        create_basin(server.url, basin, cipher)
        append_after_restart(
            server.url, basin, names, ledger, dict.fromkeys(names, 0), "r0", headers
        )
        for round_number in range(1, kills + 1):
            tag = f"r{round_number}"
            report = load_then_kill(
                server, basin, names, ledger, tag, workers, load_s, seed + round_number, headers
            )
            assert not report.http_errors, report.http_errors
            reports.append(report)
            server = start_server()
            servers.append(server)
            server.wait_healthy()
            durable_before = sum(ledger.resolved.values())
            tails = audit(server.url, basin, names, ledger, headers)
            report.unanswered_durable = sum(ledger.resolved.values()) - durable_before
            append_after_restart(server.url, basin, names, ledger, tails, f"{tag}a", headers)
        audit(server.url, basin, names, ledger, headers)
        code = server.stop()
        assert code == 0, f"exit status {code} after SIGTERM:\n{server.output()}"
    finally:
        for process in servers:
            if process.proc.poll() is None:
                os.killpg(process.proc.pid, signal.SIGKILL)
                process.proc.wait(timeout=10)
    assert all(r.acked_appends > MIN_ACKED_PER_ROUND for r in reports), reports
    return reports


def describe(reports: list[KillReport]) -> str:
    return "\n" + "\n".join(
        f"kill {n}: {r.acked_appends} appends ({r.acked_records} records) acknowledged; "
        f"{r.inflight_appends} appends ({r.inflight_records} records) in flight at the kill; "
        f"{r.unanswered} unanswered, {r.unanswered_durable} of them durable after restart"
        for n, r in enumerate(reports, 1)
    )
