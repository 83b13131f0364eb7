"""Small SQL helpers that read the same on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert


def insert_ignore(conn: Connection, table: Table, values: dict[str, Any]) -> bool:
    """``INSERT ... ON CONFLICT DO NOTHING``; True when the row was inserted.

    Whether it was is read from ``RETURNING``, not ``rowcount``: on PostgreSQL (psycopg 3
    with SQLAlchemy 2.1) ``rowcount`` is -1 here whether or not a row went in.
    """
    stmt = _IGNORING.get((conn.dialect.name, table.name))
    if stmt is None:
        maker = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        stmt = maker(table).on_conflict_do_nothing()
        key = next(iter(table.primary_key.columns), None)
        if key is not None:
            stmt = stmt.returning(key)
        _IGNORING[(conn.dialect.name, table.name)] = stmt
    if not stmt.returning_column_descriptions:
        return bool(conn.execute(stmt, values).rowcount > 0)
    return conn.execute(stmt, values).first() is not None


# Built once per dialect and table: building a statement costs more than running it.
_IGNORING: dict[tuple[str, str], Any] = {}
