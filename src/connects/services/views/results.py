"""Results for an account over a period (R39): the proposals sent in it, what their
Connects came to (price and boosts apart, net of returns, at cost) and what happened
to them (R38), in total and by member, by boosted or not, or by month.

The period is a cohort: the proposals *sent* in ``[since, until)``, with everything
that happened to them since, whenever it happened (a hire next month counts for the
proposal sent this month). Who sees what (R3): the owner and admins see every
member; a manager or a member sees their own proposals only.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, case, exists, func, literal, select

from connects.db.schema import accounts, allocations, entries, holds, proposal_outcomes, proposals
from connects.domain.calendar import zone
from connects.domain.errors import InvalidRequest, NotFound
from connects.domain.policy import Action, Actor, Role
from connects.domain.results import GroupBy, Sent, results
from connects.domain.vocabulary import EntryKind, OutcomeKind
from connects.services.access import authorize
from connects.services.context import Context

DEFAULT_PERIOD = timedelta(days=30)
NOW_INCLUDED = timedelta(microseconds=1)  # the smallest step of a stored time
SEES_ALL = frozenset({Role.OWNER, Role.ADMIN})
# The client looked at it: any of these means the proposal was viewed.
_SEEN = (OutcomeKind.VIEWED, OutcomeKind.INTERVIEWED, OutcomeKind.DECLINED, OutcomeKind.HIRED)
_USAGE = [k.value for k in EntryKind.usage()]


def period(
    since: datetime | None, until: datetime | None, now: datetime
) -> tuple[datetime, datetime]:
    """``[since, until)`` in UTC: ``until`` defaults to now (then now itself is in: the
    proposal sent this instant counts), ``since`` to 30 days before it; a time without
    a zone is UTC. ``since`` must come before ``until``."""
    try:
        end = _utc(until) if until is not None else now + NOW_INCLUDED
        start = _utc(since) if since is not None else end - DEFAULT_PERIOD
    except OverflowError:  # a time at the very edge of the calendar
        raise InvalidRequest("from and to must be ordinary times", field="from") from None
    if start >= end:
        raise InvalidRequest("from must be before to", field="from")
    return start, end


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def sent_in(
    conn: Connection,
    account_id: str,
    since: datetime,
    until: datetime,
    tz: str,
    member_id: str | None = None,
    months: bool = True,
) -> list[Sent]:
    """One :class:`Sent` per proposal of the account sent in ``[since, until)``
    (``months`` False: their ``month`` left empty, for groupings that need none)."""
    # Every entry of a proposal is written at or after it was sent: ``at >= since``
    # lets the account's entries index bound the scan.
    usage = and_(
        entries.c.account_id == account_id,
        entries.c.at >= since,
        entries.c.kind.in_(_USAGE),
        entries.c.proposal_id.is_not(None),
    )
    money = (
        select(
            entries.c.proposal_id,
            func.sum(case((entries.c.hold_id.is_(None), -entries.c.amount), else_=0)).label(
                "price"
            ),
            func.sum(case((entries.c.hold_id.is_not(None), -entries.c.amount), else_=0)).label(
                "boost"
            ),
        )
        .where(usage)
        .group_by(entries.c.proposal_id)
        .subquery()
    )
    cost = (
        select(
            entries.c.proposal_id,
            func.sum(
                case(
                    (entries.c.amount < 0, allocations.c.cost_cents),
                    else_=-allocations.c.cost_cents,
                )
            ).label("cents"),
        )
        .join(allocations, allocations.c.entry_id == entries.c.id)
        .where(usage)
        .group_by(entries.c.proposal_id)
        .subquery()
    )

    def had(*kinds: OutcomeKind) -> Any:
        return func.max(case((proposal_outcomes.c.kind.in_([k.value for k in kinds]), 1), else_=0))

    outs = (
        select(
            proposal_outcomes.c.proposal_id,
            had(*_SEEN).label("viewed"),
            had(OutcomeKind.INTERVIEWED).label("interviewed"),
            had(OutcomeKind.HIRED).label("hired"),
        )
        .where(proposal_outcomes.c.account_id == account_id, proposal_outcomes.c.at >= since)
        .group_by(proposal_outcomes.c.proposal_id)
        .subquery()
    )
    boosted = exists().where(holds.c.proposal_id == proposals.c.id)
    query = (
        select(
            proposals.c.freelancer_id,
            # the month only when asked: reading a time back costs more than its sums
            proposals.c.created_at if months else literal(None),
            boosted.label("boosted"),
            func.coalesce(money.c.price, 0),
            func.coalesce(money.c.boost, 0),
            func.coalesce(cost.c.cents, 0),
            func.coalesce(outs.c.viewed, 0),
            func.coalesce(outs.c.interviewed, 0),
            func.coalesce(outs.c.hired, 0),
        )
        .outerjoin(money, money.c.proposal_id == proposals.c.id)
        .outerjoin(cost, cost.c.proposal_id == proposals.c.id)
        .outerjoin(outs, outs.c.proposal_id == proposals.c.id)
        .where(
            proposals.c.account_id == account_id,
            proposals.c.created_at >= since,
            proposals.c.created_at < until,
        )
    )
    if member_id is not None:
        query = query.where(proposals.c.freelancer_id == member_id)
    local = zone(tz)
    rows = conn.execute(query).all()
    return [
        Sent(
            member,
            _utc(at).astimezone(local).strftime("%Y-%m") if months else "",
            bool(was_boosted),
            int(price),
            int(boost),
            int(cents),
            bool(viewed),
            bool(interviewed),
            bool(hired),
        )
        for member, at, was_boosted, price, boost, cents, viewed, interviewed, hired in rows
    ]


def account_results(
    ctx: Context,
    who: Actor,
    account_id: str,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    group_by: str | None = None,
) -> dict[str, Any]:
    """``{from, to, totals: R, groups: [{key, ...R}]}`` for the account (R39); a manager
    or a member gets their own proposals only (R3)."""
    now = ctx.now()
    start, end = period(since, until, now)
    by = _group_by(group_by)
    with ctx.db.read() as conn:
        row = conn.execute(
            select(accounts.c.plan, accounts.c.timezone).where(accounts.c.id == account_id)
        ).one_or_none()
        if row is None:
            raise NotFound("no such account", account_id=account_id)
        actor = authorize(conn, account_id, who, Action.VIEW, now)
        own = None if actor.kind != "user" or actor.role in SEES_ALL else actor.id
        sent = sent_in(conn, account_id, start, end, row.timezone, own, months=by is GroupBy.MONTH)
    currency = ctx.catalog.get(row.plan).currency
    return {"from": start, "to": end, **results(sent, by, currency)}


def _group_by(value: str | None) -> GroupBy | None:
    if value is None:
        return None
    try:
        return GroupBy(value)
    except ValueError:
        raise InvalidRequest("group_by is member, boost or month", field="group_by") from None


CSV_FIELDS = (
    "key",
    "proposals",
    "connects_spent",
    "boost_connects_spent",
    "views",
    "interviews",
    "hires",
    "connects_per_interview",
    "connects_per_hire",
    "cost_per_hire",
    "currency",
)


def results_csv(answer: dict[str, Any]) -> str:
    """The groups and then a ``total`` row, one line each; money in cents."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    for r in [*answer["groups"], {"key": "total", **answer["totals"]}]:
        money = r["cost_per_hire"]
        writer.writerow(
            [
                *(r[f] for f in CSV_FIELDS[:7]),
                *("" if r[f] is None else r[f] for f in CSV_FIELDS[7:9]),
                "" if money is None else money["amount"],
                "" if money is None else money["currency"],
            ]
        )
    return out.getvalue()
