"""Jobs, proposals, refunds and interview rewards (R5, R13-R16).

Lock order, everywhere: the job row first, then accounts in id order. A proposal
takes the job with ``FOR SHARE`` (many proposals at once), a cancel or close takes it
with ``FOR UPDATE``; so a proposal is either in before the job closes (and is refunded
with the rest) or sees the job closed and is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from connects.db import measures
from connects.db.schema import allocations, jobs, memberships, proposals
from connects.domain.calendar import month_start, zone
from connects.domain.errors import (
    AlreadyApplied,
    ConnectsError,
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
    """Connects a member's proposals took this calendar month, net of refunds (R4;
    the rule is :func:`connects.db.measures.usage`)."""
    since = month_start(book.now, zone(book.timezone))
    return int(conn.execute(select(measures.used(book.id, since, member_id))).scalar_one())


@dataclass(frozen=True, slots=True)
class Ask:
    """One proposal submission, as asked."""

    who: Actor
    job_id: str
    account_id: str
    freelancer_id: str
    expected_connects: int


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

    Submissions to one account that arrive together are committed together (group
    commit, :mod:`connects.services.batching`); each gets the answer it would have
    had alone, in the order they arrived.
    """
    ask = Ask(who, job_id, account_id, freelancer_id, expected_connects)
    try:
        return _submit_one(ctx, ask)
    except InsufficientConnects as exc:
        need = int(exc.details.get("required", 0))
        covered = topup_runner.just_in_time(
            ctx, account_id, need=need, attempt=f"{job_id}:{freelancer_id}"
        )
        if covered is None:
            raise
    return _submit_one(ctx, ask)


def _submit_one(ctx: Context, ask: Ask) -> dict[str, Any]:
    if not ctx.group_commit:
        outcomes, followup = submit_many(ctx, ask.account_id, [ask])
        if followup is not None:
            followup()
        if isinstance(outcomes[0], BaseException):
            raise outcomes[0]
        return dict(outcomes[0])
    result = ctx.batches.submit(
        ask.account_id, ask, lambda account_id, asks: submit_many(ctx, str(account_id), asks)
    )
    return dict(result)


class _Late(Exception):
    """Roll the pass back: asks refused once their proposal rows were written (to run
    again without), or every ask refused (``answers``: nothing to write)."""

    def __init__(
        self,
        refused: dict[int, ConnectsError],
        answers: dict[int, dict[str, Any] | ConnectsError] | None = None,
    ) -> None:
        super().__init__(f"{len(refused)} asks refused late")
        self.refused = refused
        self.answers = answers or {}


def submit_many(
    ctx: Context, account_id: str, asks: list[Ask]
) -> tuple[list[dict[str, Any] | ConnectsError], Callable[[], None] | None]:
    """Submit ``asks`` (all to ``account_id``) in one transaction.

    Each ask gets the answer it would have had if the asks had run one by one in this
    order: a result, or the refusal (an exception instance) to raise in its caller.
    Refusals that are only known once the proposal rows are written (a proposal that
    is already there, the pool running dry) roll the transaction back, and the batch
    runs again without those asks. A batch where every ask is refused writes nothing.
    Also answers the work to do after the commit: the auto top-ups it decided.
    """
    outcomes: list[dict[str, Any] | ConnectsError | None] = [None] * len(asks)
    for i, ask in enumerate(asks):  # refusals that need no database
        try:
            _price(ask.expected_connects, "expected_connects")
            if ask.who.kind != "user" or ask.who.id is None:
                raise Forbidden("proposals are submitted by people")
        except ConnectsError as refusal:
            outcomes[i] = refusal
    while True:
        live = [i for i, o in enumerate(outcomes) if o is None]
        if not live:
            return [o for o in outcomes if o is not None], None
        try:
            done, decided = _pass(ctx, account_id, [(i, asks[i]) for i in live])
        except _Late as late:
            for i, answer in {**late.answers, **late.refused}.items():
                outcomes[i] = answer
            continue
        for i, outcome in done.items():
            outcomes[i] = outcome
        return [o for o in outcomes if o is not None], _after_commit(ctx, decided)


def _after_commit(ctx: Context, decided: list[str]) -> Callable[[], None] | None:
    """Running the auto top-ups the batch decided (R20: the pool hit the threshold)."""
    if not decided:
        return None
    return lambda: topup_runner.execute_after_commit(ctx, decided)


_JOBS_FOR_SHARE = (
    select(jobs)
    .where(jobs.c.id.in_(bindparam("job_ids", expanding=True)))
    .order_by(jobs.c.id)
    .with_for_update(read=True)
)
_INSERT_PROPOSALS = {
    "postgresql": pg_insert(proposals).on_conflict_do_nothing().returning(proposals.c.id),
    "sqlite": sqlite_insert(proposals).on_conflict_do_nothing().returning(proposals.c.id),
}


def _pass(
    ctx: Context, account_id: str, asks: list[tuple[int, Ask]]
) -> tuple[dict[int, dict[str, Any] | ConnectsError], list[str]]:
    """One try at the batch: its answers by position and the top-ups it decided."""
    now = ctx.now()
    answers: dict[int, dict[str, Any] | ConnectsError] = {}
    with ctx.db.begin() as conn:
        # Lock order, as everywhere: jobs (in id order) before the account.
        job_ids = sorted({a.job_id for _, a in asks})
        if len(job_ids) == 1:
            found = conn.execute(_JOB_BY_LOCK["share"], {"job_id": job_ids[0]})
        else:
            found = conn.execute(_JOBS_FOR_SHARE, {"job_ids": job_ids})
        by_job = {r.id: r for r in found}
        try:
            book = AccountBook.lock(conn, account_id, now, buffered=True)
        except NotFound as refusal:
            return dict.fromkeys((i for i, _ in asks), refusal), []
        users = sorted({u for _, a in asks for u in (str(a.who.id), a.freelancer_id)})
        people = {
            r.user_id: r for r in conn.execute(_PEOPLE, {"account_id": account_id, "users": users})
        }
        plan = ctx.catalog.get(book.plan_id)
        spent: dict[str, int] = {}  # this month's spend of members with a budget
        rows: list[dict[str, Any]] = []
        accepted: list[tuple[int, Ask, Any, dict[str, Any]]] = []
        repeats: list[int] = []  # asks for a job and freelancer an earlier ask here has
        seen: set[tuple[str, str]] = set()
        for i, ask in asks:
            try:
                job = _check(conn, book, plan, ask, by_job, people, spent)
            except ConnectsError as refusal:
                answers[i] = refusal
                continue
            if (ask.job_id, ask.freelancer_id) in seen:
                # Already applied if the first one goes through; if it is refused, this
                # pass rolls back and the next one judges this ask afresh.
                repeats.append(i)
                continue
            seen.add((ask.job_id, ask.freelancer_id))
            if ask.freelancer_id in spent:
                spent[ask.freelancer_id] += job.connects_required
            row = _proposal_row(ask, job.connects_required, now)
            rows.append(row)
            accepted.append((i, ask, job, row))
        if not accepted:
            raise _Late({}, answers)  # every ask refused: roll back, nothing is written
        insert = _INSERT_PROPOSALS[conn.dialect.name]
        inserted = set(conn.execute(insert, rows[0] if len(rows) == 1 else rows).scalars())
        late: dict[int, ConnectsError] = {
            i: _already_applied() for i, _, _, row in accepted if row["id"] not in inserted
        }
        if late:
            raise _Late(late)
        book.sweep_expired()
        for i, ask, job, row in accepted:
            price = row["connects_spent"]
            if price:
                try:
                    book.spend(
                        price,
                        kind="spend",
                        actor=Actor("user", ask.who.id),
                        member_id=ask.freelancer_id,
                        proposal_id=row["id"],
                        note=job.title[:120],
                        entry_id=row["entry_id"],
                    )
                except InsufficientConnects as refusal:
                    late[i] = refusal
                    continue
            answers[i] = {**row, "balance": book.balance}
        if late:
            raise _Late(late)
        for i in repeats:
            answers[i] = _already_applied()
        book.save()
    return answers, book.decided_topups


def _check(
    conn: Connection,
    book: AccountBook,
    plan: Any,
    ask: Ask,
    by_job: dict[str, Any],
    people: dict[str, Any],
    spent: dict[str, int],
) -> Any:
    """Every refusal known before anything is written, in the order a lone ask meets them.

    ``spent`` holds this month's spend of members with a budget, loaded on first sight
    and raised by the caller as asks are accepted.
    """
    job = by_job.get(ask.job_id)
    if job is None:
        raise NotFound("no such job", job_id=ask.job_id)
    if job.status != "open":
        raise JobNotOpen(f"the job is {job.status}", status=job.status)
    assert ask.who.id is not None
    submitter = people.get(ask.who.id)
    if submitter is None:
        raise NotFound("no such account", account_id=ask.account_id)
    assignee = people.get(ask.freelancer_id)
    check_submitter(
        account_kind=book.kind,
        submitter_id=ask.who.id,
        submitter_role=Role(submitter.role),
        freelancer_id=ask.freelancer_id,
        freelancer_role=Role(assignee.role) if assignee else None,
        submit_on_behalf=plan.submit_on_behalf,
    )
    price = job.connects_required
    if price != ask.expected_connects:
        raise PriceChanged(
            f"the job now costs {price} Connects, not {ask.expected_connects}",
            connects_required=price,
            expected_connects=ask.expected_connects,
        )
    assert assignee is not None
    if assignee.monthly_budget is not None:
        member = ask.freelancer_id
        if member not in spent:
            spent[member] = member_spent_this_month(conn, book, member)
        if spent[member] + price > assignee.monthly_budget:
            raise MemberBudgetExceeded(
                f"this proposal would take the member to {spent[member] + price} Connects "
                f"this month; their budget is {assignee.monthly_budget}",
                budget=assignee.monthly_budget,
                spent_this_month=spent[member],
                required=price,
            )
    return job


def _already_applied() -> AlreadyApplied:
    return AlreadyApplied("this freelancer already has a proposal on the job")


def _proposal_row(ask: Ask, price: int, now: datetime) -> dict[str, Any]:
    return {
        "id": new_id("prop"),
        "account_id": ask.account_id,
        "job_id": ask.job_id,
        "freelancer_id": ask.freelancer_id,
        "submitted_by": ask.who.id,
        "connects_spent": price,
        "status": "active",
        "entry_id": new_id("ent") if price else None,
        "created_at": now,
        "updated_at": now,
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
