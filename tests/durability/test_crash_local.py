"""SIGKILL mid-load in local-directory mode: every acknowledged append survives, exactly once.

A real ``manage.py serve --local-root DIR`` process takes concurrent JSON appends
from several client threads; its whole process group (granian's main process and
worker) is SIGKILLed mid-load, a new server is started on the same directory, and
every stream is read back and audited against what the clients were told
(``tests.durability.support``). Three kill/restart cycles.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.durability.support import crash_cycles, describe
from tests.e2e.conftest import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def test_sigkill_under_load_loses_no_acknowledged_append(tmp_path: Path) -> None:
    root = tmp_path / "root"
    logs = tmp_path / "logs"
    logs.mkdir()

    def start() -> ServerProcess:
        return ServerProcess(logs, "--local-root", str(root))

    reports = crash_cycles(
        start, "durability-local", kills=3, workers=16, streams=3, load_s=2.5, seed=1
    )
    print(describe(reports))
    # The segments really are files under DIR/objects, the index in DIR/s2.sqlite3.
    assert any((root / "objects" / "segments").iterdir())
    assert (root / "s2.sqlite3").is_file()
