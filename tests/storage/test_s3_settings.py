"""The S3 store as Django users configure it: django-storages settings and ``AWS_*``."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from django.core.exceptions import ImproperlyConfigured

from s2site.runtime import build_object_store
from s2site.s3 import s3_object_store
from storagecore.objstore.s3 import CONNECT_TIMEOUT_S, READ_TIMEOUT_S, S3ObjectStore
from tests.storage.support import ACCESS_KEY, REGION, SECRET_KEY

REPO_ROOT = Path(__file__).resolve().parents[2]
BASE_STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}


@pytest.fixture
def s3_settings(settings: Any, s3_endpoint: str, bucket: str) -> Any:
    settings.S2_STORAGE = "s3"
    settings.S2_BUCKET = bucket
    settings.AWS_S3_ENDPOINT_URL = s3_endpoint
    settings.AWS_S3_REGION_NAME = REGION
    settings.AWS_S3_ADDRESSING_STYLE = "path"
    settings.AWS_ACCESS_KEY_ID = ACCESS_KEY
    settings.AWS_SECRET_ACCESS_KEY = SECRET_KEY
    settings.STORAGES = BASE_STORAGES
    return settings


def _round_trip(store: S3ObjectStore) -> bytes:
    async def scenario() -> bytes:
        try:
            await store.put("segments/x.seg", b"hello, bucket")
            return await store.get("segments/x.seg", 7, 6)
        finally:
            await store.close()

    return asyncio.run(scenario())


def test_runtime_builds_the_s3_store_from_settings(
    s3_settings: Any, s3_client: Any, bucket: str
) -> None:
    store = build_object_store()
    assert isinstance(store, S3ObjectStore)
    assert store.bucket == bucket
    config = store.client.meta.config
    assert config.retries["mode"] == "standard"
    assert (config.connect_timeout, config.read_timeout) == (CONNECT_TIMEOUT_S, READ_TIMEOUT_S)
    assert _round_trip(store) == b"bucket"
    assert s3_client.get_object(Bucket=bucket, Key="segments/x.seg")["Body"].read() == (
        b"hello, bucket"
    )


def test_storages_options_are_honoured(s3_settings: Any, s3_client: Any, bucket: str) -> None:
    s3_settings.STORAGES = {
        **BASE_STORAGES,
        "s2": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": "overridden-by-the-bucket-flag",
                "location": "django/location",
                "object_parameters": {"StorageClass": "STANDARD_IA", "Metadata": {"by": "s2"}},
                "client_config": Config(read_timeout=7, s3={"addressing_style": "path"}),
            },
        },
    }
    store = s3_object_store()
    assert store.bucket == bucket  # --bucket (S2_BUCKET) wins
    config = store.client.meta.config
    assert config.read_timeout == 7  # the project's own client option wins ...
    assert config.connect_timeout == CONNECT_TIMEOUT_S  # ... the store's defaults fill the rest
    assert config.retries["mode"] == "standard"
    assert _round_trip(store) == b"bucket"
    head = s3_client.head_object(Bucket=bucket, Key="django/location/segments/x.seg")
    assert head["StorageClass"] == "STANDARD_IA"
    assert head["Metadata"] == {"by": "s2"}


def test_a_bucket_is_required(settings: Any) -> None:
    settings.S2_BUCKET = None
    settings.STORAGES = BASE_STORAGES
    settings.AWS_STORAGE_BUCKET_NAME = None
    with pytest.raises(ImproperlyConfigured, match="bucket"):
        s3_object_store()


def _settings_in_child(env: dict[str, str]) -> dict[str, Any]:
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({'endpoint': s.AWS_S3_ENDPOINT_URL, 'region': s.AWS_S3_REGION_NAME, "
        "'style': s.AWS_S3_ADDRESSING_STYLE, 's2': s.STORAGES.get('s2')}))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "S2_"))}
    child = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "s2site.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return dict(json.loads(child.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, {"endpoint": None, "region": None, "style": None, "s2": None}),
        (
            {
                "S2_BUCKET": "segments-bucket",
                "AWS_ENDPOINT_URL": "http://global:9000",
                "AWS_ENDPOINT_URL_S3": "http://s3-only:9000",
                "AWS_REGION": "eu-west-3",
            },
            {
                "endpoint": "http://s3-only:9000",
                "region": "eu-west-3",
                "style": "path",
                "s2": {
                    "BACKEND": "storages.backends.s3.S3Storage",
                    "OPTIONS": {"bucket_name": "segments-bucket"},
                },
            },
        ),
        (
            {"AWS_ENDPOINT_URL": "http://global:9000", "AWS_DEFAULT_REGION": "us-west-2"},
            {"endpoint": "http://global:9000", "region": "us-west-2", "style": "path", "s2": None},
        ),
        (
            {
                "AWS_S3_ENDPOINT_URL": "https://minio:9000",
                "AWS_S3_ADDRESSING_STYLE": "virtual",
                "AWS_S3_REGION_NAME": "r1",
                "AWS_REGION": "r2",
            },
            {"endpoint": "https://minio:9000", "region": "r1", "style": "virtual", "s2": None},
        ),
    ],
    ids=["nothing", "bucket-and-s3-endpoint", "global-endpoint", "django-storages-names"],
)
def test_settings_read_the_aws_environment(env: dict[str, str], expected: dict[str, Any]) -> None:
    assert _settings_in_child(env) == expected
