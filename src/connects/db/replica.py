"""Reads sent to a PostgreSQL read replica, never older than the caller's writes.

``CONNECTS_READ_DATABASE_URL`` names a streaming standby. The reads that may go there
(``Database.replica_read()``: the history and its CSV export) go only when the standby
has caught up: before the read, the primary's WAL flush position
(``pg_current_wal_flush_lsn()``, one round trip, no table read) is compared with
what the standby has replayed (``pg_last_wal_replay_lsn()``). Every write any caller
was told about (a 2xx) had its commit flushed on the primary before that answer left,
so once the standby has replayed up to that position it shows them all: an answer
that follows a write, by that caller or anyone, never reads an older state. A standby
that lags is waited for up to :data:`CATCH_UP_SECONDS`, then the primary answers;
one that does not answer at all is skipped the same way. This needs no cookie, header
or per-caller state shared between processes, and holds across API processes.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, exc, text

from connects.db import failover
from connects.db.urls import sqlalchemy_url

log = logging.getLogger("connects.db")

CATCH_UP_SECONDS = 0.2  # how long a read waits for the standby before the primary answers
POLL_SECONDS = 0.005

_FLUSHED = text("SELECT pg_current_wal_flush_lsn()::text")
_REPLAYED = text(
    "SELECT coalesce(pg_last_wal_replay_lsn() >= CAST(:lsn AS pg_lsn), true)"  # a primary
)


class Replica:
    """The read replica of one :class:`~connects.db.engine.Database` (PostgreSQL)."""

    def __init__(self, url: str, primary: Engine, **pool: Any) -> None:
        self.engine = create_engine(sqlalchemy_url(url), isolation_level="AUTOCOMMIT", **pool)
        failover.mark_disconnects(self.engine)
        self.primary = primary  # the primary's autocommit read engine
        self.served = 0  # reads the replica answered
        self.fell_back = 0  # reads it could not take (behind, or down)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection to the replica if it has caught up with the primary, else one
        to the primary (see the module's docstring)."""
        with self.primary.connect() as conn:
            flushed = str(conn.execute(_FLUSHED).scalar_one())
        replica = self._caught_up(flushed)  # one pooled connection at a time
        if replica is None:
            self.fell_back += 1
            with self.primary.connect() as conn:
                yield conn
            return
        try:
            self.served += 1
            yield replica
        finally:
            replica.close()

    def _caught_up(self, lsn: str) -> Connection | None:
        try:
            conn = self.engine.connect()
        except exc.DBAPIError as error:
            log.warning("read replica unreachable: %s", str(error).splitlines()[0][:200])
            return None
        deadline = time.monotonic() + CATCH_UP_SECONDS
        try:
            while not conn.execute(_REPLAYED, {"lsn": lsn}).scalar_one():
                if time.monotonic() >= deadline:
                    conn.close()
                    return None
                time.sleep(POLL_SECONDS)
        except exc.DBAPIError as error:
            log.warning("read replica failed: %s", str(error).splitlines()[0][:200])
            conn.close()
            return None
        return conn

    def dispose(self) -> None:
        self.engine.dispose()
