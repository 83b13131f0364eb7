"""Engines and transactions for SQLite (the embedded default) and PostgreSQL.

On SQLite every write transaction starts with ``BEGIN IMMEDIATE``: it takes the
database's write lock up front, so two writers queue instead of one failing half way
with ``database is locked``. Reads use a second engine with plain deferred
transactions and run beside writers thanks to WAL.

On PostgreSQL writes lock the account row (``SELECT ... FOR UPDATE``). Reads run in
autocommit: at READ COMMITTED every statement takes its own snapshot anyway, so a
read-only transaction would add a ``BEGIN`` and a ``ROLLBACK`` round trip and nothing
else. A pooled connection is pinged only when it has sat idle a while
(:data:`PING_IDLE_SECONDS`), not on every checkout: a connection that died while busy
fails its transaction, which rolls back whole and is retried by the caller (R31).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.pool import ConnectionPoolEntry, NullPool, PoolProxiedConnection

PING_IDLE_SECONDS = 10.0
WRITER_WAIT_SECONDS = 30.0  # as PRAGMA busy_timeout below


def _sqlite_engine(url: str, **kw: Any) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kw)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    # BEGIN is issued by Database itself, not from a "begin" event: any listener on a
    # connection event makes SQLAlchemy dispatch four events around every statement.
    return engine


def _pg_engine(url: str, **kw: Any) -> Engine:
    engine = create_engine(url, **kw)

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn: Any, record: ConnectionPoolEntry) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(
        dbapi_conn: Any, record: ConnectionPoolEntry, _proxy: PoolProxiedConnection
    ) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_IDLE_SECONDS:
            return
        try:
            dbapi_conn.execute("SELECT 1")
            if not dbapi_conn.autocommit:
                dbapi_conn.rollback()
        except Exception as error:  # the server went away: the pool opens a new one
            raise exc.DisconnectionError(str(error)) from error

    return engine


class Database:
    """The one handle on storage: ``begin()`` for writes, ``read()`` for reads."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        # SQLite has one writer at a time. A writer that finds the file locked sleeps
        # in SQLite's busy handler, in steps of up to 100 ms, however soon the lock is
        # free: under load most of a write went into those sleeps (19 ms per BEGIN
        # IMMEDIATE on average). Writers of this process queue on a lock instead and
        # are woken the moment the last one commits; SQLite's own lock still orders
        # them against other processes.
        self._writer: threading.RLock | None = None
        if self.is_sqlite:
            self._writer = threading.RLock()
            self.engine = _sqlite_engine(url, echo=echo)
            self.read_engine = _sqlite_engine(url, echo=echo)
        else:
            kw: dict[str, Any] = {"pool_size": pool_size, "max_overflow": pool_size * 2}
            if pool_size == 0:
                kw = {"poolclass": NullPool}
            self.engine = _pg_engine(url, echo=echo, **kw)
            # The same pool: a connection is switched to autocommit on the client side.
            self.read_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction: committed on success, rolled back on any error."""
        if self._writer is None:
            with self.engine.begin() as conn:
                yield conn
            return
        # After as long as SQLite's own busy timeout, go on without the lock: SQLite
        # then orders the writers as it did before (never worse than without it).
        queued = self._writer.acquire(timeout=WRITER_WAIT_SECONDS)
        try:
            with self.engine.connect() as conn, conn.begin():
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                yield conn
        finally:
            if queued:
                self._writer.release()

    @contextmanager
    def statements(self) -> Iterator[Connection]:
        """For statements that each stand alone (no lock held from one to the next):
        autocommit on PostgreSQL, one round trip each; a write transaction on SQLite."""
        if self.is_sqlite:
            with self.begin() as conn:
                yield conn
            return
        with self.read_engine.connect() as conn:
            yield conn

    @contextmanager
    def lookup(self) -> Iterator[Connection]:
        """For one read statement: autocommit on both databases. On SQLite the statement
        is its own transaction, without the BEGIN and ROLLBACK that :meth:`read` adds
        around it (two more calls into SQLite, on every request's token lookup)."""
        with self.read_engine.connect() as conn:
            yield conn  # on SQLite, no BEGIN: the statement is its own transaction

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads: a read-only transaction on SQLite, autocommit on PG."""
        if not self.is_sqlite:
            with self.read_engine.connect() as conn:
                yield conn
            return
        with self.read_engine.connect() as conn, conn.begin() as tx:
            conn.exec_driver_sql("BEGIN")
            yield conn
            tx.rollback()

    def dispose(self) -> None:
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()
