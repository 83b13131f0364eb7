"""Reads of holds (R34), a job's boost auction (R35) and a proposal with its boost and
outcomes (R38)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, or_, select

from connects.db.schema import accounts, holds, jobs, proposal_outcomes, proposals
from connects.domain import boosts
from connects.domain.cursors import number_cursor
from connects.domain.errors import ConnectsError, NotFound
from connects.domain.policy import Action, Actor
from connects.domain.vocabulary import HoldStatus, OutcomeKind
from connects.services import holds as holds_service
from connects.services.access import authorize
from connects.services.context import Context
from connects.services.views.jobs import proposal_fields, proposal_row

_BIDDING = tuple(s.value for s in HoldStatus.bidding())


def hold_dict(r: Any) -> dict[str, Any]:
    """A hold as the API and the dashboard show it."""
    return {
        "id": r.id,
        "amount": r.amount,
        "captured": r.captured,
        "status": r.status,
        "reason": r.ended_reason or r.reason,
        "held_for": r.reason,
        "proposal_id": r.proposal_id,
        "job_id": r.job_id,
        "deadline": r.deadline,
        "created_at": r.created_at,
        "ended_at": r.ended_at,
    }


def holds_of(
    ctx: Context, who: Actor, account_id: str, *, limit: int = 50, cursor: str | None = None
) -> dict[str, Any]:
    """The account's holds, newest first (R34)."""
    start = number_cursor(cursor, max_digits=9) or 0
    with ctx.db.read() as conn:
        if conn.execute(select(accounts.c.id).where(accounts.c.id == account_id)).first() is None:
            raise NotFound("no such account", account_id=account_id)
        authorize(conn, account_id, who, Action.VIEW, ctx.now())
        rows = conn.execute(
            select(holds)
            .where(holds.c.account_id == account_id)
            .order_by(holds.c.created_at.desc(), holds.c.id.desc())
            .offset(start)
            .limit(limit + 1)
        ).all()
    more = len(rows) > limit
    return {
        "items": [hold_dict(r) for r in rows[:limit]],
        "next_cursor": str(start + limit) if more else None,
    }


# A job's auction holds every account's bids: it runs across shards.
_BIDS = (
    select(holds.c.id, holds.c.amount, holds.c.bid_at)
    .where(holds.c.job_id == bindparam("job_id"), or_(*(holds.c.status == s for s in _BIDDING)))
    .execution_options(all_accounts=True)
)


def bids(conn: Connection, job_id: str) -> list[boosts.Bid]:
    """The job's bidding boosts (held or captured, R35)."""
    return [boosts.Bid(r.id, r.amount, r.bid_at) for r in conn.execute(_BIDS, {"job_id": job_id})]


def new_boost(placed: holds_service.Placed, bid: int) -> dict[str, Any]:
    """A bid just placed, as :func:`boost_of` shows it: its rank is 1 + the bids that
    rank before it, counted by the database as the hold went in
    (:func:`connects.services.holds.place`) rather than read bid by bid."""
    rank = placed.ahead + 1
    return {
        "bid": bid,
        "status": HoldStatus.HELD.value,
        "rank": rank,
        "boosted": rank <= boosts.TOP,
        "captured": 0,
        "hold_id": placed.id,
    }


def auction(ctx: Context, job_id: str) -> dict[str, Any]:
    """A job's auction: the top-4 bids (amounts, not bidders) and when it closes (R35)."""
    now = ctx.now()
    with ctx.db.read() as conn:
        job = conn.execute(select(jobs).where(jobs.c.id == job_id)).one_or_none()
        if job is None:
            raise NotFound("no such job", job_id=job_id)
        ranked = boosts.top(bids(conn, job_id))
    return {
        "job_id": job_id,
        "closes_at": job.auction_closes_at,
        "closed_at": job.auction_closed_at,
        "open": boosts.auction_open(job.auction_closes_at, job.auction_closed_at, now),
        "top": [b.amount for b in ranked],
    }


def boost_of(conn: Connection, proposal_id: str, account_id: str) -> dict[str, Any] | None:
    """A proposal's boost: its bid, the hold's status and its rank in the auction."""
    hold = conn.execute(
        select(holds).where(holds.c.account_id == account_id, holds.c.proposal_id == proposal_id)
    ).one_or_none()
    if hold is None:
        return None
    rank = None
    if hold.status in _BIDDING and hold.job_id is not None:
        rank = boosts.rank_of(bids(conn, hold.job_id), hold.id)
    return {
        "bid": hold.amount,
        "status": hold.status,
        "rank": rank,
        "boosted": rank is not None and rank <= boosts.TOP,
        "captured": hold.captured,
        "hold_id": hold.id,
    }


def proposal_detail(
    conn: Connection, proposal_id: str, account_id: str | None = None
) -> dict[str, Any]:
    """A proposal with its boost and outcomes (R35, R38); callers check access. Without
    ``account_id`` the proposal is found by its id alone (:func:`proposal_row`)."""
    row = proposal_row(conn, proposal_id, account_id)
    found = conn.execute(
        select(proposal_outcomes.c.kind, proposal_outcomes.c.at).where(
            proposal_outcomes.c.account_id == row.account_id,
            proposal_outcomes.c.proposal_id == proposal_id,
        )
    ).all()
    order = list(OutcomeKind)  # at one moment, in the lifecycle's order
    outcomes = sorted(found, key=lambda o: (o.at, order.index(OutcomeKind(o.kind))))
    return {
        **proposal_fields(row),
        "boost": boost_of(conn, proposal_id, row.account_id),
        "outcomes": [{"kind": o.kind, "at": o.at} for o in outcomes],
    }


def account_proposals(ctx: Context, who: Actor, account_id: str, limit: int = 50) -> list[Any]:
    """The account's latest proposals with boost status and rank (the dashboard)."""
    with ctx.db.read() as conn:
        authorize(conn, account_id, who, Action.VIEW, ctx.now())
        ids = conn.execute(
            select(proposals.c.id)
            .where(proposals.c.account_id == account_id)
            .order_by(proposals.c.created_at.desc(), proposals.c.id.desc())
            .limit(limit)
        ).scalars()
        found = []
        for pid in list(ids):
            detail = proposal_detail(conn, pid, account_id)
            title = conn.execute(select(jobs.c.title).where(jobs.c.id == detail["job_id"]))
            found.append({**detail, "job_title": title.scalar_one()})
    return found


def proposal_seen_by(ctx: Context, who: Actor, proposal_id: str) -> dict[str, Any]:
    """A proposal with its boost and outcomes, for its submitter, the members of its
    account and the job's client; ``not_found`` for anyone else (R35, R38)."""
    with ctx.db.read() as conn:
        detail = proposal_detail(conn, proposal_id)
        client = conn.execute(select(jobs.c.client_id).where(jobs.c.id == detail["job_id"]))
        if who.kind == "user" and who.id in (client.scalar_one(), detail["submitted_by"]):
            return detail
        try:
            authorize(conn, detail["account_id"], who, Action.VIEW, ctx.now())
        except ConnectsError:
            raise NotFound("no such proposal", proposal_id=proposal_id) from None
    return detail
