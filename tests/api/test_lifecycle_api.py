"""Background work behind the HTTP API: a trim, its removal pass, garbage collection and
compaction, seen through the record routes (spec §3.6, §8)."""

from __future__ import annotations

import time

from s2site import runtime
from storagecore.models import Chunk
from streams.lifecycle import Lifecycle
from tests.api.support import BASIN, records_path, setup
from tests.api.test_records_append import append_ok, b64, read_bytes, tail, trim_body
from tests.asgi_client import AsgiClient


def _lifecycle() -> Lifecycle:
    running = runtime.current()
    assert running is not None and running.lifecycle is not None
    return running.lifecycle


def test_trimmed_rows_are_removed_and_reads_begin_at_the_first_survivor(
    records_api: AsgiClient,
) -> None:
    setup(records_api)
    for i in range(6):
        append_ok(records_api, [{"body": f"r{i}"}])
    record = {"headers": [["", b64("trim")]], "body": trim_body(4)}
    ack = append_ok(records_api, [record], headers={"s2-format": "base64"})
    assert ack["start"]["seq_num"] == 6
    lifecycle = _lifecycle()
    assert lifecycle._trim_requests  # the durable trim asked for a pass at once
    records_api.run(lifecycle.trim_pass())
    assert sorted(Chunk.objects.values_list("start_seq", flat=True)) == [4, 5, 6]
    assert [r[0] for r in read_bytes(records_api, "seq_num=0")] == [4, 5, 6]
    assert tail(records_api)["seq_num"] == 7
    # Compaction and garbage collection (grace passed) keep every survivor, once.
    records_api.run(lifecycle.compaction_pass())
    lifecycle.settings = type(lifecycle.settings)(gc_grace_s=0.0)
    time.sleep(0.002)
    records_api.run(lifecycle.gc_pass())
    assert [r[0] for r in read_bytes(records_api, "seq_num=1")] == [4, 5, 6]
    response = records_api.get(records_path(), query="seq_num=0", basin=BASIN)
    assert response.status == 200
