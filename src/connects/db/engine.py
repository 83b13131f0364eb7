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

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from types import ModuleType
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.pool import ConnectionPoolEntry, NullPool, PoolProxiedConnection

from connects.db import failover
from connects.db import request as req
from connects.db.replica import Replica
from connects.db.urls import sqlalchemy_url

fcntl: ModuleType | None
try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: SQLite alone orders the processes
    fcntl = None

PING_IDLE_SECONDS = 10.0
WRITER_WAIT_SECONDS = 30.0  # as PRAGMA busy_timeout below
WRITER_POLL_SECONDS = (0.00005, 0.001)  # first and longest pause between file-lock tries
SQLITE_READ_POOL = 40  # anyio's default number of worker threads


class WriterQueue:
    """The queue of one SQLite file's writers, across threads and processes.

    SQLite has one writer at a time. A writer that finds the file locked sleeps in
    SQLite's busy handler, in steps of up to 100 ms, however soon the lock is free:
    under load most of a write went into those sleeps. Writers queue here instead. In
    a process, on a lock that wakes the next writer the moment the last one commits.
    Across processes (``connects serve --workers 2``, a ``connects worker`` beside the
    API), on an advisory lock of the file ``<database>-writers``: the writer of each
    process that is next in its own queue tries it, pausing from 50 us to 1 ms between
    tries. The kernel drops that
    lock with its process, so a killed process never holds the others up.

    After as long as SQLite's own busy timeout (:data:`WRITER_WAIT_SECONDS`) a writer
    goes on without its turn: SQLite then orders the writers as it did before, never
    worse than without the queue. The queue only orders writers; SQLite's lock is what
    keeps them apart, so a program that does not use the queue is still safe.
    """

    def __init__(self, database: str | None) -> None:
        self._threads = threading.RLock()
        self._depth = 0  # how deep the thread holding ``_threads`` is in ``turn()``
        self._path = f"{database}-writers" if database and database != ":memory:" else None
        self._fd: int | None = None
        self._pid = 0

    @contextmanager
    def turn(self) -> Iterator[None]:
        """Hold this writer's turn (reentrant for the thread that holds it)."""
        if not self._threads.acquire(timeout=WRITER_WAIT_SECONDS):
            yield  # a thread is stuck holding the queue: SQLite orders us
            return
        self._depth += 1
        locked = False
        try:
            locked = self._depth == 1 and self._lock_file()
            yield
        finally:
            self._depth -= 1
            if locked:
                assert fcntl is not None and self._fd is not None
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._threads.release()

    def _lock_file(self) -> bool:
        """Take the file lock; False when there is no file or the wait ran out."""
        fd = self._file()
        if fd is None or fcntl is None:
            return False
        pause, longest = WRITER_POLL_SECONDS
        deadline = time.monotonic() + WRITER_WAIT_SECONDS
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(pause)
                pause = min(pause * 2, longest)

    def _file(self) -> int | None:
        """The lock file, opened once per process: a forked child shares its parent's
        open file, and with it the parent's lock, so it opens its own."""
        if self._path is None or fcntl is None:
            return None
        if self._fd is None or self._pid != os.getpid():
            try:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError:  # a read-only directory: SQLite alone orders the writers
                self._path = None
                return None
            self._pid = os.getpid()
        return self._fd

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None


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
    failover.mark_disconnects(engine)  # a lost or read-only primary: connect afresh

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


class Write:
    """One write transaction, opened here and ended by :meth:`commit` or :meth:`rollback`.

    On SQLite it holds the writer's turn (:class:`WriterQueue`) and starts with ``BEGIN
    IMMEDIATE``; on PostgreSQL it is a plain transaction of the pool.
    """

    __slots__ = ("_turn", "_tx", "conn")

    def __init__(self, engine: Engine, writer: WriterQueue | None) -> None:
        self._turn = writer.turn() if writer is not None else None
        if self._turn is not None:
            self._turn.__enter__()
        try:
            self.conn = engine.connect()
            try:
                self._tx = self.conn.begin()
                if writer is not None:
                    self.conn.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                self.conn.close()
                raise
        except BaseException:
            if self._turn is not None:
                self._turn.__exit__(None, None, None)
            raise

    def commit(self) -> None:
        try:
            self._tx.commit()
        finally:
            self._close()

    def rollback(self) -> None:
        try:
            self._tx.rollback()
        finally:
            self._close()

    def _close(self) -> None:
        try:
            self.conn.close()
        finally:
            if self._turn is not None:
                self._turn.__exit__(None, None, None)


class Database:
    """The one handle on storage: ``begin()`` for writes, ``read()`` for reads."""

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        max_overflow: int | None = None,
        echo: bool = False,
        failover_seconds: float = 0.0,
        transaction_pooler: bool = False,
        read_url: str | None = None,
    ) -> None:
        self.url = url = sqlalchemy_url(url)
        self.is_sqlite = url.startswith("sqlite")
        # How long work that is safe to repeat (reads, keyed writes) is retried while
        # PostgreSQL fails over (connects.db.failover); never on SQLite.
        self.failover_seconds = 0.0 if self.is_sqlite else failover_seconds
        self._writer: WriterQueue | None = None
        if self.is_sqlite:
            self.engine = _sqlite_engine(url, echo=echo)
            self._writer = WriterQueue(self.engine.url.database)
            # Reads run side by side in the API's worker threads: as many pooled
            # connections as threads, so none is opened and closed per request (an
            # overflow connection is discarded when it is returned).
            self.read_engine = _sqlite_engine(
                url, echo=echo, pool_size=SQLITE_READ_POOL, max_overflow=SQLITE_READ_POOL
            )
        else:
            overflow = pool_size * 2 if max_overflow is None else max_overflow
            kw: dict[str, Any] = {"pool_size": pool_size, "max_overflow": overflow}
            if pool_size == 0:
                kw = {"poolclass": NullPool}
            if transaction_pooler:
                # PgBouncer in transaction mode hands each transaction any server
                # connection: a statement psycopg prepared on one (after 5 runs) is
                # unknown on the next. Nothing else here keeps session state: settings
                # are SET LOCAL, temporary tables ON COMMIT DROP, no advisory locks.
                kw["connect_args"] = {"prepare_threshold": None}
            self.engine = _pg_engine(url, echo=echo, **kw)
            # The same pool: a connection is switched to autocommit on the client side.
            self.read_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
        self.replica: Replica | None = None
        if read_url and not self.is_sqlite:
            # Its own pool, as large as the primary's (a read holds one of them at most).
            pooled: dict[str, Any] = {"pool_size": max(pool_size, 1), "max_overflow": overflow}
            if transaction_pooler:
                pooled["connect_args"] = {"prepare_threshold": None}
            self.replica = Replica(read_url, self.read_engine, **pooled)

    @property
    def inline_lookups(self) -> bool:
        """Whether a :meth:`lookup` may run on an event loop's own thread. On SQLite it
        is a read of a local file that never waits for a writer (WAL: readers see the
        last commit while a writer works), and handing it to a worker thread and back
        costs more than the read itself. On PostgreSQL it is a network round trip, so
        no."""
        return self.is_sqlite

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def open_write(self) -> Write:
        """A write transaction ended by hand (``begin()`` and a request's write use it)."""
        return Write(self.engine, self._writer)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction: committed on success, rolled back on any error. Inside a
        keyed request (:mod:`connects.db.request`) it joins the request's transaction."""
        joined = req.current(self)
        if joined is not None:
            with joined.block() as conn:
                yield conn
            return
        write = Write(self.engine, self._writer)
        try:
            yield write.conn
        except BaseException:
            write.rollback()
            raise
        write.commit()

    def request(self, slot: req.KeySlot) -> AbstractContextManager[req.RequestWrite]:
        """Run a keyed request's writes as one transaction with its answer (R31)."""
        return req.request(self, slot)

    @contextmanager
    def alone(self) -> Iterator[None]:
        """Writes in this block commit on their own, outside the keyed request's
        transaction (a payment recorded before its charge, a charge, a count)."""
        running = req.suspended(self)
        if running is None:
            yield
            return
        with running.alone():
            yield

    def slot(self) -> req.KeySlot | None:
        """The keyed request running here, if any (a group commit stores its answer)."""
        running = req.suspended(self)
        return None if running is None else running.slot

    def defer(self, work: Callable[[], None]) -> bool:
        """Run ``work`` once the keyed request's transaction has committed (never if it
        rolls back); False when no such transaction is open here (the caller runs it)."""
        joined = req.current(self)
        return joined is not None and joined.defer(work)

    def _joined(self) -> Connection | None:
        joined = req.current(self)
        return None if joined is None else joined.conn

    @contextmanager
    def statements(self) -> Iterator[Connection]:
        """For statements that each stand alone (no lock held from one to the next):
        autocommit on PostgreSQL, one round trip each; a write transaction on SQLite.
        In a keyed request that has written already, they run in its transaction."""
        joined = self._joined()
        if joined is not None:
            yield joined
            return
        if self.is_sqlite:
            with self.alone(), self.begin() as conn:
                yield conn
            return
        with self.read_engine.connect() as conn:
            yield conn

    @contextmanager
    def lookup(self) -> Iterator[Connection]:
        """For one read statement: autocommit on both databases. On SQLite the statement
        is its own transaction, without the BEGIN and ROLLBACK that :meth:`read` adds
        around it (two more calls into SQLite, on every request's token lookup)."""
        joined = self._joined()
        if joined is not None:
            yield joined
            return
        with self.read_engine.connect() as conn:
            yield conn  # on SQLite, no BEGIN: the statement is its own transaction

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads: a read-only transaction on SQLite, autocommit on PG;
        in a keyed request that has written, its transaction (it sees its own writes)."""
        joined = self._joined()
        if joined is not None:
            yield joined
            return
        if not self.is_sqlite:
            with self.read_engine.connect() as conn:
                yield conn
            return
        with self.read_engine.connect() as conn, conn.begin() as tx:
            conn.exec_driver_sql("BEGIN")
            yield conn
            tx.rollback()

    @contextmanager
    def replica_read(self) -> Iterator[Connection]:
        """:meth:`read` for reads that may go to the read replica (history, its CSV):
        there only when the replica has replayed every write the primary has flushed
        (:mod:`connects.db.replica`), so they never miss a write already answered."""
        if self.replica is None or self._joined() is not None:
            with self.read() as conn:
                yield conn
            return
        with self.replica.read() as conn:
            yield conn

    def dispose(self) -> None:
        if self.replica is not None:
            self.replica.dispose()
        if self._writer is not None:
            self._writer.close()
        self.engine.dispose()
        if self.read_engine is not self.engine:
            self.read_engine.dispose()
