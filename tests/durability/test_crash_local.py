"""SIGKILL mid-load in local-directory mode: every acknowledged append survives, exactly once.

A real ``manage.py serve --local-root DIR`` process takes concurrent JSON appends
from several client threads; its whole process group (granian's main process and
worker) is SIGKILLed mid-load, a new server is started on the same directory, and
every stream is read back and audited against what the clients were told
(``tests.durability.support``). Three kill/restart cycles; once with plaintext
streams and once with encrypted (AEGIS-256) streams.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.durability.support import crash_cycles, describe
from tests.e2e.conftest import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


@pytest.mark.parametrize("cipher", [None, "aegis-256"], ids=["plaintext", "aegis-256"])
def test_sigkill_under_load_loses_no_acknowledged_append(
    tmp_path: Path, cipher: str | None
) -> None:
    root = tmp_path / "root"
    logs = tmp_path / "logs"
    logs.mkdir()

    def start() -> ServerProcess:
        return ServerProcess(logs, "--local-root", str(root))

    reports = crash_cycles(
        start,
        "durability-local",
        kills=3,
        workers=16,
        streams=3,
        load_s=2.5,
        seed=1,
        cipher=cipher,
    )
    print(describe(reports))
    # The segments really are files under DIR/objects, the index in DIR/s2.sqlite3.
    segments = list((root / "objects" / "segments").iterdir())
    assert segments
    assert (root / "s2.sqlite3").is_file()
    # Record bodies are stored in plaintext only in the plaintext case. ("r0-0-0" is the
    # first record appended; the audits above read it back through the key.)
    stored = b"".join(path.read_bytes() for path in segments)
    assert (b"r0-0-0" in stored) is (cipher is None)
