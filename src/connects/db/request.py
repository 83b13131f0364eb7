"""One commit per keyed request: its writes and its stored answer together (R31).

A request that carries an ``Idempotency-Key`` runs inside a :class:`RequestWrite`
(``Database.request(slot)``). The first ``Database.begin()`` of the request opens one
write transaction; every later ``begin()`` joins it as a savepoint, and every read of
the request runs on it, so the request sees its own writes. When the answer is known,
:meth:`RequestWrite.finish` inserts the key's row, holding that answer, and commits the
lot. So a crash at any moment leaves either nothing (a retry runs afresh) or the change
with its answer (a retry replays it). No row ever says "in flight".

Two requests with one key: the second finds the answer before it starts (the API's
look-up), or its insert meets the first's row on the primary key (on PostgreSQL it
waits there until the first commits). It then rolls back everything it did and
replays the first answer (:class:`KeyTaken`).

What must be committed on its own whatever the request becomes (a payment recorded
before the card is charged, a charge at the gateway, a rate-limit count) runs under
``Database.alone()``, outside the request's transaction. Events the request's
transactions raise are handled after its commit (``Database.defer``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, and_, bindparam, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from connects.db.schema import idempotency_keys, users
from connects.domain.policy import label_prefix


class Write(Protocol):
    """A write transaction ended by hand (:class:`connects.db.engine.Write`)."""

    conn: Connection

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


class Database(Protocol):
    """What a request's write needs of :class:`connects.db.engine.Database`."""

    def open_write(self) -> Write: ...

    def begin(self) -> AbstractContextManager[Connection]: ...


log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer as it is stored and replayed, byte for byte."""

    status: int
    body: bytes
    content_type: str | None = "application/json"


@dataclass(eq=False, slots=True)
class KeySlot:
    """One keyed request: who sent it, its key, what it asked, and (once committed) its
    answer. ``render`` turns what its handler returned into the answer (the route sets
    it), so that a group commit can store the answer of each request it runs."""

    principal: str
    key: str
    method: str
    path: str
    body_hash: str
    created_at: datetime
    render: Callable[[Any], Answer] | None = None
    secret: bool = False  # the answer shows a secret once: a refusal is stored instead
    answer: Answer | None = None  # set once the answer is committed

    def row(self, answer: Answer) -> dict[str, Any]:
        return {
            "principal": self.principal,
            "key": self.key,
            "method": self.method,
            "path": self.path,
            "body_hash": self.body_hash,
            "status_code": answer.status,
            "response_body": answer.body.decode("utf-8", errors="replace"),
            "content_type": answer.content_type,
            "created_at": self.created_at,
        }

    def asks_as(self, row: Any) -> bool:
        """Whether a stored row is for this same request (method, path and body)."""
        return bool(
            (row.method, row.path, row.body_hash) == (self.method, self.path, self.body_hash)
        )


class KeyTaken(Exception):
    """Another request with this key committed first: roll back, replay its answer."""

    def __init__(self, slot: KeySlot) -> None:
        super().__init__(f"the Idempotency-Key {slot.key!r} was answered by another request")
        self.slot = slot


def stored(conn: Connection, principal: str, key: str) -> Any:
    """The stored row of a key, or None."""
    return conn.execute(
        select(idempotency_keys).where(
            idempotency_keys.c.principal == principal, idempotency_keys.c.key == key
        )
    ).one_or_none()


# A person's token and their key's stored row in one statement: the principal is the
# person's actor label (``Actor.label``), built in SQL from its prefix.
_PERSON_AND_KEY = (
    select(users.c.id.label("person_id"), users.c.name.label("person_name"), *idempotency_keys.c)
    .select_from(
        users.outerjoin(
            idempotency_keys,
            and_(
                idempotency_keys.c.principal == literal(label_prefix("user")) + users.c.id,
                idempotency_keys.c.key == bindparam("key"),
            ),
        )
    )
    .where(users.c.token_hash == bindparam("token_hash"))
)


def person_and_stored(conn: Connection, token_hash: str, key: str) -> tuple[Any, Any]:
    """The person holding the token (``person_id``, ``person_name``; None if nobody
    does) and their key's stored row (None if none), from one statement."""
    row = conn.execute(_PERSON_AND_KEY, {"token_hash": token_hash, "key": key}).one_or_none()
    if row is None:
        return None, None
    return row, (row if row.principal is not None else None)


def as_answer(row: Any) -> Answer:
    return Answer(int(row.status_code), (row.response_body or "").encode(), row.content_type)


_KEY = (idempotency_keys.c.principal, idempotency_keys.c.key)
_INSERT = {  # built once: building a statement costs more than running it
    "postgresql": pg_insert(idempotency_keys).on_conflict_do_nothing().returning(*_KEY),
    "sqlite": sqlite_insert(idempotency_keys).on_conflict_do_nothing().returning(*_KEY),
}


def store_answers(conn: Connection, answered: list[tuple[KeySlot, Answer]]) -> list[KeySlot]:
    """Insert the answers' rows in the caller's transaction; the slots whose key another
    request holds already (their row was not inserted, or an earlier slot here has it)."""
    if not answered:
        return []
    first: dict[tuple[str, str], tuple[KeySlot, Answer]] = {}
    taken: list[KeySlot] = []
    for slot, answer in answered:
        if (slot.principal, slot.key) in first:
            taken.append(slot)
        else:
            first[(slot.principal, slot.key)] = (slot, answer)
    stmt = _INSERT[conn.dialect.name]
    rows = [slot.row(answer) for slot, answer in first.values()]
    inserted = {
        (r.principal, r.key) for r in conn.execute(stmt, rows[0] if len(rows) == 1 else rows)
    }
    return taken + [slot for key, (slot, _) in first.items() if key not in inserted]


_CURRENT: ContextVar[RequestWrite | None] = ContextVar("connects_request_write", default=None)


class RequestWrite:
    """The one write transaction of a keyed request (see the module's docstring)."""

    def __init__(self, db: Database, slot: KeySlot) -> None:
        self.db = db
        self.slot = slot
        self._write: Write | None = None
        self._alone = 0
        self._done = False
        self._deferred: list[Callable[[], None]] = []

    @property
    def joins(self) -> bool:
        """Whether ``begin()`` on this request's database joins this transaction now."""
        return not (self._done or self._alone)

    @property
    def conn(self) -> Connection | None:
        """The open transaction's connection (None until the first write)."""
        return self._write.conn if self._write is not None and self.joins else None

    @contextmanager
    def block(self) -> Iterator[Connection]:
        """One ``begin()`` of the request: the transaction itself the first time, a
        savepoint in it after that (a block that fails undoes only itself)."""
        if self._write is None:
            self._write = write = self.db.open_write()
            try:
                yield write.conn
            except BaseException:
                self._write = None
                self._deferred.clear()
                write.rollback()
                raise
            return
        conn = self._write.conn
        savepoint = conn.begin_nested()
        try:
            yield conn
        except BaseException:
            savepoint.rollback()
            raise
        savepoint.commit()

    @contextmanager
    def alone(self) -> Iterator[None]:
        if self._write is not None and self.joins:
            # SQLite has one writer: a second transaction would wait on this one forever.
            raise RuntimeError("alone() while the request's transaction is open")
        self._alone += 1
        try:
            yield
        finally:
            self._alone -= 1

    def defer(self, work: Callable[[], None]) -> bool:
        if self._write is None or not self.joins:
            return False
        self._deferred.append(work)
        return True

    def finish(self, answer: Answer) -> None:
        """Store ``answer`` and commit it with the request's writes; then run the work
        deferred to after the commit. :class:`KeyTaken` (everything rolled back) when
        another request with the key committed first."""
        write, self._write = self._write, None
        self._done = True
        # Already stored (a group commit stored it with the change): store nothing more.
        pending = [] if self.slot.answer is not None else [(self.slot, answer)]
        if write is None:  # the request wrote nothing of its own: the answer alone
            taken: list[KeySlot] = []
            if pending:
                with self.db.begin() as conn:
                    taken = store_answers(conn, pending)
        else:
            try:
                taken = store_answers(write.conn, pending)
            except BaseException:
                write.rollback()
                raise
            if taken:
                write.rollback()
            else:
                write.commit()
        if taken:
            raise KeyTaken(self.slot)
        self.slot.answer = self.slot.answer or answer
        deferred, self._deferred = self._deferred, []
        for work in deferred:
            try:
                work()
            except Exception:  # the change and its answer are committed; log, go on
                log.exception("work after a request's commit failed")

    def abort(self) -> None:
        """Roll back whatever the request wrote; nothing is stored."""
        write, self._write = self._write, None
        self._done = True
        self._deferred.clear()
        if write is not None:
            write.rollback()


def current(db: Database) -> RequestWrite | None:
    """The request transaction ``db``'s ``begin()`` joins here, if any."""
    found = _CURRENT.get()
    if found is None or found.db is not db or not found.joins:
        return None
    return found


def suspended(db: Database) -> RequestWrite | None:
    """The request of ``db`` running here (joined or not)."""
    found = _CURRENT.get()
    return found if found is not None and found.db is db and not found._done else None


@contextmanager
def request(db: Database, slot: KeySlot) -> Iterator[RequestWrite]:
    """Run a keyed request: writes join one transaction until ``finish`` or ``abort``
    (an exit without either aborts)."""
    write = RequestWrite(db, slot)
    token = _CURRENT.set(write)
    try:
        yield write
    finally:
        _CURRENT.reset(token)
        if not write._done:
            write.abort()
