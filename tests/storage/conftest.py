"""Fixtures for the storage adapters: a real S3 protocol server (moto) on loopback.

moto runs in server mode in this process, on its own thread and an OS-chosen
port, and every client talks to it over HTTP exactly as it would talk to S3.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from tests.storage.support import make_client


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of the moto S3 server on 127.0.0.1."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_client(s3_endpoint: str) -> Iterator[Any]:
    """A fresh client per test, so that the event hooks a test registers stay its own."""
    client = make_client(s3_endpoint)
    yield client
    client.close()


@pytest.fixture
def bucket(s3_client: Any) -> str:
    """A new, empty bucket for the test."""
    name = f"s2-test-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=name)
    return name
