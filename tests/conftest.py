from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.asgi_client import AsgiClient


@pytest.fixture
def api(transactional_db: None) -> Iterator[AsgiClient]:
    """The full HTTP stack in-process, on a database that its worker thread can see."""
    client = AsgiClient()
    yield client
    client.close()


@pytest.fixture
def records_api(transactional_db: None) -> Iterator[AsgiClient]:
    """The full HTTP stack with the server runtime (record log in memory) running.

    The background tasks are stopped at once: their passes would race the test's
    requests on the shared in-memory SQLite test database, which reports "table is
    locked" instead of waiting. Tests run passes explicitly instead."""
    from s2site import runtime

    client = AsgiClient(lifespan=True)
    running = runtime.current()
    assert running is not None and running.lifecycle is not None
    client.run(running.lifecycle.stop())
    yield client
    client.close()
