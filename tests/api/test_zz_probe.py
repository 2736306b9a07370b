from tests.asgi_client import AsgiClient

def show(r):
    print(r.status, [h for h in r.headers if h[0].lower() in ("allow","content-type","content-length")], r.body[:120])

def test_probe(api: AsgiClient) -> None:
    show(api.post("/nope"))
    show(api.post("/v1/nope"))
    show(api.post("/v1/basins/"))
    show(api.delete("/health"))
    show(api.post("/ping"))
    show(api.request("OPTIONS", "/v1/basins"))
    show(api.get("/v1/streams/a%2Fb"))
    show(api.get("/v1/streams/a/b", basin="probe-basin"))
    show(api.post("/v1/access-tokens", json_body={}))
    show(api.request("PATCH", "/v1/access-tokens"))
    show(api.delete("/v1/access-tokens/" + "a"*97))
    show(api.get("/v1/basins", query="limit=%2B5"))
