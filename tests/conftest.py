"""Shared fixtures: a wired engine on SQLite (always) and PostgreSQL (when configured).

PostgreSQL tests read ``CONNECTS_TEST_DATABASE_URL``; without it they are skipped with
that reason shown in the summary (``-ra``). Each test gets its own schema (PostgreSQL)
or its own file (SQLite), migrated to head, so tests never see each other's rows and
run in parallel under xdist.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import create_engine, text

from connects.bootstrap import build
from connects.config import Settings
from connects.domain.clock import SimulatedClock
from connects.services.context import Context

T = TypeVar("T")

PG_URL = os.environ.get("CONNECTS_TEST_DATABASE_URL")
PG_SKIP_REASON = "PostgreSQL tests need CONNECTS_TEST_DATABASE_URL (set by .ci/run)"
START = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)

requires_pg = pytest.mark.skipif(not PG_URL, reason=PG_SKIP_REASON)
ACCOUNT_SCOPE = os.environ.get("CONNECTS_TEST_ACCOUNT_SCOPE", "1") != "0"


@pytest.fixture(autouse=ACCOUNT_SCOPE)
def account_scoped() -> Iterator[None]:
    """Every statement the test runs on an account-owned table is constrained by
    account_id (tests/account_scope.py): on over the suite, off with
    CONNECTS_TEST_ACCOUNT_SCOPE=0."""
    from tests.account_scope import report, watching

    with watching() as found:
        yield
    assert not found, "statements not constrained by account_id:\n" + report(found)


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> Iterator[None]:
    """Refuse a ``--dist loadgroup`` run whose xdist_group marks were not honoured (the
    browser modules share one server and cast, in order, on one worker)."""
    yield
    if not getattr(config.option, "loadgroup", False):  # set on the workers of loadgroup
        return
    lost = [i.nodeid for i in items if i.get_closest_marker("xdist_group") and "@" not in i.nodeid]
    if lost:
        raise pytest.UsageError(
            f"--dist loadgroup ignored xdist_group on {lost[0]} (and {len(lost) - 1} more): "
            "this pytest and pytest-xdist do not work together; see pyproject.toml"
        )


def eventually(check: Callable[[], T], *, seconds: float = 15.0) -> T:
    """``check()`` once it is truthy. For what a live server's own background work
    finishes after the answer (the due work there may claim a top-up the request
    decided, R23); a bound, not a timing assertion: it fails only if it never happens."""
    deadline = time.monotonic() + seconds
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            assert found, f"still {found!r} after {seconds} s"
            return found
        time.sleep(0.05)


def pg_schema_url(schema: str) -> str:
    """The test database URL with ``search_path`` set to ``schema``."""
    assert PG_URL
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{schema}"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'connects.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL schema for one test, dropped afterwards."""
    if not PG_URL:
        pytest.skip(PG_SKIP_REASON)
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield pg_schema_url(schema)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture
def clock() -> SimulatedClock:
    return SimulatedClock(START)


MakeCtx = Callable[..., Context]


@pytest.fixture
def make_ctx(clock: SimulatedClock) -> Iterator[MakeCtx]:
    """Build contexts on a URL (migrated once per URL), disposed at the end."""
    made: list[Context] = []
    migrated: set[str] = set()

    def make(url: str, **settings: object) -> Context:
        # The tests' webhook receivers listen on this machine: allowed here (R50); the
        # tests of the refusal turn it off.
        settings.setdefault("allow_private_webhooks", True)
        ctx = build(
            Settings(database_url=url, **settings),
            clock=clock,  # type: ignore[arg-type]
            migrate=url not in migrated,
        )
        migrated.add(url)
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        ctx.db.dispose()


@pytest.fixture
def ctx(make_ctx: MakeCtx, sqlite_url: str) -> Context:
    """An engine on a fresh SQLite file and the simulated clock."""
    return make_ctx(sqlite_url)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_ctx(request: pytest.FixtureRequest, make_ctx: MakeCtx, tmp_path: Path) -> Context:
    """The same test on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return make_ctx(f"sqlite:///{tmp_path / 'connects.db'}")
    return make_ctx(request.getfixturevalue("pg_url"))
