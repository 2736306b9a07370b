"""An S3 (or S3-compatible) object store, reached through a boto3 client.

The client is built elsewhere (``s2site.s3`` takes it from a django-storages
``S3Storage``), so that credentials, endpoint and client options are configured
as for any Django storage; this module only uses it, and imports no Django.

* ``put`` is a create-only ``PutObject`` (``If-None-Match: *``): a key that
  already exists is answered ``412 PreconditionFailed`` (or ``409
  ConditionalRequestConflict`` while a concurrent conditional write is in
  progress) and raises ``ObjectExists``; the first object is left as it was.
  The write is durable once S3 answered 200. Should a successful PUT lose its
  response and botocore retry it, the retry sees the object and fails with
  ``ObjectExists``: the flush then fails unacknowledged and leaves an
  unreferenced segment, which is garbage, never lost data.
* ``get`` is one ranged ``GetObject`` (``Range: bytes=a-b``).
* ``list_keys`` pages through ``ListObjectsV2``.

boto3 is blocking: every call, including reading a response body, runs in a
dedicated, bounded thread pool, never on the event loop. Retries and timeouts
are the client's (``default_client_config``: botocore's standard retry mode).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from botocore.config import Config
from botocore.exceptions import ClientError

from storagecore.ports import ObjectExists, ObjectMissing

_T = TypeVar("_T")

DEFAULT_WORKERS = 16
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 30.0
MAX_ATTEMPTS = 4

_EXISTS_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


def default_client_config(max_pool_connections: int = DEFAULT_WORKERS) -> Config:
    """Client options the store relies on: standard retries, bounded timeouts, one
    HTTP connection per worker thread. Options a user configured win over these
    (``default_client_config().merge(user_config)``)."""
    return Config(
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        max_pool_connections=max_pool_connections,
        tcp_keepalive=True,
    )


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _http_status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


class S3ObjectStore:
    """The ``ObjectStore`` port on one bucket, optionally under a key prefix.

    ``prefix`` (e.g. django-storages' ``location``) is added to every key and
    removed from listed keys, so the engine sees the same keys in every store.
    ``put_params`` are extra ``PutObject`` arguments (server-side encryption,
    storage class, ACL); ``get_params`` extra ``GetObject`` arguments (SSE-C keys).
    The client is closed by ``close`` only when ``close_client`` is true. A listing
    asks for ``list_page_size`` keys per request (S3 answers at most 1000).
    """

    def __init__(
        self,
        client: Any,
        bucket: str,
        *,
        prefix: str = "",
        max_workers: int = DEFAULT_WORKERS,
        put_params: Mapping[str, Any] | None = None,
        get_params: Mapping[str, Any] | None = None,
        close_client: bool = False,
        list_page_size: int = 1000,
    ) -> None:
        if not bucket:
            raise ValueError("an S3 object store needs a bucket name")
        self.client = client
        self.bucket = bucket
        prefix = prefix.strip("/")
        self.prefix = f"{prefix}/" if prefix else ""
        self._put_params = dict(put_params or {})
        self._get_params = dict(get_params or {})
        self._close_client = close_client
        self._list_page_size = list_page_size
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="s2-s3")
        self._closed = False

    async def _run(self, fn: Callable[[], _T]) -> _T:
        if self._closed:
            raise RuntimeError("the S3 object store is closed")
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    def _key(self, key: str) -> str:
        return f"{self.prefix}{key}"

    async def put(self, key: str, data: bytes) -> None:
        await self._run(lambda: self._put(self._key(key), bytes(data)))

    def _put(self, key: str, data: bytes) -> None:
        try:
            self.client.put_object(
                Bucket=self.bucket, Key=key, Body=data, IfNoneMatch="*", **self._put_params
            )
        except ClientError as exc:
            if _error_code(exc) in _EXISTS_CODES or _http_status(exc) == 412:
                raise ObjectExists(key) from None
            raise

    async def get(self, key: str, offset: int, length: int) -> bytes:
        if offset < 0 or length < 0:
            raise ValueError(f"invalid range: offset {offset}, length {length}")
        if length == 0:
            return b""
        return await self._run(lambda: self._get(self._key(key), offset, length))

    def _get(self, key: str, offset: int, length: int) -> bytes:
        try:
            response = self.client.get_object(
                Bucket=self.bucket,
                Key=key,
                Range=f"bytes={offset}-{offset + length - 1}",
                **self._get_params,
            )
        except ClientError as exc:
            if _error_code(exc) in _MISSING_CODES:
                raise ObjectMissing(key) from None
            if _error_code(exc) == "InvalidRange":
                return b""  # the range starts at or past the end of the object
            raise
        body = response["Body"]
        try:
            data = body.read()
        finally:
            body.close()
        # A server that ignores Range sends the whole object.
        if response.get("ContentRange") is None and len(data) > length:
            data = data[offset : offset + length]
        return bytes(data)

    async def delete(self, key: str) -> None:
        await self._run(lambda: self.client.delete_object(Bucket=self.bucket, Key=self._key(key)))

    async def list_keys(self, prefix: str) -> list[str]:
        return await self._run(lambda: self._list(prefix))

    def _list(self, prefix: str) -> list[str]:
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self.bucket,
            Prefix=self._key(prefix),
            PaginationConfig={"PageSize": self._list_page_size},
        )
        for page in pages:
            for item in page.get("Contents", []):
                key = str(item["Key"])
                keys.append(key[len(self.prefix) :])
        return sorted(keys)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        pool = self._pool
        # Let in-flight calls finish, without blocking the event loop.
        await asyncio.get_running_loop().run_in_executor(None, pool.shutdown, True)
        if self._close_client:
            self.client.close()
