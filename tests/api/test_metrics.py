"""``GET /metrics`` (spec §1.2): the Prometheus text exposition and what moves it."""

from __future__ import annotations

import asyncio
import re

from django.db.models import Sum

from storagecore.models import Chunk
from streams.protocol import messages, s2s
from tests.asgi_client import AsgiClient, Response

APPEND_HISTOGRAMS = (
    "s2_append_permit_latency_seconds",
    "s2_append_ack_latency_seconds",
    "s2_append_batch_records",
    "s2_append_batch_bytes",
)
OWN_HISTOGRAMS = (
    "s2_flush_duration_seconds",
    "s2_flush_bytes",
    "s2_segment_write_duration_seconds",
    "s2_index_commit_duration_seconds",
)
GAUGES = (
    "s2_open_sessions",
    "s2_active_streamers",
    "s2_followers",
    "s2_followers_lagging",
    "s2_follower_lag_batches",
    "s2_stored_bytes",
    "process_resident_memory_bytes",
)


def _types(text: str) -> dict[str, str]:
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE))


def _value(text: str, sample: str) -> float:
    """The value of one sample line, e.g. ``s2_open_sessions{kind="read-sse"}``."""
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name == sample:
            return float(value)
    raise AssertionError(f"no sample {sample} in:\n{text}")


def _scrape(client: AsgiClient) -> str:
    response = client.get("/metrics")
    assert response.status == 200
    assert response.header("content-type") == "text/plain; version=0.0.4"
    return response.body.decode()


def _create(client: AsgiClient, basin: str, stream: str) -> None:
    assert client.post("/v1/basins", json_body={"basin": basin}).status == 201
    assert client.post("/v1/streams", json_body={"stream": stream}, basin=basin).status == 201


def test_series_and_types(records_api: AsgiClient) -> None:
    text = _scrape(records_api)
    types = _types(text)
    for name in APPEND_HISTOGRAMS + OWN_HISTOGRAMS:
        assert types.get(name) == "histogram", name
        assert f'{name}_bucket{{le="+Inf"}}' in text
    for name in GAUGES:
        assert types.get(name) == "gauge", name
    assert types.get("s2_segment_writes_total") == "counter"
    assert types.get("process_cpu_seconds_total") == "counter"
    for kind in ("append-s2s", "read-s2s", "read-sse"):
        assert f's2_open_sessions{{kind="{kind}"}}' in text


def test_values_move_after_appends(records_api: AsgiClient) -> None:
    _create(records_api, "metrics-basin", "s")
    before = _scrape(records_api)
    body = {"records": [{"body": "x" * 100}, {"body": "y" * 100}, {"body": "z"}]}
    for _ in range(4):
        ack = records_api.post("/v1/streams/s/records", json_body=body, basin="metrics-basin")
        assert ack.status == 200
    after = _scrape(records_api)

    def moved(sample: str) -> float:
        return _value(after, sample) - _value(before, sample)

    assert moved("s2_append_ack_latency_seconds_count") == 4
    assert moved("s2_append_permit_latency_seconds_count") == 4
    assert moved("s2_append_batch_records_count") == 4
    assert moved("s2_append_batch_records_sum") == 12
    # Metered size: 8 bytes per record plus the body.
    assert moved("s2_append_batch_bytes_sum") == 4 * (108 + 108 + 9)
    assert moved('s2_append_batch_records_bucket{le="10.0"}') == 4
    assert moved('s2_append_batch_records_bucket{le="1.0"}') == 0
    assert 1 <= moved("s2_segment_writes_total") <= 4
    assert moved("s2_flush_records_sum") == 12
    assert moved("s2_flush_bytes_sum") > 4 * 225
    assert moved("s2_index_commit_duration_seconds_count") >= 1
    assert _value(after, "s2_active_streamers") >= 1
    assert _value(after, "s2_stored_bytes") > _value(before, "s2_stored_bytes")
    # The gauge comes from the per-stream accounting, which matches the index rows.
    assert _value(after, "s2_stored_bytes") == _index_bytes()
    assert _value(after, "process_resident_memory_bytes") > 0


def test_open_sessions_are_counted_by_kind(records_api: AsgiClient) -> None:
    _create(records_api, "sessions-basin", "s")
    sse = 's2_open_sessions{kind="read-sse"}'

    async def while_open() -> tuple[Response, str]:
        session = asyncio.ensure_future(
            records_api._run(
                "GET",
                "/v1/streams/s/records",
                "seq_num=0&wait=1",
                {"accept": "text/event-stream", "s2-basin": "sessions-basin"},
                [b""],
            )
        )
        for _ in range(200):
            scraped = (await records_api._run("GET", "/metrics", "", {}, [b""])).body.decode()
            # Counted when it opens; following once it reached the tail.
            if _value(scraped, sse) == 1 and _value(scraped, "s2_followers") == 1:
                break
            await asyncio.sleep(0.01)
        return await session, scraped

    response, during = records_api.run(while_open())
    assert response.status == 200
    assert _value(during, sse) == 1
    assert _value(during, "s2_followers") == 1
    assert _value(_scrape(records_api), sse) == 0

    frame = s2s.encode_message(
        messages.AppendInput(records=[messages.AppendRecord(body=b"a")]).SerializeToString(),
        s2s.Compression.NONE,
    )
    before = _scrape(records_api)
    session = records_api.post(
        "/v1/streams/s/records",
        body=frame,
        headers={"content-type": "s2s/proto"},
        basin="sessions-basin",
    )
    assert session.status == 200
    after = _scrape(records_api)
    assert _value(after, 's2_open_sessions{kind="append-s2s"}') == 0
    assert (
        _value(after, "s2_append_ack_latency_seconds_count")
        - _value(before, "s2_append_ack_latency_seconds_count")
        == 1
    )


def test_other_methods_are_refused(records_api: AsgiClient) -> None:
    response = records_api.post("/metrics", body=b"")
    assert response.status == 405
    assert response.header("allow") == "GET,HEAD"
    head = records_api.request("HEAD", "/metrics")
    assert head.status == 200 and head.body == b""


def test_metrics_without_a_running_engine(api: AsgiClient) -> None:
    text = _scrape(api)
    assert _value(text, "s2_active_streamers") == 0
    assert "s2_append_ack_latency_seconds_bucket" in text


def _index_bytes() -> int:
    return int(Chunk.objects.aggregate(total=Sum("length"))["total"] or 0)
