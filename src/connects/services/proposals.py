"""Jobs, proposals, refunds and interview rewards (R5, R13-R16).

Lock order, everywhere: the job row first, then accounts in id order. A proposal
takes the job with ``FOR SHARE`` (many proposals at once), a cancel or close takes it
with ``FOR UPDATE``; so a proposal is either in before the job closes (and is refunded
with the rest) or sees the job closed and is refused.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from connects.db.schema import allocations, entries, jobs, memberships, proposals
from connects.domain.calendar import month_start, zone
from connects.domain.errors import (
    AlreadyApplied,
    Forbidden,
    InsufficientConnects,
    InvalidRequest,
    JobNotOpen,
    MemberBudgetExceeded,
    NotFound,
    PriceChanged,
    ProposalNotActive,
)
from connects.domain.ids import new_id
from connects.domain.policy import Action, Actor, Role, check_submitter
from connects.services import topup_runner
from connects.services.access import authorize
from connects.services.book import AccountBook
from connects.services.context import Context

MAX_PRICE = 1000
ACTIVE = ("active", "interviewing")
# Job endings that give every active proposal its Connects back (R15).
REFUNDING = {
    "cancelled": "the client cancelled the job",
    "closed": "the client closed the job without hiring",
    "removed": "the job was removed for breaking the rules",
}


def _price(value: Any, field: str = "connects_required") -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PRICE:
        raise InvalidRequest(f"{field} must be a whole number from 0 to {MAX_PRICE}", field=field)
    return value


_JOB = select(jobs).where(jobs.c.id == bindparam("job_id"))
_JOB_BY_LOCK = {
    None: _JOB,
    "share": _JOB.with_for_update(read=True),
    "update": _JOB.with_for_update(),
}
_PEOPLE = select(memberships.c.user_id, memberships.c.role, memberships.c.monthly_budget).where(
    memberships.c.account_id == bindparam("account_id"),
    memberships.c.user_id.in_(bindparam("users", expanding=True)),
)
_INSERT_PROPOSAL = insert(proposals)


def _job(conn: Connection, job_id: str, *, lock: str | None = None) -> Any:
    row = conn.execute(_JOB_BY_LOCK[lock], {"job_id": job_id}).one_or_none()
    if row is None:
        raise NotFound("no such job", job_id=job_id)
    return row


def create_job(ctx: Context, client_id: str, title: str, connects_required: int) -> str:
    """A client posts a job at a Connects price."""
    title = (title or "").strip()
    if not title or len(title) > 300:
        raise InvalidRequest("title must be 1 to 300 characters", field="title")
    price = _price(connects_required)
    now = ctx.now()
    job_id = new_id("job")
    with ctx.db.begin() as conn:
        conn.execute(
            insert(jobs),
            {
                "id": job_id,
                "client_id": client_id,
                "title": title,
                "connects_required": price,
                "status": "open",
                "hired_proposal_id": None,
                "created_at": now,
                "updated_at": now,
            },
        )
    return job_id


def change_price(ctx: Context, client_id: str, job_id: str, connects_required: int) -> None:
    """The client changes the live price of an open job (R13)."""
    price = _price(connects_required)
    with ctx.db.begin() as conn:
        job = _job(conn, job_id, lock="update")
        if job.client_id != client_id:
            raise Forbidden("only the job's client changes its price")
        if job.status != "open":
            raise JobNotOpen(f"the job is {job.status}", status=job.status)
        conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id)
            .values(connects_required=price, updated_at=ctx.now())
        )


def member_spent_this_month(conn: Connection, book: AccountBook, member_id: str) -> int:
    """Connects a member's proposals took this calendar month, net of refunds (R4).

    Only this month's proposals count: refunding a proposal from an earlier month gives
    the Connects back to the pool but does not widen this month's budget.
    """
    since = month_start(book.now, zone(book.timezone))
    this_month = select(proposals.c.id).where(
        proposals.c.account_id == book.id,
        proposals.c.freelancer_id == member_id,
        proposals.c.created_at >= since,
    )
    net = conn.execute(
        select(func.coalesce(func.sum(entries.c.amount), 0)).where(
            entries.c.account_id == book.id,
            entries.c.member_id == member_id,
            entries.c.kind.in_(("spend", "refund")),
            entries.c.at >= since,
            entries.c.proposal_id.in_(this_month),
        )
    ).scalar_one()
    return -int(net)


def submit_proposal(
    ctx: Context,
    who: Actor,
    *,
    job_id: str,
    account_id: str,
    freelancer_id: str,
    expected_connects: int,
) -> dict[str, Any]:
    """Submit a proposal, paying the job's price from the account's pool (R5, R13, R14).

    Refusals, each changing nothing: ``price_changed`` (with the live price),
    ``insufficient_connects``, ``member_budget_exceeded``, ``already_applied``,
    ``job_not_open``, ``not_a_member``, ``cannot_submit_on_behalf``. Short of
    Connects with just-in-time auto top-up on, the top-up runs first and the proposal
    is tried once more (R22).
    """

    def attempt() -> dict[str, Any]:
        return _submit(
            ctx,
            who,
            job_id=job_id,
            account_id=account_id,
            freelancer_id=freelancer_id,
            expected_connects=expected_connects,
        )

    try:
        return attempt()
    except InsufficientConnects as exc:
        need = int(exc.details.get("required", 0))
        covered = topup_runner.just_in_time(
            ctx, account_id, need=need, attempt=f"{job_id}:{freelancer_id}"
        )
        if covered is None:
            raise
    return attempt()


def _submit(
    ctx: Context,
    who: Actor,
    *,
    job_id: str,
    account_id: str,
    freelancer_id: str,
    expected_connects: int,
) -> dict[str, Any]:
    expected = _price(expected_connects, "expected_connects")
    if who.kind != "user" or who.id is None:
        raise Forbidden("proposals are submitted by people")
    now = ctx.now()
    try:
        with ctx.db.begin() as conn:
            job = _job(conn, job_id, lock="share")
            if job.status != "open":
                raise JobNotOpen(f"the job is {job.status}", status=job.status)
            book = AccountBook.lock(conn, account_id, now)
            rows = conn.execute(
                _PEOPLE, {"account_id": account_id, "users": [who.id, freelancer_id]}
            ).all()
            by_user = {r.user_id: r for r in rows}
            submitter = by_user.get(who.id)
            if submitter is None:
                raise NotFound("no such account", account_id=account_id)
            assignee = by_user.get(freelancer_id)
            plan = ctx.catalog.get(book.plan_id)
            check_submitter(
                account_kind=book.kind,
                submitter_id=who.id,
                submitter_role=Role(submitter.role),
                freelancer_id=freelancer_id,
                freelancer_role=Role(assignee.role) if assignee else None,
                submit_on_behalf=plan.submit_on_behalf,
            )
            price = job.connects_required
            if price != expected:
                raise PriceChanged(
                    f"the job now costs {price} Connects, not {expected}",
                    connects_required=price,
                    expected_connects=expected,
                )
            assert assignee is not None
            if assignee.monthly_budget is not None:
                spent = member_spent_this_month(conn, book, freelancer_id)
                if spent + price > assignee.monthly_budget:
                    raise MemberBudgetExceeded(
                        f"this proposal would take the member to {spent + price} Connects this "
                        f"month; their budget is {assignee.monthly_budget}",
                        budget=assignee.monthly_budget,
                        spent_this_month=spent,
                        required=price,
                    )
            proposal_id = new_id("prop")
            entry_id = new_id("ent") if price else None
            # The proposal row goes first: a second proposal by the same freelancer on
            # the job hits the unique key here (already_applied), before any spending.
            conn.execute(
                _INSERT_PROPOSAL,
                {
                    "id": proposal_id,
                    "account_id": account_id,
                    "job_id": job_id,
                    "freelancer_id": freelancer_id,
                    "submitted_by": who.id,
                    "connects_spent": price,
                    "status": "active",
                    "entry_id": entry_id,
                    "created_at": now,
                    "updated_at": now,
                },
            )
            book.sweep_expired()
            if price:
                book.spend(
                    price,
                    kind="spend",
                    actor=Actor("user", who.id),
                    member_id=freelancer_id,
                    proposal_id=proposal_id,
                    note=job.title[:120],
                    entry_id=entry_id,
                )
            book.save()
    except IntegrityError as exc:
        if "proposals" in str(exc.orig) or "job_id" in str(exc.orig):
            raise AlreadyApplied("this freelancer already has a proposal on the job") from None
        raise
    topup_runner.execute_after_commit(ctx, book.decided_topups)  # R20: the pool hit the threshold
    return {
        "id": proposal_id,
        "status": "active",
        "connects_spent": price,
        "account_id": account_id,
        "job_id": job_id,
        "freelancer_id": freelancer_id,
        "submitted_by": who.id,
        "created_at": now,
        "updated_at": now,
        "balance": book.balance,
    }


def _proposal(conn: Connection, proposal_id: str) -> Any:
    row = conn.execute(select(proposals).where(proposals.c.id == proposal_id)).one_or_none()
    if row is None:
        raise NotFound("no such proposal", proposal_id=proposal_id)
    return row


def withdraw(ctx: Context, who: Actor, proposal_id: str) -> None:
    """The submitter (or the owner/an admin) withdraws a proposal: no refund (R15)."""
    now = ctx.now()
    with ctx.db.begin() as conn:
        prop = _proposal(conn, proposal_id)
        AccountBook.lock(conn, prop.account_id, now)
        actor = authorize(conn, prop.account_id, who, Action.VIEW, now)
        prop = _proposal(conn, proposal_id)
        if actor.id not in (prop.submitted_by, prop.freelancer_id) and actor.role not in (
            Role.OWNER,
            Role.ADMIN,
        ):
            raise Forbidden("only the submitter, the freelancer, the owner or an admin withdraws")
        if prop.status not in ACTIVE:
            raise ProposalNotActive(f"the proposal is {prop.status}", status=prop.status)
        conn.execute(
            update(proposals)
            .where(proposals.c.id == proposal_id)
            .values(status="withdrawn", updated_at=now)
        )


def interview(ctx: Context, client_id: str, proposal_id: str) -> int:
    """The client starts an interview: the plan's reward goes to the account (R16).

    Returns the Connects rewarded. A second interview on the same proposal earns nothing.
    """
    now = ctx.now()
    with ctx.db.begin() as conn:
        prop = _proposal(conn, proposal_id)
        job = _job(conn, prop.job_id, lock="share")
        if job.client_id != client_id:
            raise NotFound("no such proposal", proposal_id=proposal_id)
        book = AccountBook.lock(conn, prop.account_id, now)
        prop = _proposal(conn, proposal_id)
        if prop.status not in ACTIVE:
            raise ProposalNotActive(f"the proposal is {prop.status}", status=prop.status)
        if prop.status == "interviewing":
            return 0
        conn.execute(
            update(proposals)
            .where(proposals.c.id == proposal_id)
            .values(status="interviewing", updated_at=now)
        )
        reward = ctx.catalog.get(book.plan_id).interview_reward
        if reward > 0:
            book.sweep_expired()
            book.credit(
                kind="reward",
                source="reward",
                amount=reward,
                actor=Actor("user", client_id),
                member_id=prop.freelancer_id,
                proposal_id=proposal_id,
                dedupe_key=f"reward:{proposal_id}",
                note="interview started",
            )
            book.save()
        return reward


def _refund_all(ctx: Context, conn: Connection, job: Any, reason: str, actor: Actor) -> int:
    """Give every active proposal on the job its Connects back, into its own lots."""
    now = ctx.now()
    props = conn.execute(
        select(proposals)
        .where(proposals.c.job_id == job.id, proposals.c.status.in_(ACTIVE))
        .order_by(proposals.c.account_id, proposals.c.id)
    ).all()
    books: dict[str, AccountBook] = {}
    refunded = 0
    for prop in props:
        book = books.get(prop.account_id)
        if book is None:
            book = books[prop.account_id] = AccountBook.lock(conn, prop.account_id, now)
        if prop.entry_id is not None:
            takes = [
                (r.lot_id, r.amount)
                for r in conn.execute(
                    select(allocations.c.lot_id, allocations.c.amount)
                    .where(allocations.c.entry_id == prop.entry_id)
                    .order_by(allocations.c.lot_id)
                )
            ]
            book.restore(
                kind="refund",
                takes=takes,
                actor=actor,
                member_id=prop.freelancer_id,
                proposal_id=prop.id,
                dedupe_key=f"refund:{prop.id}",
                note=reason,
            )
            book.emit(
                "connects_refunded",
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
        conn.execute(
            update(proposals)
            .where(proposals.c.id == prop.id)
            .values(status="refunded", updated_at=now)
        )
    for book in books.values():
        book.sweep_expired()  # refunded into a lot that has since expired (R15, R12)
        book.save()
    return refunded


def end_job(
    ctx: Context,
    actor: Actor,
    job_id: str,
    outcome: str,
    hired_proposal_id: str | None = None,
) -> dict[str, Any]:
    """End a job: ``cancelled``, ``closed`` (hired or not), ``removed`` or ``expired``.

    Cancel, close without hire and removal refund every active proposal (R15); a hire
    or an expiry refunds nothing. The client ends their own job; the operator (or the
    system) removes and expires.
    """
    if outcome not in ("cancelled", "closed", "removed", "expired"):
        raise InvalidRequest("unknown job outcome", field="outcome")
    now = ctx.now()
    with ctx.db.begin() as conn:
        job = _job(conn, job_id, lock="update")
        if actor.kind == "user" and job.client_id != actor.id:
            raise Forbidden("only the job's client ends it")
        if job.status != "open":
            raise JobNotOpen(f"the job is already {job.status}", status=job.status)
        status = outcome
        if outcome == "closed" and hired_proposal_id:
            prop = conn.execute(
                select(proposals).where(
                    proposals.c.id == hired_proposal_id, proposals.c.job_id == job_id
                )
            ).one_or_none()
            if prop is None:
                raise NotFound("no such proposal on this job", proposal_id=hired_proposal_id)
            if prop.status not in ACTIVE:
                raise ProposalNotActive(f"the proposal is {prop.status}", status=prop.status)
            conn.execute(
                update(proposals)
                .where(proposals.c.id == hired_proposal_id)
                .values(status="hired", updated_at=now)
            )
            status = "filled"
        conn.execute(
            update(jobs)
            .where(jobs.c.id == job_id)
            .values(status=status, hired_proposal_id=hired_proposal_id, updated_at=now)
        )
        refunded = 0
        if status in REFUNDING:
            refunded = _refund_all(ctx, conn, job, REFUNDING[status], actor)
    return {"id": job_id, "status": status, "refunded_connects": refunded}
