"""Boosted proposals in the ledger (R35, R36) and the outcomes that move them (R38).

A boost is a hold (:mod:`connects.services.holds`) on the account a proposal was
submitted under, with the job it bids in. The job's top 4 bids (highest first, then
earliest) are boosted. While the auction is open a client interaction with a proposal
in the top 4 captures its bid; at the close (the first hire, or the deadline by the
due work) the top 4 still held are captured and the rest released. A cancel, a close
without hire or a removal gives captured bids back with the price and releases the
rest; an expiry releases what is held.

Lock order as everywhere: the job (``FOR UPDATE`` for anything that captures or
closes, so no bid moves meanwhile; ``FOR SHARE`` to bid), then accounts in id order.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update

from connects.db.schema import holds as holds_table
from connects.db.schema import jobs, proposal_outcomes
from connects.db.sql import insert_ignore
from connects.domain import boosts as rules
from connects.domain.errors import AuctionClosed, InvalidRequest
from connects.domain.policy import SYSTEM, Actor
from connects.domain.vocabulary import HoldStatus, JobStatus, OutcomeKind
from connects.services import holds, proposal_figures
from connects.services.book import AccountBook
from connects.services.context import Context
from connects.services.uow import Transaction, UnitOfWork
from connects.services.views.holds import bids


def check_bid(value: Any, max_bid: int, field: str = "boost") -> int:
    """A bid in whole Connects, 1 to the configured maximum (R35)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= max_bid:
        raise InvalidRequest(f"{field} must be a whole number from 1 to {max_bid}", field=field)
    return value


def is_open(job: Any, now: Any) -> bool:
    """Whether the job's auction takes bids now (R35)."""
    return job.status == JobStatus.OPEN and rules.auction_open(
        job.auction_closes_at, job.auction_closed_at, now
    )


def place_bid(
    book: AccountBook, job: Any, proposal: dict[str, Any], bid: int, actor: Actor
) -> holds.Placed:
    """Hold a new proposal's bid (R35), with the bids ranked before it; the caller has
    checked the auction is open."""
    return holds.place(
        book,
        bid,
        actor=actor,
        reason=f"boost on {job.title}"[:200],
        proposal_id=proposal["id"],
        job_id=job.id,
        member_id=proposal["freelancer_id"],
    )


def record(tx: Transaction, prop: Any, kind: OutcomeKind, actor_id: str | None) -> bool:
    """Record what happened to a proposal, once per kind (R38), and mark it on the
    proposal's figures (R39); whether it is new."""
    new = insert_ignore(
        tx.conn,
        proposal_outcomes,
        {
            "proposal_id": prop.id,
            "kind": kind.value,
            "account_id": prop.account_id,
            "actor_id": actor_id,
            "at": tx.now,
        },
    )
    if new:
        proposal_figures.mark(tx.conn, prop.account_id, prop.id, kind)
    return new


def _top_ids(tx: Transaction, job_id: str) -> set[str]:
    return {b.hold_id for b in rules.top(bids(tx.conn, job_id))}


def on_interaction(tx: Transaction, job: Any, prop: Any, kind: OutcomeKind, actor: Actor) -> None:
    """A client interaction (R35): in the top 4 of an open auction the bid is captured
    at once; a decline releases a bid that is not (R36). The job is locked for update."""
    hold = holds.of_proposal(tx.conn, prop.account_id, prop.id)
    if hold is None or hold.status != HoldStatus.HELD:
        return
    book = tx.book(prop.account_id)
    if kind.captures and is_open(job, tx.now) and hold.id in _top_ids(tx, job.id):
        book.sweep_expired()
        hold = holds.load(tx.conn, hold.id, book.id)
        if hold.status == HoldStatus.HELD:
            holds.capture(book, hold, actor=actor, reason=f"the client {kind.value} the proposal")
    elif kind is OutcomeKind.DECLINED:
        holds.release(book, hold, actor=actor, reason="the client declined the proposal")


def _job_holds(tx: Transaction, job_id: str, status: HoldStatus | None = None) -> list[Any]:
    query = (
        select(holds_table)
        .where(holds_table.c.job_id == job_id)
        .execution_options(all_accounts=True)  # a job's bids: every account's
    )
    if status is not None:
        query = query.where(holds_table.c.status == status.value)
    return list(tx.conn.execute(query.order_by(holds_table.c.account_id, holds_table.c.id)))


def close_auction(tx: Transaction, job: Any, actor: Actor = SYSTEM) -> int:
    """Close the job's auction: the top 4 still held are captured, the rest released
    (R35). Idempotent; the job is locked for update. Connects captured."""
    if job.auction_closed_at is not None:
        return 0
    top = _top_ids(tx, job.id)
    captured = 0
    for hold in _job_holds(tx, job.id, HoldStatus.HELD):  # accounts in id order
        book = tx.book(hold.account_id)
        if hold.id in top:
            book.sweep_expired()
            hold = holds.load(tx.conn, hold.id, book.id)
            if hold.status == HoldStatus.HELD:
                captured += holds.capture(book, hold, actor=actor, reason="the auction closed")
        else:
            holds.release(book, hold, actor=actor, reason="outbid when the auction closed")
    tx.conn.execute(update(jobs).where(jobs.c.id == job.id).values(auction_closed_at=tx.now))
    return captured


def settle_ending(
    tx: Transaction, job: Any, status: JobStatus, live: set[str], actor: Actor
) -> int:
    """A job's ending and its boosts (R36): a hire closes the auction (R35); a refunding
    ending gives the captured bids of ``live`` proposals back and releases every held
    one; an expiry releases what is held. Connects given back."""
    if status is JobStatus.FILLED:
        close_auction(tx, job, actor)
        return 0
    returned = 0
    for hold in _job_holds(tx, job.id):
        if hold.status == HoldStatus.HELD:
            holds.release(tx.book(hold.account_id), hold, actor=actor, reason=f"the job {status}")
        elif status.refunds and hold.proposal_id in live:
            returned += holds.give_back(
                tx.book(hold.account_id), hold, actor=actor, reason=f"the job {status}"
            )
    tx.conn.execute(
        update(jobs)
        .where(jobs.c.id == job.id, jobs.c.auction_closed_at.is_(None))
        .values(auction_closed_at=tx.now)
    )
    return returned


def release_on_withdraw(tx: Transaction, prop: Any, actor: Actor) -> None:
    """Withdrawing releases a held bid; a captured one stays spent (R36)."""
    hold = holds.of_proposal(tx.conn, prop.account_id, prop.id)
    if hold is not None and hold.status == HoldStatus.HELD:
        holds.release(tx.book(prop.account_id), hold, actor=actor, reason="withdrawn")


def refuse_closed(job: Any, now: Any) -> None:
    """``auction_closed`` unless the job's auction takes bids now."""
    if not is_open(job, now):
        raise AuctionClosed(
            "the job's boost auction is closed", closes_at=str(job.auction_closes_at)
        )


_DUE = (
    select(jobs.c.id)
    .where(jobs.c.auction_closed_at.is_(None), jobs.c.auction_closes_at.is_not(None))
    .order_by(jobs.c.auction_closes_at)
)


def close_due(ctx: Context, batch: int = 200) -> int:
    """The due work: close every auction past its deadline (R35), each job in its own
    transaction. Auctions closed."""
    closed = 0
    while True:
        now = ctx.now()
        with ctx.db.read() as conn:
            due = conn.execute(_DUE.where(jobs.c.auction_closes_at <= now).limit(batch)).scalars()
            job_ids = list(due)
        uow = UnitOfWork(ctx)
        for job_id in job_ids:
            with uow.begin(now) as tx:
                job = tx.conn.execute(
                    select(jobs).where(jobs.c.id == job_id).with_for_update()
                ).one()
                if job.auction_closed_at is None:
                    close_auction(tx, job)
                    closed += 1
        if ctx.bus is not None:
            ctx.bus.publish(ctx, uow.collect())
        if len(job_ids) < batch:
            return closed
