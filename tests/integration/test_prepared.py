"""``db.sql.Prepared``: the ledger's hot writes as driver SQL, with the same values,
errors and events as SQLAlchemy's own path, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    String,
    Table,
    bindparam,
    event,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from connects.db.engine import Database
from connects.db.sql import Prepared
from connects.db.types import UTCDateTime

meta = MetaData()
things = Table(
    "prepared_things",
    meta,
    Column("id", String(40), primary_key=True),
    Column("at", UTCDateTime, nullable=False),
    Column("n", Integer, nullable=False),
    Column("note", String(40)),
    Column("fallback", Integer, default=7),
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    url = (
        f"sqlite:///{tmp_path / 'p.db'}"
        if request.param == "sqlite"
        else str(request.getfixturevalue("pg_url"))
    )
    database = Database(url)
    meta.drop_all(database.engine)
    meta.create_all(database.engine)
    yield database
    meta.drop_all(database.engine)
    database.dispose()


AT = datetime(2027, 2, 28, 23, 30, tzinfo=timezone(timedelta(hours=-5)))


def test_rows_read_back_as_sqlalchemy_wrote_them(db: Database) -> None:
    fast = Prepared(insert(things))
    bump = Prepared(
        update(things)
        .where(things.c.id == bindparam("key"))
        .values(n=things.c.n + bindparam("delta"))
    )
    row = {"at": AT, "n": 1, "note": None, "fallback": 3}
    with db.begin() as conn:
        conn.execute(insert(things), {"id": "core", **row})
        fast.execute(conn, {"id": "fast", **row})
        fast.execute(conn, [{"id": f"many{i}", **row, "n": i} for i in range(3)])
        bump.execute(conn, [{"key": "fast", "delta": 5}, {"key": "many2", "delta": -2}])
    with db.read() as conn:
        got = {r.id: r for r in conn.execute(select(things))}
        # Stored exactly as Core stores it: SQL compares these as they are (on SQLite,
        # as text), not as the datetimes they read back as.
        stored = dict(conn.execute(text("SELECT id, CAST(at AS TEXT) FROM prepared_things")).all())
    assert stored["fast"] == stored["many0"] == stored["core"]
    assert got["fast"].at == got["core"].at == AT.astimezone(UTC)
    assert got["fast"].at.tzinfo is not None
    assert (got["fast"].n, got["many0"].n, got["many2"].n) == (6, 0, 0)
    assert got["fast"].note is None and got["fast"].fallback == 3


def test_errors_and_events_are_sqlalchemys(db: Database) -> None:
    fast = Prepared(insert(things))
    seen: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    row = {"id": "dup", "at": AT, "n": 1, "note": "x", "fallback": 1}
    with pytest.raises(IntegrityError), db.begin() as conn:
        fast.execute(conn, row)
        fast.execute(conn, row)
    assert sum("INSERT INTO prepared_things" in s for s in seen) == 2
    with db.read() as conn:  # the failed transaction rolled back whole
        assert conn.execute(select(things)).all() == []


def test_refuses_what_it_cannot_run_as_driver_sql(db: Database) -> None:
    with db.begin() as conn, pytest.raises(ValueError, match="Python defaults"):
        # ``fallback`` has a Python-side default that driver SQL would skip
        Prepared(insert(things)).execute(conn, {"id": "a", "at": AT, "n": 1})


def test_a_returning_gives_the_drivers_values_and_options_go_along(db: Database) -> None:
    # holds.place counts a bid's rank in its own INSERT this way (R35)
    options: list[dict[str, object]] = []
    event.listen(
        db.engine,
        "before_cursor_execute",
        lambda conn, cur, sql, params, context, many: (
            options.append(dict(context.execution_options)) if "INSERT" in sql else None
        ),
    )
    counted = Prepared(
        insert(things)
        .returning(things.c.id, text("(SELECT count(*) FROM prepared_things AS t)"))
        .execution_options(marked=True)
    )
    with db.begin() as conn:
        for i in range(3):
            row = {"id": f"r{i}", "at": AT, "n": i, "note": None, "fallback": 1}
            assert tuple(counted.execute(conn, row).one()) in {(f"r{i}", i), (f"r{i}", i + 1)}
    assert len(options) == 3 and all(o.get("marked") for o in options)
    rows = [{"id": f"m{i}", "at": AT, "n": i, "note": None, "fallback": 1} for i in range(2)]
    with db.begin() as conn, pytest.raises(ValueError, match="one row of values"):
        counted.execute(conn, rows)  # an executemany gives no rows back
