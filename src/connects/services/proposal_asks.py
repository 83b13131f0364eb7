"""A proposal ask before anything is written (R4, R5, R13, R14, R35): every refusal
known then, the row it would insert, and who has applied already."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, tuple_

from connects.db import measures
from connects.db.schema import proposals
from connects.domain.calendar import month_key, month_start, zone
from connects.domain.commands import SubmitProposal
from connects.domain.errors import (
    AlreadyApplied,
    JobNotOpen,
    MemberBudgetExceeded,
    NotFound,
    PriceChanged,
)
from connects.domain.ids import new_id
from connects.domain.policy import Role, check_submitter
from connects.domain.vocabulary import JobStatus, ProposalStatus
from connects.services import boosts
from connects.services.book import AccountBook
from connects.services.proposal_figures import SUMMED


def member_spent_this_month(conn: Connection, book: AccountBook, member_id: str) -> int:
    """Connects a member's proposals took this calendar month, net of refunds, captured
    boosts included (R4, R35; the rule is :func:`connects.db.measures.usage`), and the
    bids the member's proposals hold, which may yet be captured."""
    since = month_start(book.now, zone(book.timezone))
    used = measures.used(book.id, since, member_id)
    bids = measures.held_by_member(book.id, member_id)
    return int(conn.execute(select(used + bids)).scalar_one())


def check(
    conn: Connection,
    book: AccountBook,
    plan: Any,
    ask: SubmitProposal,
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
    if job.status != JobStatus.OPEN:
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
    if ask.boost is not None:
        boosts.refuse_closed(job, book.now)
    price = job.connects_required
    if price != ask.expected_connects:
        raise PriceChanged(
            f"the job now costs {price} Connects, not {ask.expected_connects}",
            connects_required=price,
            expected_connects=ask.expected_connects,
        )
    assert assignee is not None
    if assignee.monthly_budget is not None:
        # R4: a bid counts as if captured, so a member cannot pass the budget by boosting
        need = price + (ask.boost or 0)
        member = ask.freelancer_id
        if member not in spent:
            spent[member] = member_spent_this_month(conn, book, member)
        if spent[member] + need > assignee.monthly_budget:
            raise MemberBudgetExceeded(
                f"this proposal would take the member to {spent[member] + need} Connects "
                f"this month; their budget is {assignee.monthly_budget}",
                budget=assignee.monthly_budget,
                spent_this_month=spent[member],
                required=need,
            )
    return job


def already_applied() -> AlreadyApplied:
    return AlreadyApplied("this freelancer already has a proposal on the job")


def applied_before(conn: Connection, pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """The (job, freelancer) pairs that have a proposal already, under any account
    (one proposal a freelancer and job). Asked only when a spend is refused: the
    spends come before the insert that finds duplicates, and a duplicate is answered
    ``already_applied`` first, in the order a lone ask meets them."""
    if not pairs:
        return set()
    key = tuple_(proposals.c.job_id, proposals.c.freelancer_id)
    query = (
        select(proposals.c.job_id, proposals.c.freelancer_id)
        .where(key.in_(pairs))
        .execution_options(all_accounts=True)
    )
    return {(r.job_id, r.freelancer_id) for r in conn.execute(query)}


def proposal_row(ask: SubmitProposal, price: int, now: datetime, tz: str) -> dict[str, Any]:
    return {
        "id": new_id("prop"),
        "account_id": ask.account_id,
        "job_id": ask.job_id,
        "freelancer_id": ask.freelancer_id,
        "submitted_by": ask.who.id,
        "connects_spent": price,
        "status": ProposalStatus.ACTIVE.value,
        "entry_id": new_id("ent") if price else None,
        "created_at": now,
        "updated_at": now,
        "sent_month": month_key(now, zone(tz)),  # R39: its results month; boosted or not
        "boosted": 1 if ask.boost else 0,
        **dict.fromkeys(SUMMED, 0),  # R39: what its spend takes, added when it is made
    }
