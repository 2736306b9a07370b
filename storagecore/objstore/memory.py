"""An in-memory object store: nothing persists (development, tests)."""

from __future__ import annotations

from storagecore.ports import ObjectExists, ObjectMissing


class MemoryObjectStore:
    def __init__(self) -> None:
        self._objects: dict[str, bytes] = {}

    async def put(self, key: str, data: bytes) -> None:
        if key in self._objects:
            raise ObjectExists(key)
        self._objects[key] = data if type(data) is bytes else bytes(data)

    async def get(self, key: str, offset: int, length: int) -> bytes:
        data = self._objects.get(key)
        if data is None:
            raise ObjectMissing(key)
        return data[offset : offset + length]

    async def delete(self, key: str) -> None:
        self._objects.pop(key, None)

    async def list_keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self._objects if k.startswith(prefix))

    async def close(self) -> None:
        self._objects.clear()
