"""Small SQL helpers that read the same on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, CursorResult, Table
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


class Prepared:
    """A Core INSERT, UPDATE or DELETE, compiled once per dialect and set of columns,
    then run as the driver's own SQL (``Connection.exec_driver_sql``).

    SQLAlchemy's path for a Core statement (cache key, compiled-cache lookup, execution
    context, parameter processing, result set-up) costs about as much again as SQLite
    takes to run a small write (docs/benchmarks.md has the figures).
    The ledger's hot writes (entries, allocations, lot and account updates) go this way.
    Values still pass through each column type's bind processing (time zones, SQLite's
    datetime strings), and errors, disconnects and events are SQLAlchemy's as before.
    A ``RETURNING`` clause gives its rows as the driver reads them, with no result type
    processing (counts and ids, not datetimes), for one row of values at a time: drivers
    give no rows back from an executemany. The statement's execution options (such as
    ``all_accounts``) go with it.
    """

    def __init__(self, statement: Any) -> None:
        self.statement = statement
        self._options = statement.get_execution_options() or None
        self._compiled: dict[tuple[str, tuple[str, ...]], _Compiled] = {}

    def execute(
        self, conn: Connection, rows: dict[str, Any] | list[dict[str, Any]]
    ) -> CursorResult[Any]:
        """Run for one row of values, or for a list of rows with the same keys."""
        batch = rows if isinstance(rows, list) else [rows]
        key = (conn.dialect.name, tuple(batch[0]))
        compiled = self._compiled.get(key)
        if compiled is None:
            compiled = self._compiled[key] = _Compiled(self.statement, conn.dialect, key[1])
        if len(batch) > 1:
            if compiled.returns:
                raise ValueError("Prepared: a RETURNING runs for one row of values at a time")
            values: Any = [compiled.args(r) for r in batch]
        else:
            values = compiled.args(batch[0])
        return conn.exec_driver_sql(compiled.sql, values, execution_options=self._options)


class _Compiled:
    def __init__(self, statement: Any, dialect: Any, keys: tuple[str, ...]) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        if (
            compiled.literal_execute_params
            or compiled.post_compile_params
            or compiled.insert_prefetch
            or compiled.update_prefetch
        ):
            raise ValueError("Prepared: plain bind parameters, no Python defaults")
        self.sql: str = compiled.string
        self.returns = bool(compiled.effective_returning)
        self.positional: bool = bool(compiled.positional)
        names = list(compiled.positiontup) if compiled.positional else list(compiled.binds)
        self.names = names
        self.processors = [
            compiled.binds[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names
        ]
        # Values written into the statement itself, such as ``values(status="open")``.
        self.fixed = {
            n: compiled.binds[n].effective_value
            for n in names
            if n not in keys and not compiled.binds[n].required
        }

    def args(self, row: dict[str, Any]) -> Any:
        values = [
            proc(v) if proc is not None and v is not None else v
            for v, proc in zip(
                (row[n] if n in row else self.fixed[n] for n in self.names),
                self.processors,
                strict=True,
            )
        ]
        return tuple(values) if self.positional else dict(zip(self.names, values, strict=True))
