"""PgBouncer in transaction mode between the product and PostgreSQL.

The test starts its own PostgreSQL 15 server and a PgBouncer (``pool_mode =
transaction``, 10 server connections) in a temporary folder, and runs the stress test
of test_stress.py through it: two ``connects serve`` and two ``connects worker``
processes (up to 24 pooled connections each) share those 10 server connections.
``CONNECTS_DB_TRANSACTION_POOLER=1`` turns off psycopg's server-side prepared
statements, the one session state the product would otherwise keep; the first test
shows why it must. Skipped, with the reason, where PgBouncer or the server binaries
are missing.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from connects.db.engine import Database
from tests.reliability.checks import report
from tests.reliability.pgservers import DATABASE, Bouncer, Server, skip_reason, workdir
from tests.reliability.test_stress import run_stress

pytestmark = [pytest.mark.reliability]


@pytest.fixture
def bouncer() -> Iterator[Bouncer]:
    reason = skip_reason(pgbouncer=True)
    if reason:
        pytest.skip(reason)
    root = workdir()
    server = Server(root, "pg")
    running = Bouncer(root, server)
    try:
        server.initdb()
        server.start()
        server.sql(f"CREATE DATABASE {DATABASE}")
        running.start()
        yield running
    finally:
        running.stop()
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def _connect(b: Bouncer, prepare_threshold: int | None) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(
        host="127.0.0.1",
        port=b.port,
        user="postgres",
        dbname=DATABASE,
        autocommit=True,
        prepare_threshold=prepare_threshold,
    )


def test_prepared_statements_break_in_transaction_mode_and_are_turned_off(
    bouncer: Bouncer,
) -> None:
    # A statement psycopg prepared on one server connection is unknown on the next.
    with _connect(bouncer, 0) as first, _connect(bouncer, None) as other:
        first.execute("SELECT %s::int", [1])  # prepared on the server connection it had
        other.execute("BEGIN")
        other.execute("SELECT 1")  # holds that server connection for its transaction
        with pytest.raises(psycopg.errors.InvalidSqlStatementName):
            first.execute("SELECT %s::int", [2])  # another server connection
        other.execute("ROLLBACK")
    # CONNECTS_DB_TRANSACTION_POOLER=1: the product's connections prepare nothing.
    db = Database(bouncer.url(), transaction_pooler=True, pool_size=2)
    try:
        for _ in range(20):
            with db.read() as conn:
                assert conn.execute(text("SELECT :n"), {"n": 1}).scalar_one() == 1
        raw = db.engine.raw_connection()
        try:
            assert raw.driver_connection.prepare_threshold is None  # type: ignore[union-attr]
        finally:
            raw.close()
    finally:
        db.dispose()


def test_the_stress_test_runs_through_pgbouncer(
    bouncer: Bouncer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # R23, R30, R31: the stress test's load and checks, every connection through
    # PgBouncer in transaction mode.
    monkeypatch.setenv("CONNECTS_DB_TRANSACTION_POOLER", "1")
    result = run_stress(bouncer.url(), tmp_path / "logs", faults=False)
    stats = next(s for s in bouncer.admin("SHOW STATS") if s["database"] == DATABASE)
    servers = [s for s in bouncer.admin("SHOW SERVERS") if s["database"] == DATABASE]
    pools = [p for p in bouncer.admin("SHOW POOLS") if p["database"] == DATABASE]
    report(
        {
            "test": "pgbouncer",
            "transactions": int(str(stats["total_xact_count"])),
            "queries": int(str(stats["total_query_count"])),
            "avg_xact_us": int(str(stats["avg_xact_time"])),
            "server_connections": len(servers),
            "requests": result["requests"],
        }
    )
    assert result["server_errors"] == 0, result
    assert {p["pool_mode"] for p in pools} == {"transaction"}
    assert 0 < len(servers) <= bouncer.pool_size
    assert int(str(stats["total_xact_count"])) > result["requests"]
