"""The S3 object store, configured as a django-storages ``S3Storage`` (ARCHITECTURE §2).

The bucket is ``settings.S2_BUCKET`` (``serve --bucket``); everything else comes
from ``STORAGES["s2"]`` when the project defines it (its ``BACKEND``, an
``S3Storage`` or a subclass, and its ``OPTIONS``) and from the usual ``AWS_*``
settings and environment variables that django-storages and boto3 read. The
storage provides the boto3 client; ``S3ObjectStore`` uses it for what
django-storages cannot do (create-only writes, ranged reads).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from storagecore.objstore.s3 import DEFAULT_WORKERS, S3ObjectStore, default_client_config

STORAGE_ALIAS = "s2"
DEFAULT_BACKEND = "storages.backends.s3.S3Storage"

# GetObject needs the same customer-provided encryption key that PutObject used.
_DOWNLOAD_PARAMS = ("SSECustomerAlgorithm", "SSECustomerKey", "SSECustomerKeyMD5")


def s3_storage() -> Any:
    """The django-storages storage that holds the segments, with the store's client defaults."""
    config: dict[str, Any] = dict(getattr(settings, "STORAGES", {}).get(STORAGE_ALIAS) or {})
    options: dict[str, Any] = dict(config.get("OPTIONS") or {})
    if settings.S2_BUCKET:
        options["bucket_name"] = settings.S2_BUCKET
    if not options.get("bucket_name") and not getattr(settings, "AWS_STORAGE_BUCKET_NAME", None):
        raise ImproperlyConfigured(
            "S3 storage needs a bucket: pass --bucket NAME (S2_BUCKET) "
            f'or set STORAGES["{STORAGE_ALIAS}"]["OPTIONS"]["bucket_name"]'
        )
    storage = import_string(config.get("BACKEND", DEFAULT_BACKEND))(**options)
    # Standard retries and bounded timeouts, unless the project configured its own.
    storage.client_config = default_client_config(DEFAULT_WORKERS).merge(storage.client_config)
    return storage


def s3_object_store() -> S3ObjectStore:
    storage = s3_storage()
    client = storage.connection.meta.client
    params = dict(storage.object_parameters or {})
    if storage.default_acl:
        params.setdefault("ACL", storage.default_acl)
    return S3ObjectStore(
        client,
        storage.bucket_name,
        prefix=storage.location or "",
        max_workers=DEFAULT_WORKERS,
        put_params=params,
        get_params={k: v for k, v in params.items() if k in _DOWNLOAD_PARAMS},
        close_client=True,
    )
