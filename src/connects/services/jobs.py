"""A job's life: posting, price changes, interviews, and its one ending with the
refunds it brings (R13, R15, R16).

Lock order, everywhere: the job row first, then accounts in id order. Whatever moves
a proposal on (a submission, a withdrawal, an interview) takes the job with
``FOR SHARE`` (many at once); ending the job takes it with ``FOR UPDATE``. So each is
either done before the job ends (and the ending sees it: a withdrawn proposal is not
refunded) or sees the job ended and is refused.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from connects.db.schema import holds, jobs, proposals
from connects.domain import boosts as boost_rules
from connects.domain import vocabulary as v
from connects.domain.commands import ChangeJobPrice, EndJob, PostJob, StartInterview
from connects.domain.errors import (
    Forbidden,
    InvalidRequest,
    JobNotOpen,
    NotFound,
    ProposalNotActive,
)
from connects.domain.ids import new_id
from connects.domain.policy import Actor
from connects.domain.vocabulary import (
    EntryKind,
    EventType,
    JobStatus,
    LotSource,
    OutcomeKind,
    ProposalStatus,
)
from connects.services import boosts
from connects.services.uow import Transaction, UnitOfWork
from connects.services.views.jobs import proposal_row

MAX_PRICE = 1000
LIVE = tuple(s.value for s in ProposalStatus if s.live)


def check_price(value: Any, field: str = "connects_required") -> int:
    """A job's price in whole Connects, 0 to :data:`MAX_PRICE` (R13)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PRICE:
        raise InvalidRequest(f"{field} must be a whole number from 0 to {MAX_PRICE}", field=field)
    return value


_JOB = select(jobs).where(jobs.c.id == bindparam("job_id"))
JOB_BY_LOCK = {
    None: _JOB,
    "share": _JOB.with_for_update(read=True),
    "update": _JOB.with_for_update(),
}


def load_job(conn: Connection, job_id: str, *, lock: str | None = None) -> Any:
    """The job row (``not_found`` if none), locked ``share`` or for ``update``."""
    row = conn.execute(JOB_BY_LOCK[lock], {"job_id": job_id}).one_or_none()
    if row is None:
        raise NotFound("no such job", job_id=job_id)
    return row


load_proposal = proposal_row  # the proposal row, by its id (and account)


def set_proposal(tx: Transaction, prop: Any, to: ProposalStatus) -> None:
    """Move a proposal along its lifecycle (``proposal_not_active`` if it may not).

    The update names the status it moves from, so a move decided on a row read before
    another transaction changed it changes nothing and is refused."""
    v.move_proposal(prop.status, to)
    moved = tx.conn.execute(
        update(proposals)
        .where(
            proposals.c.account_id == prop.account_id,
            proposals.c.id == prop.id,
            proposals.c.status == prop.status,
        )
        .values(status=to.value, updated_at=tx.now)
    ).rowcount
    if moved != 1:
        now = tx.conn.execute(
            select(proposals.c.status).where(
                proposals.c.account_id == prop.account_id, proposals.c.id == prop.id
            )
        )
        status = now.scalar_one()
        raise ProposalNotActive(f"the proposal is {status}", status=status)


def post_job(cmd: PostJob, uow: UnitOfWork) -> str:
    """A client posts a job at a Connects price."""
    title = (cmd.title or "").strip()
    if not title or len(title) > 300:
        raise InvalidRequest("title must be 1 to 300 characters", field="title")
    price = check_price(cmd.connects_required)
    job_id = new_id("job")
    with uow.begin() as tx:
        tx.conn.execute(
            insert(jobs),
            {
                "id": job_id,
                "client_id": cmd.client_id,
                "title": title,
                "connects_required": price,
                "status": JobStatus.OPEN.value,
                "hired_proposal_id": None,
                "created_at": tx.now,
                "updated_at": tx.now,
                "auction_closes_at": boost_rules.auction_closes_at(tx.now, uow.ctx.auction_days),
            },
        )
    return job_id


def change_price(cmd: ChangeJobPrice, uow: UnitOfWork) -> None:
    """The client changes the live price of an open job (R13)."""
    price = check_price(cmd.connects_required)
    with uow.begin() as tx:
        job = load_job(tx.conn, cmd.job_id, lock="update")
        if job.client_id != cmd.client_id:
            raise Forbidden("only the job's client changes its price")
        if job.status != JobStatus.OPEN:
            raise JobNotOpen(f"the job is {job.status}", status=job.status)
        tx.conn.execute(
            update(jobs)
            .where(jobs.c.id == cmd.job_id)
            .values(connects_required=price, updated_at=tx.now)
        )


def start_interview(cmd: StartInterview, uow: UnitOfWork) -> int:
    """The client starts an interview: the plan's reward goes to the account (R16).

    Returns the Connects rewarded. A second interview on the same proposal earns nothing.
    A boost in the top 4 of an open auction is captured (R35): the job is locked for
    update, so no bid moves meanwhile.
    """
    with uow.begin() as tx:
        prop = load_proposal(tx.conn, cmd.proposal_id)
        job = load_job(tx.conn, prop.job_id, lock="update")
        if job.client_id != cmd.client_id:
            raise NotFound("no such proposal", proposal_id=cmd.proposal_id)
        book = tx.book(prop.account_id)
        prop = load_proposal(tx.conn, prop.id, prop.account_id)  # as it is under the lock
        if prop.status == ProposalStatus.INTERVIEWING:
            return 0
        set_proposal(tx, prop, ProposalStatus.INTERVIEWING)
        boosts.record(tx, prop, OutcomeKind.INTERVIEWED, cmd.client_id)
        boosts.on_interaction(tx, job, prop, OutcomeKind.INTERVIEWED, Actor("user", cmd.client_id))
        reward = uow.ctx.catalog.get(book.plan_id).interview_reward
        if reward > 0:
            book.sweep_expired()
            book.credit(
                kind=EntryKind.REWARD,
                source=LotSource.REWARD,
                amount=reward,
                actor=Actor("user", cmd.client_id),
                member_id=prop.freelancer_id,
                proposal_id=cmd.proposal_id,
                dedupe_key=f"reward:{cmd.proposal_id}",
                note="interview started",
            )
        return reward


def _live(tx: Transaction, job: Any) -> list[Any]:
    return list(
        tx.conn.execute(
            select(proposals)
            .where(proposals.c.job_id == job.id, proposals.c.status.in_(LIVE))
            .order_by(proposals.c.account_id, proposals.c.id)
            .execution_options(all_accounts=True)  # a job's proposals: every account's
        )
    )


def _lock_accounts(tx: Transaction, job: Any, props: list[Any]) -> None:
    """Every account the ending touches, in id order, after the job (no deadlock)."""
    bidders = tx.conn.execute(
        select(holds.c.account_id)
        .where(holds.c.job_id == job.id)
        .execution_options(all_accounts=True)  # a job's bidders: every account's
    )
    for account_id in sorted({p.account_id for p in props} | set(bidders.scalars())):
        tx.book(account_id)


def _refund_all(tx: Transaction, job: Any, props: list[Any], reason: str, actor: Actor) -> int:
    """Give every live proposal on the job its Connects back, into its own lots (R15)."""
    refunded = 0
    for prop in props:
        book = tx.book(prop.account_id)  # accounts in id order, after the job
        if prop.entry_id is not None:
            book.give_back(
                prop.entry_id,
                kind=EntryKind.REFUND,
                actor=actor,
                member_id=prop.freelancer_id,
                proposal_id=prop.id,
                dedupe_key=f"refund:{prop.id}",
                note=reason,
            )
            book.emit(
                EventType.CONNECTS_REFUNDED,
                {
                    "proposal_id": prop.id,
                    "job_id": job.id,
                    "job_title": job.title,
                    "amount": prop.connects_spent,
                    "reason": reason,
                },
                dedupe_key=f"refund:{prop.id}",
            )
            refunded += prop.connects_spent
        set_proposal(tx, prop, ProposalStatus.REFUNDED)
        boosts.record(tx, prop, OutcomeKind.RETURNED, actor.id)
    return refunded


_OUTCOMES = {
    "cancelled": JobStatus.CANCELLED,
    "closed": JobStatus.CLOSED,
    "removed": JobStatus.REMOVED,
    "expired": JobStatus.EXPIRED,
}


def end_job(cmd: EndJob, uow: UnitOfWork) -> dict[str, Any]:
    """End a job: ``cancelled``, ``closed`` (hired or not), ``removed`` or ``expired``.

    Cancel, close without hire and removal refund every live proposal (R15); a hire
    or an expiry refunds nothing. The client ends their own job; the operator (or the
    system) removes and expires. Boosts (R35, R36): a hire closes the auction; the
    refunding endings give captured bids back with the price and release held ones;
    an expiry releases held ones.
    """
    ending = _OUTCOMES.get(cmd.outcome)
    if ending is None:
        raise InvalidRequest("unknown job outcome", field="outcome")
    with uow.begin() as tx:
        job = load_job(tx.conn, cmd.job_id, lock="update")
        if cmd.actor.kind == "user" and job.client_id != cmd.actor.id:
            raise Forbidden("only the job's client ends it")
        if ending is JobStatus.CLOSED and cmd.hired_proposal_id:
            ending = JobStatus.FILLED
        status = v.end_job(job.status, ending)
        if status is JobStatus.FILLED:
            prop = tx.conn.execute(
                select(proposals)
                .where(proposals.c.id == cmd.hired_proposal_id, proposals.c.job_id == cmd.job_id)
                .execution_options(all_accounts=True)  # the job's client names any bidder's
            ).one_or_none()
            if prop is None:
                raise NotFound("no such proposal on this job", proposal_id=cmd.hired_proposal_id)
            set_proposal(tx, prop, ProposalStatus.HIRED)
            boosts.record(tx, prop, OutcomeKind.HIRED, cmd.actor.id)
        tx.conn.execute(
            update(jobs)
            .where(jobs.c.id == cmd.job_id)
            .values(status=status.value, hired_proposal_id=cmd.hired_proposal_id, updated_at=tx.now)
        )
        props = _live(tx, job)
        _lock_accounts(tx, job, props if status.refunds else [])
        refunded = 0
        if status.refunds:
            refunded = _refund_all(tx, job, props, v.JOB_ENDINGS[status], cmd.actor)
        live = {p.id for p in props}
        refunded += boosts.settle_ending(tx, job, status, live, cmd.actor)
        if status.refunds:  # refunded into a lot since expired (R12)
            for account_id in dict.fromkeys(p.account_id for p in props):
                tx.book(account_id).sweep_expired()
    return {"id": cmd.job_id, "status": status.value, "refunded_connects": refunded}
