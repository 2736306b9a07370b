from __future__ import annotations

import pytest

from tests.asgi_client import AsgiClient


@pytest.fixture
def api(transactional_db: None) -> AsgiClient:
    """The full HTTP stack in-process, on a database that its worker thread can see."""
    return AsgiClient()
