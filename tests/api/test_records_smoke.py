from tests.asgi_client import AsgiClient


def test_append_and_read_back(records_api: AsgiClient) -> None:
    basin = "records-basin"
    assert records_api.post("/v1/basins", json_body={"basin": basin}).status == 201
    assert records_api.post("/v1/streams", json_body={"stream": "s"}, basin=basin).status == 201
    ack = records_api.post(
        "/v1/streams/s/records", json_body={"records": [{"body": "a"}, {"body": "b"}]}, basin=basin
    )
    assert ack.status == 200, ack.body
    assert ack.json()["end"]["seq_num"] == 2
    read = records_api.get("/v1/streams/s/records", query="seq_num=0", basin=basin)
    assert [r["body"] for r in read.json()["records"]] == ["a", "b"]
