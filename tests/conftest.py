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
    """The full HTTP stack with the server runtime (record log in memory) running."""
    client = AsgiClient(lifespan=True)
    yield client
    client.close()
