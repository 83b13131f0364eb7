"""What every endpoint of API.md shares over HTTP, on SQLite and PostgreSQL: input
validation that never answers 500, health, metrics, OpenAPI and the docs.
"""

from __future__ import annotations

from tests.e2e.conftest import Api, error


def test_validation_never_500(api: Api) -> None:
    api.person("olga")
    agency = api.agency("olga")
    h = {**api.headers("olga"), "Content-Type": "application/json"}
    url = f"/v1/accounts/{agency}/purchases"
    cases = [
        (b"{not json", ["body"]),
        (b"", ["body"]),
        (b"[]", ["body"]),
        (b'{"quantity": "5", "pay_with": "earnings"}', ["quantity"]),
        (b'{"quantity": true, "pay_with": "earnings"}', ["quantity"]),
        (b'{"quantity": 5.5, "pay_with": "earnings"}', ["quantity"]),
        (b'{"quantity": 0, "pay_with": "earnings"}', ["quantity"]),
        (b'{"quantity": 1' + b"0" * 60 + b', "pay_with": "earnings"}', ["quantity"]),
        (b'{"quantity": 1' + b"0" * 5000 + b', "pay_with": "earnings"}', ["body"]),
        (b'{"quantity": 1e400, "pay_with": "earnings"}', ["quantity"]),
        (b'{"pay_with": "earnings"}', ["quantity"]),
        (b'{"quantity": 1, "pay_with": "earn\\u0000ings"}', ["pay_with"]),
    ]
    for raw, fields in cases:
        r = api.client.post(url, content=raw, headers=h)
        assert r.status_code == 422, (raw[:40], r.status_code, r.text)
        err = error(r)
        assert err["code"] == "invalid_request"
        assert err["details"]["fields"] == fields, (raw[:40], err)  # type: ignore[index]
    r = api.call("POST", "/v1/jobs", "olga", {"title": "x\x00y", "connects_required": 1})
    assert r.status_code == 422 and error(r)["details"]["fields"] == ["title"]  # type: ignore[index]
    r = api.call("POST", "/v1/jobs", "olga", {"title": "ok", "connects_required": 2**70})
    assert r.status_code == 422
    r = api.call("GET", f"/v1/accounts/{agency}/connects/history", "olga", params={"limit": 0})
    assert r.status_code == 422 and error(r)["details"]["fields"] == ["limit"]  # type: ignore[index]
    r = api.call(
        "GET", f"/v1/accounts/{agency}/connects/history", "olga", params={"limit": "9" * 40}
    )
    assert r.status_code == 422
    r = api.call("GET", "/v1/accounts/acct%00x", "olga")
    assert r.status_code == 422
    r = api.call("GET", "/v1/no-such-thing", "olga")
    assert r.status_code == 404 and error(r)["code"] == "not_found"
    r = api.call("PUT", "/v1/me", "olga", {})
    assert r.status_code == 405 and error(r)["code"] == "method_not_allowed"


def test_health_metrics_openapi_docs(api: Api) -> None:
    for path in ("/healthz", "/v1/healthz"):
        h = api.client.get(path)
        assert h.status_code == 200 and h.json()["status"] == "ok"
    agency = api.agency("olga")
    api.propose("olga", api.job(3), agency)
    m = api.client.get("/metrics")
    assert m.status_code == 200 and m.headers["content-type"].startswith("text/plain")
    text = m.text
    assert 'connects_http_requests_total{method="POST",route="/v1/proposals",status="201"}' in text
    assert "connects_http_request_duration_seconds_bucket" in text
    assert "connects_spent_total" in text and "connects_topups_total" in text
    spec = api.client.get("/openapi.json").json()
    ids = [op["operationId"] for p in spec["paths"].values() for op in p.values()]
    assert len(ids) == len(set(ids))
    assert "submit_proposal" in ids and "buy_connects" in ids
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op.get("summary") or op.get("description"), (method, path)
    docs = api.client.get("/docs")
    assert docs.status_code == 200
    # Swagger UI from the vendored files, nothing from a CDN (issue 24)
    assert "/static/vendor/swagger-ui-bundle.js" in docs.text and "https://" not in docs.text
    assert api.client.get("/static/vendor/swagger-ui-bundle.js").status_code == 200
    assert api.client.get("/redoc").status_code == 404
