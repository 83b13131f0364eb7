"""Holds on Connects (R34): placed, raised, captured (all or part) or released, once.

A hold keeps Connects in their lots but out of what is available (the one measure,
:func:`connects.db.measures.available`; the locked twin is
:meth:`connects.services.book.AccountBook.available`). Every step works on an account
locked in the current transaction (its book), writes an entry with the actor (R30):
placing, raising and releasing move nothing (amount 0), a capture spends what it
takes. The update that ends a hold names ``held``, so a hold ends at most once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple, Protocol

from sqlalchemy import ColumnClause, Connection, insert, literal_column, select, update

from connects.db.schema import holds
from connects.db.sql import Prepared
from connects.domain.errors import HoldEnded, InsufficientConnects, InvalidRequest, NotFound
from connects.domain.ids import new_id
from connects.domain.policy import SYSTEM, Actor
from connects.domain.vocabulary import EntryKind, HoldStatus


class HoldingBook(Protocol):
    """An account locked in this transaction (an ``AccountBook``)."""

    conn: Connection
    id: str
    now: datetime
    balance: int
    held: int

    def available(self) -> int: ...

    def spend(self, amount: int, *, kind: str, actor: Actor, **refs: Any) -> str: ...

    def give_back(self, entry_id: str, *, kind: str, actor: Actor, **refs: Any) -> str: ...

    def note(self, kind: str, *, actor: Actor, **refs: Any) -> str: ...


# A new bid's place in its job's auction, counted by its own INSERT (R35): the bidding
# holds of the job that rank before it, in ``domain.boosts.ranking_key``'s order
# (highest, then earliest, then by id); 0 for a hold outside an auction. Written out:
# SQLAlchemy renders neither a correlation to the inserted row nor (on SQLite) table
# names inside a RETURNING. A job's auction holds every account's bids: the count runs
# across shards.
_BIDDING = ", ".join(f"'{s.value}'" for s in HoldStatus.bidding())
_BIDS_AHEAD: ColumnClause[Any] = literal_column(
    "(SELECT count(*) FROM holds AS ahead"
    " WHERE ahead.job_id = holds.job_id"
    f" AND ahead.status IN ({_BIDDING})"
    " AND (ahead.amount > holds.amount OR ahead.amount = holds.amount"
    " AND (ahead.bid_at < holds.bid_at OR ahead.bid_at = holds.bid_at AND ahead.id < holds.id)))"
)
# The boosted proposal's hot path (bench/ledger.py): one statement, no separate count.
_INSERT_HOLD = Prepared(insert(holds).returning(_BIDS_AHEAD).execution_options(all_accounts=True))


class Placed(NamedTuple):
    """A hold just placed: its id, and how many bids rank before it in its job's
    auction (R35; 0 outside an auction)."""

    id: str
    ahead: int


def _refs(hold: Any) -> dict[str, Any]:
    return {"hold_id": hold.id, "proposal_id": hold.proposal_id, "member_id": hold.member_id}


def place(
    book: HoldingBook,
    amount: int,
    *,
    actor: Actor,
    reason: str,
    proposal_id: str | None = None,
    job_id: str | None = None,
    member_id: str | None = None,
    deadline: datetime | None = None,
) -> Placed:
    """Hold ``amount`` Connects of the locked account; ``insufficient_connects`` if fewer
    are available (R34)."""
    if amount <= 0:
        raise InvalidRequest("a hold is at least 1 Connect", field="amount")
    have = book.available()
    if have < amount:
        raise InsufficientConnects(
            f"this needs {amount} Connects and {max(have, 0)} are available",
            required=amount,
            available=max(have, 0),
        )
    hold_id = new_id("hld")
    ahead = _INSERT_HOLD.execute(
        book.conn,
        {
            "id": hold_id,
            "account_id": book.id,
            "amount": amount,
            "captured": 0,
            "status": HoldStatus.HELD.value,
            "reason": reason[:200],
            "proposal_id": proposal_id,
            "job_id": job_id,
            "member_id": member_id,
            "deadline": deadline,
            "bid_at": book.now,
            "created_at": book.now,
        },
    ).scalar_one()
    book.held += amount
    book.note(
        EntryKind.HOLD,
        actor=actor,
        hold_id=hold_id,
        proposal_id=proposal_id,
        member_id=member_id,
        note=f"{amount} Connects held: {reason}"[:200],
    )
    return Placed(hold_id, int(ahead))


def load(conn: Connection, hold_id: str, account_id: str) -> Any:
    """The hold row (``not_found`` if none, or not of ``account_id``)."""
    query = select(holds).where(holds.c.account_id == account_id, holds.c.id == hold_id)
    row = conn.execute(query).one_or_none()
    if row is None:
        raise NotFound("no such hold", hold_id=hold_id)
    return row


def of_proposal(conn: Connection, account_id: str, proposal_id: str) -> Any | None:
    """The boost hold of ``account_id``'s proposal, if it has one (R35)."""
    query = select(holds).where(
        holds.c.account_id == account_id, holds.c.proposal_id == proposal_id
    )
    return conn.execute(query).one_or_none()


def _open(hold: Any) -> None:
    if hold.status != HoldStatus.HELD:
        raise HoldEnded(f"the hold is already {hold.status}", status=hold.status)


def _end(book: HoldingBook, hold: Any, values: dict[str, Any]) -> None:
    ended = book.conn.execute(
        update(holds)
        .where(
            holds.c.account_id == hold.account_id,
            holds.c.id == hold.id,
            holds.c.status == HoldStatus.HELD.value,
        )
        .values(ended_at=book.now, **values)
    ).rowcount
    if ended != 1:  # unreachable under the account's lock; never end a hold twice
        raise HoldEnded("the hold already ended", hold_id=hold.id)
    book.held -= hold.amount


def raise_to(book: HoldingBook, hold: Any, amount: int, *, actor: Actor) -> None:
    """Grow an open hold to ``amount`` (R35: a bid is raised, never lowered)."""
    _open(hold)
    if amount <= hold.amount:
        raise InvalidRequest(
            f"the new bid must be above {hold.amount} Connects", field="bid", current=hold.amount
        )
    more = amount - hold.amount
    have = book.available()
    if have < more:
        raise InsufficientConnects(
            f"raising the hold needs {more} more Connects and {max(have, 0)} are available",
            required=more,
            available=max(have, 0),
        )
    grown = book.conn.execute(
        update(holds)
        .where(
            holds.c.account_id == hold.account_id,
            holds.c.id == hold.id,
            holds.c.status == HoldStatus.HELD.value,
        )
        .values(amount=amount, bid_at=book.now)
    ).rowcount
    if grown != 1:
        raise HoldEnded("the hold already ended", hold_id=hold.id)
    book.held += more
    book.note(EntryKind.HOLD, actor=actor, **_refs(hold), note=f"hold raised to {amount}")


def capture(
    book: HoldingBook, hold: Any, *, actor: Actor, reason: str, amount: int | None = None
) -> int:
    """Spend ``amount`` (default: all) of an open hold and release the rest (R34)."""
    _open(hold)
    take = hold.amount if amount is None else amount
    if not 0 <= take <= hold.amount:
        raise InvalidRequest(f"a capture takes 0 to {hold.amount} Connects", field="amount")
    _end(
        book, hold, {"status": HoldStatus.CAPTURED.value, "captured": take, "ended_reason": reason}
    )
    entry_id = None
    rest = hold.amount - take
    note = f"hold captured: {reason}" + (f" ({rest} released)" if rest else "")
    if take:
        entry_id = book.spend(take, kind=EntryKind.CAPTURE, actor=actor, **_refs(hold), note=note)
        book.conn.execute(
            update(holds)
            .where(holds.c.account_id == book.id, holds.c.id == hold.id)
            .values(entry_id=entry_id)
        )
    else:
        book.note(EntryKind.RELEASE, actor=actor, **_refs(hold), note=note)
    return take


def release(book: HoldingBook, hold: Any, *, actor: Actor, reason: str) -> None:
    """End an open hold without spending it (R34)."""
    _open(hold)
    _end(book, hold, {"status": HoldStatus.RELEASED.value, "ended_reason": reason})
    book.note(EntryKind.RELEASE, actor=actor, **_refs(hold), note=f"hold released: {reason}")


def give_back(book: HoldingBook, hold: Any, *, actor: Actor, reason: str) -> int:
    """A captured hold's Connects back into the lots they came from (R36, as R15)."""
    if hold.status != HoldStatus.CAPTURED or not hold.entry_id:
        return 0
    book.give_back(
        hold.entry_id,
        kind=EntryKind.REFUND,
        actor=actor,
        **_refs(hold),
        dedupe_key=f"refund:{hold.id}",
        note=reason,
    )
    book.conn.execute(
        update(holds)
        .where(holds.c.account_id == book.id, holds.c.id == hold.id)
        .values(ended_reason=reason)
    )
    return int(hold.captured)


def open_holds(conn: Connection, account_id: str) -> list[Any]:
    """The account's open holds, newest first."""
    return list(
        conn.execute(
            select(holds)
            .where(holds.c.account_id == account_id, holds.c.status == HoldStatus.HELD.value)
            .order_by(holds.c.created_at.desc(), holds.c.id.desc())
        )
    )


def cut_to_balance(book: HoldingBook, reason: str = "the Connects it held expired") -> int:
    """Release the newest open holds while more is held than the balance (R34: held <=
    balance): the Connects they kept expired under them (R12) or were forfeited by
    rollover (R9). How many released."""
    if book.held <= book.balance:
        return 0
    released = 0
    for hold in open_holds(book.conn, book.id):
        if book.held <= book.balance:
            break
        release(book, hold, actor=SYSTEM, reason=reason)
        released += 1
    return released
