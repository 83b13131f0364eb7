"""The operator's clock endpoint of API.md over HTTP and the shared simulated clock
(R33).
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.testclient import TestClient

from connects.api.app import create_app
from connects.bootstrap import build
from tests.conftest import MakeCtx
from tests.e2e.conftest import Api, error, settings_for


def test_admin_clock_runs_what_falls_due(api: Api) -> None:
    solo = api.freelancer("fred")
    r = api.call("POST", "/v1/admin/clock", "fred", {"advance": "P31D"})
    assert r.status_code == 403
    moved = api.ok("POST", "/v1/admin/clock", "operator", {"advance": "P31D"})  # R33
    assert moved["now"] == "2026-02-15T09:00:00Z"
    assert moved["ran"]["cycles"] == 1 and set(moved["ran"]) >= {"cycles", "expired"}
    grants = api.ok(
        "GET", f"/v1/accounts/{solo}/connects/history", "fred", params={"kind": "grant"}
    )
    assert len(grants["items"]) == 2  # R8: the February cycle's grant
    moved = api.ok("POST", "/v1/admin/clock", "operator", {"to": "2026-03-15T10:00:00+01:00"})
    assert moved["now"] == "2026-03-15T09:00:00Z" and moved["ran"]["cycles"] == 1
    for body, field in [
        ({"to": "2026-01-01T00:00:00Z"}, "to"),
        ({"advance": "31 days"}, "advance"),
        ({"advance": "P"}, "advance"),
        ({"advance": "P99999Y"}, "advance"),
        ({}, "advance"),
        ({"advance": "P1D", "to": "2027-01-01T00:00:00Z"}, "advance"),
        ({"to": "yesterday"}, "to"),
    ]:
        r = api.call("POST", "/v1/admin/clock", "operator", body)
        assert r.status_code == 422, (body, r.text)
        assert error(r)["details"]["fields"] == [field], body  # type: ignore[index]


def test_admin_clock_absent_on_the_system_clock(make_ctx: MakeCtx, sqlite_url: str) -> None:
    make_ctx(sqlite_url)  # migrated
    settings = settings_for(sqlite_url)
    ctx = build(settings)  # the system clock
    try:
        with TestClient(create_app(ctx, settings)) as client:
            h = {"Authorization": f"Bearer {settings.operator_token}"}
            r = client.post("/v1/admin/clock", json={"advance": "P1D"}, headers=h)
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"  # R33
            assert "/v1/admin/clock" not in client.get("/openapi.json").json()["paths"]
    finally:
        ctx.db.dispose()


def test_simulated_clock_is_shared_through_the_database(make_ctx: MakeCtx, sqlite_url: str) -> None:
    """R33: two processes (two contexts here) on one database see one simulated time."""
    make_ctx(sqlite_url)
    one = build(settings_for(sqlite_url, clock="simulated"))
    two = build(settings_for(sqlite_url, clock="simulated"))
    try:
        start = one.now()
        assert abs((start - datetime.now(UTC)).total_seconds()) < 60
        assert two.now() == start
        with TestClient(create_app(one, settings_for(sqlite_url, clock="simulated"))) as client:
            h = {"Authorization": f"Bearer {one_token()}"}
            r = client.post("/v1/admin/clock", json={"advance": "P2D"}, headers=h)
            assert r.status_code == 200
        assert (two.now() - start).days == 2
        clock = two.clock
        assert clock.simulated
    finally:
        one.db.dispose()
        two.db.dispose()


def one_token() -> str:
    from tests.e2e.conftest import OPERATOR_TOKEN

    return OPERATOR_TOKEN
