"""Rate limits on what hands out a token: sign-up (``POST /v1/users``) per e-mail and per
client address, failed dashboard sign-ins per address. Counted in the database, so two
apps on one database (two processes) share them; 429 ``rate_limited`` with Retry-After.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect, select

from connects.api.app import create_app
from connects.db.migrate import downgrade, upgrade
from connects.db.schema import metadata, rate_limit_hits
from connects.domain.errors import RateLimited
from connects.services import ratelimit
from connects.web.auth import create_login_link
from tests.conftest import MakeCtx
from tests.e2e.conftest import settings_for
from tests.e2e.hostile import assert_error_shape


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'rl.db'}"
    return str(request.getfixturevalue("pg_url"))


@contextmanager
def app_on(make_ctx: MakeCtx, url: str, **limits: Any) -> Iterator[TestClient]:
    """One more app (as a separate process would be) on the database at ``url``."""
    ctx = make_ctx(url)
    with TestClient(create_app(ctx, settings_for(url, **limits))) as client:
        yield client


def _sign_up(client: TestClient, email: str) -> Any:
    return client.post("/v1/users", json={"name": "N", "email": email})


def _assert_limited(r: Any) -> None:
    assert r.status_code == 429, r.text
    assert assert_error_shape(r) == "rate_limited"
    retry = int(r.headers["Retry-After"])
    assert 1 <= retry <= 900
    assert r.json()["error"]["details"]["retry_after"] == retry


def test_sign_up_is_limited_per_email(make_ctx: MakeCtx, url: str) -> None:
    with app_on(make_ctx, url, signin_limit_per_email=2) as client:
        assert _sign_up(client, "x@rl.io").status_code == 201
        assert _sign_up(client, "X@rl.io").status_code == 201  # taken, not told (R49): an attempt
        _assert_limited(_sign_up(client, " x@RL.io"))
        assert _sign_up(client, "y@rl.io").status_code == 201  # another address is fine


def test_sign_up_limit_per_address_holds_across_processes(make_ctx: MakeCtx, url: str) -> None:
    with (
        app_on(make_ctx, url, signup_limit_per_ip=3) as one,
        app_on(make_ctx, url, signup_limit_per_ip=3) as two,
    ):
        assert _sign_up(one, "a@rl.io").status_code == 201
        assert _sign_up(two, "b@rl.io").status_code == 201
        assert _sign_up(one, "c@rl.io").status_code == 201
        _assert_limited(_sign_up(two, "d@rl.io"))
        _assert_limited(_sign_up(one, "e@rl.io"))
        # The OpenAPI document says so.
        spec = one.get("/openapi.json").json()
        assert "429" in spec["paths"]["/v1/users"]["post"]["responses"]
    # Keys are stored hashed: no address or e-mail in the table.
    ctx = make_ctx(url)
    with ctx.db.read() as conn:
        rows = conn.execute(select(rate_limit_hits)).all()
    assert rows and not any("rl.io" in r.key_hash or "testclient" in r.key_hash for r in rows)


def test_failed_sign_ins_are_limited_per_address(make_ctx: MakeCtx, url: str) -> None:
    with app_on(make_ctx, url, signin_limit_per_ip=2) as client:
        client.post("/v1/users", json={"name": "Olga", "email": "olga@rl.io"})
        good = create_login_link(make_ctx(url), "olga@rl.io", "http://testserver")
        for _ in range(2):
            r = client.get("/login/not-a-real-link-token", follow_redirects=False)
            assert r.status_code == 400 and "login_link_invalid" in r.text
        r = client.get(good.removeprefix("http://testserver"), follow_redirects=False)
        assert r.status_code == 429 and "rate_limited" in r.text  # even a good link waits
        assert 1 <= int(r.headers["Retry-After"]) <= 900
        r = client.post("/login/demo", data={"csrf_token": "x"}, follow_redirects=False)
        assert r.status_code == 429


def test_good_sign_ins_are_not_counted(make_ctx: MakeCtx, url: str) -> None:
    with app_on(make_ctx, url, signin_limit_per_ip=1) as client:
        client.post("/v1/users", json={"name": "Olga", "email": "olga@rl.io"})
        ctx = make_ctx(url)
        for _ in range(3):
            link = create_login_link(ctx, "olga@rl.io", "http://testserver")
            r = client.get(link.removeprefix("http://testserver"), follow_redirects=False)
            assert r.status_code == 303, r.text
            client.cookies.clear()


def test_windows_end_and_zero_turns_a_limit_off(make_ctx: MakeCtx, sqlite_url: str) -> None:
    ctx = make_ctx(sqlite_url)
    limit = ratelimit.Limit("t", 2, 60)
    start = datetime(2026, 3, 1, 12, 0, 10, tzinfo=UTC)
    ratelimit.hit(ctx, limit, "k", start)
    ratelimit.hit(ctx, limit, "k", start)
    with pytest.raises(RateLimited) as refused:
        ratelimit.hit(ctx, limit, "k", start + timedelta(seconds=5))
    assert refused.value.details["retry_after"] == 45
    with pytest.raises(RateLimited):
        ratelimit.check(ctx, limit, "K ", start)  # keys are trimmed and case-folded
    ratelimit.hit(ctx, limit, "k", start + timedelta(seconds=60))  # the next window
    for _ in range(5):
        ratelimit.hit(ctx, ratelimit.Limit("t", 0, 60), "k", start)


def test_migration_0005_matches_schema_and_goes_down(url: str) -> None:
    upgrade(url)
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
        assert "rate_limit_hits" in inspect(engine).get_table_names()
        downgrade(url, "0004")
        inspector = inspect(engine)
        assert "rate_limit_hits" not in inspector.get_table_names()
        upgrade(url)
        assert "rate_limit_hits" in inspect(engine).get_table_names()
    finally:
        engine.dispose()
