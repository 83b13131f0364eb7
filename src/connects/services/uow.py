"""The unit of work: one handler's write transactions and the events they raised.

``with uow.begin() as tx:`` opens a write transaction. Accounts are locked through
``tx.book(account_id)`` (once per transaction, in the order asked; callers keep the
lock order: jobs first, then accounts in id order), and every book is saved before
the commit, so a balance drop always gets its auto top-up decision in the same
transaction (R20, R23). Events raised in the transaction (by a book, or by
``tx.raise_event``) are kept only once it has committed: a rolled-back transaction's
events are dropped with it. In a keyed request, whose transactions are one
(:mod:`connects.db.request`), they are handled once that one has committed. The
message bus takes them with :meth:`UnitOfWork.collect` after the handler returns and
runs their reactions.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime

from sqlalchemy import Connection

from connects.domain.events import Event
from connects.domain.policy import Action, Actor
from connects.services import access
from connects.services.book import AccountBook
from connects.services.context import Context


class Transaction:
    """One write transaction: its connection, its moment, the accounts it locked."""

    def __init__(self, conn: Connection, now: datetime) -> None:
        self.conn = conn
        self.now = now
        self.events: list[Event] = []
        self._books: dict[str, AccountBook] = {}

    def book(self, account_id: str, *, buffered: bool = False) -> AccountBook:
        """The account, locked for the rest of the transaction (``not_found`` if none)."""
        book = self._books.get(account_id)
        if book is None:
            book = AccountBook.lock(
                self.conn, account_id, self.now, buffered=buffered, events=self.events
            )
            self._books[account_id] = book
        return book

    def authorize(self, account_id: str, who: Actor, action: Action) -> Actor:
        """Lock the account, then refuse unless ``who`` may do ``action`` (R3, R6);
        the caller with their role or grants."""
        self.book(account_id)
        return access.authorize(self.conn, account_id, who, action, self.now)

    def raise_event(self, event: Event) -> None:
        """Handle ``event`` after this transaction commits (never if it rolls back)."""
        self.events.append(event)

    def save(self) -> None:
        """Write every locked account back (its balance, and any top-up it decided)."""
        for book in self._books.values():
            book.save()


class UnitOfWork:
    """What one handler writes, and the events to dispatch once it is committed."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._committed: list[Event] = []

    @contextmanager
    def begin(self, now: datetime | None = None) -> Iterator[Transaction]:
        """A write transaction at ``now`` (the clock's time by default), committed when
        the block ends and rolled back if it raises."""
        moment = now if now is not None else self.ctx.now()
        with self.ctx.db.begin() as conn:
            tx = Transaction(conn, moment)
            yield tx
            tx.save()
        # Reached only after the commit; inside a keyed request's one transaction
        # (connects.db.request), the commit is the request's: the events wait for it.
        if tx.events and not self.ctx.db.defer(lambda: self._publish(tx.events)):
            self._committed.extend(tx.events)

    def _publish(self, events: list[Event]) -> None:
        if self.ctx.bus is not None:
            self.ctx.bus.publish(self.ctx, events)  # after the commit: runs them now

    def read(self) -> AbstractContextManager[Connection]:
        """A read-only connection (no locks, no events)."""
        return self.ctx.db.read()

    def collect(self) -> list[Event]:
        """The events of every transaction committed so far, once each."""
        events, self._committed = self._committed, []
        return events
