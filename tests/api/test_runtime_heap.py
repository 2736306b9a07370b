"""Start-up leaves the long-lived heap out of garbage collection."""

from __future__ import annotations

import gc

import pytest

from tests.asgi_client import AsgiClient


@pytest.mark.django_db(transaction=True)
def test_startup_freezes_the_heap_it_built() -> None:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    client = AsgiClient(lifespan=True)
    try:
        # Django, the runtime and everything imported so far are now frozen, so a full
        # collection no longer walks them.
        frozen = gc.get_freeze_count()
        assert frozen > 10_000
        survivors_before = len(gc.get_objects(generation=2))
        assert survivors_before < frozen
    finally:
        client.close()
        gc.unfreeze()
