"""The operator's clock endpoint of API.md over HTTP and the shared simulated clock
(R33).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from connects.api.app import create_app
from connects.bootstrap import build
from connects.db.clockstore import DatabaseClock
from connects.domain.commands import AddChannel
from tests.conftest import MakeCtx
from tests.e2e.conftest import Api, error, settings_for
from tests.integration.notify_support import Webhook, raw_events, webhook_server, whsec
from tests.world import World


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


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_r31_r46_a_keyed_move_runs_the_due_work_after_its_commit(
    backend: str, make_ctx: MakeCtx, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """R31 R33 R46: a keyed move of the database clock commits with its answer, then runs
    what fell due, each job on its own: its webhooks are signed at a time the receiver
    (reading the committed clock) sees, so Standard Webhooks verification passes, and a
    retry replays the answer without moving the clock again."""
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'connects.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    make_ctx(url)  # migrated
    settings = settings_for(url, clock="simulated")
    ctx = build(settings)
    secret = whsec("r46-keyed-clock-move-0123456789ab")
    try:
        assert isinstance(ctx.clock, DatabaseClock)
        w = World(ctx)
        agency = w.agency("olga")
        receiver = Webhook(secret=secret, now=DatabaseClock(ctx.db).now)
        with webhook_server(receiver) as hook, TestClient(create_app(ctx, settings)) as client:
            ctx.handle(AddChannel(w.actor("olga"), agency, "webhook", hook.url, secret=secret))
            sent = set(raw_events(ctx, agency, 3))
            start = ctx.now()
            h = {"Authorization": f"Bearer {one_token()}", "Idempotency-Key": "move-1h"}
            first = client.post("/v1/admin/clock", json={"advance": "PT1H"}, headers=h)
            assert first.status_code == 200, first.text
            assert hook.rejections == [] and set(hook.ids()) == sent
            assert first.json()["ran"] == {}  # the work ran after the answer's commit
            moved = int((start + timedelta(hours=1)).timestamp())
            assert {int(headers["webhook-timestamp"]) for headers, _ in hook.seen} == {moved}
            again = client.post("/v1/admin/clock", json={"advance": "PT1H"}, headers=h)
            assert again.status_code == 200 and again.content == first.content
            assert ctx.now() == start + timedelta(hours=1)  # moved once
            assert len(hook.seen) == 3
    finally:
        ctx.db.dispose()
