"""A local-directory object store, durable before ``put`` returns.

A write goes to a temporary file in the target directory, which is fsync'd, then
hard-linked to its final name (atomic, and failing if the name exists: a
create-only write), and the directory is fsync'd so the new name survives a
crash. A directory the store creates (its root, ``segments/``) is made durable the
same way: its parent is fsync'd before any file in it is acknowledged. File I/O runs
in worker threads, never on the event loop.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from pathlib import Path

from storagecore.ports import ObjectExists, ObjectMissing


class LocalObjectStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        make_dirs_durable(self.root)
        self._durable_dirs = {self.root.resolve()}
        self._dirs_lock = threading.Lock()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"key escapes the store: {key!r}")
        return path

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._put, self._path(key), data)

    def _put(self, path: Path, data: bytes) -> None:
        if path.parent not in self._durable_dirs:
            with self._dirs_lock:
                make_dirs_durable(path.parent)
                self._durable_dirs.add(path.parent)
        temp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(temp, path)
        except FileExistsError:
            raise ObjectExists(str(path)) from None
        finally:
            os.unlink(temp)
        fsync_dir(path.parent)

    async def get(self, key: str, offset: int, length: int) -> bytes:
        return await asyncio.to_thread(self._get, self._path(key), offset, length)

    @staticmethod
    def _get(path: Path, offset: int, length: int) -> bytes:
        try:
            with path.open("rb") as handle:
                handle.seek(offset)
                return handle.read(length)
        except FileNotFoundError:
            raise ObjectMissing(str(path)) from None

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._path(key).unlink, True)

    async def list_keys(self, prefix: str) -> list[str]:
        return await asyncio.to_thread(self._list, prefix)

    def _list(self, prefix: str) -> list[str]:
        keys = []
        for path in self.root.rglob("*"):
            if path.is_file() and not path.name.startswith("."):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    async def close(self) -> None:
        return None


def fsync_dir(path: Path) -> None:
    """Make the names in directory ``path`` (new files, renames, removals) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_dirs_durable(path: Path) -> None:
    """Create ``path`` and its missing parents so that they survive a crash.

    A new directory's name is an entry in its parent: each one created is followed
    by an fsync of its parent (also when another thread or process won the race to
    create it, since that one may not have synced it yet)."""
    missing: list[Path] = []
    current = path.absolute()
    while not current.is_dir():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        directory.mkdir(exist_ok=True)
        fsync_dir(directory.parent)
