"""The local-directory store makes every name it creates durable before a put returns.

SIGKILL cannot test this (the page cache survives a killed process; it does not
survive power loss), so the fsync calls themselves are observed: the file's data,
then its name in its directory, and, for every directory the store creates (its
root, ``segments/``, a key prefix), the directory's name in its parent.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from storagecore.objstore.localfs import LocalObjectStore

pytestmark = pytest.mark.e2e


@pytest.fixture
def synced(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths passed to ``os.fsync``, in call order (temporary files by their name)."""
    calls: list[str] = []
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        calls.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return calls


def _is_temp_of(path: str, name: str) -> bool:
    base = os.path.basename(path)
    return base.startswith(f".{name}.") and base.endswith(".tmp")


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
def test_created_directories_and_files_are_fsynced(tmp_path: Path, synced: list[str]) -> None:
    root = tmp_path / "local-root" / "objects"
    store = LocalObjectStore(root)
    # "local-root" is a new name in tmp_path, "objects" a new name in "local-root".
    assert synced == [str(tmp_path), str(tmp_path / "local-root")]

    synced.clear()
    asyncio.run(store.put("segments/first.seg", b"one"))
    assert (root / "segments" / "first.seg").read_bytes() == b"one"
    # "segments" made durable in "objects" before the file is written; then the
    # file's data, then its name.
    assert len(synced) == 3, synced
    assert synced[0] == str(root)
    assert _is_temp_of(synced[1], "first.seg"), synced
    assert synced[2] == str(root / "segments")

    synced.clear()
    asyncio.run(store.put("segments/second.seg", b"two"))
    assert len(synced) == 2, synced  # the directory is known durable now
    assert _is_temp_of(synced[0], "second.seg")
    assert synced[1] == str(root / "segments")

    synced.clear()
    asyncio.run(store.put("prefix/deeper/segments/third.seg", b"three"))
    assert synced[:3] == [str(root), str(root / "prefix"), str(root / "prefix" / "deeper")]
    assert _is_temp_of(synced[3], "third.seg")
    assert synced[4:] == [str(root / "prefix" / "deeper" / "segments")]
    # No temporary file is left behind.
    assert sorted(p.name for p in (root / "segments").iterdir()) == ["first.seg", "second.seg"]
