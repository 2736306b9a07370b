from tests.asgi_client import AsgiClient


def test_create_and_get_basin(api: AsgiClient) -> None:
    created = api.post("/v1/basins", json_body={"basin": "smoke-basin"})
    assert created.status == 201
    assert created.header("s2-provision-result") == "created"
    got = api.get("/v1/basins/smoke-basin")
    assert got.status == 200
    assert got.json()["create_stream_on_append"] is False
