"""Small SQL helpers that read the same on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert


def insert_ignore(conn: Connection, table: Table, values: dict[str, Any]) -> bool:
    """``INSERT ... ON CONFLICT DO NOTHING``; True when the row was inserted."""
    maker = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    result = conn.execute(maker(table).values(**values).on_conflict_do_nothing())
    return bool(result.rowcount)
