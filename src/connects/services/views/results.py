"""Results for an account over a period (R39): the proposals sent in it, what their
Connects came to (price and boosts apart, net of returns, at cost) and what happened
to them (R38), in total and by member, by boosted or not, or by month.

The period is a cohort: the proposals *sent* in ``[since, until)``, with everything
that happened to them since, whenever it happened (a hire next month counts for the
proposal sent this month). Who sees what (R3): the owner and admins see every
member; a manager or a member sees their own proposals only.

The database does the sums: one ``GROUP BY`` statement over a row per proposal (and,
by month, a first one for the months the period's proposals span), whatever the
number of proposals; ``domain/results.py`` turns the groups' sums into R.
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
from connects.domain.results import BOOSTED, NOT_BOOSTED, GroupBy, Sums, results
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


def _per_proposal(account_id: str, since: datetime, until: datetime, member_id: str | None) -> Any:
    """One row per proposal of the account sent in ``[since, until)``: who sent it,
    when, boosted or not, its price and boost net of returns, their cost, and whether
    the client viewed, interviewed, hired (0 or 1)."""
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
        .join(
            allocations,
            (allocations.c.account_id == entries.c.account_id)
            & (allocations.c.entry_id == entries.c.id),
        )
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
    boosted = exists().where(
        holds.c.account_id == proposals.c.account_id, holds.c.proposal_id == proposals.c.id
    )
    query = (
        select(
            proposals.c.freelancer_id.label("member"),
            proposals.c.created_at.label("sent_at"),
            case((boosted, BOOSTED), else_=NOT_BOOSTED).label("boost_key"),
            func.coalesce(money.c.price, 0).label("price"),
            func.coalesce(money.c.boost, 0).label("boost"),
            func.coalesce(cost.c.cents, 0).label("cents"),
            func.coalesce(outs.c.viewed, 0).label("viewed"),
            func.coalesce(outs.c.interviewed, 0).label("interviewed"),
            func.coalesce(outs.c.hired, 0).label("hired"),
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
    return query.subquery("sent")


def month_starts(first: datetime, last: datetime, tz: str) -> list[tuple[str, datetime]]:
    """``(YYYY-MM, its first instant in UTC)`` for each month of the zone ``tz`` from
    the one ``first`` falls in to the one ``last`` falls in (a month starts at local
    midnight on the 1st; where the clocks skip that hour, when they come back)."""
    local = zone(tz)
    at = _utc(first).astimezone(local)
    y, m = at.year, at.month
    end = _utc(last).astimezone(local)
    out: list[tuple[str, datetime]] = []
    while (y, m) <= (end.year, end.month):
        out.append((f"{y:04d}-{m:02d}", datetime(y, m, 1, tzinfo=local).astimezone(UTC)))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def sums(
    conn: Connection,
    account_id: str,
    since: datetime,
    until: datetime,
    tz: str,
    group_by: GroupBy | None,
    member_id: str | None = None,
) -> list[tuple[str, Sums]]:
    """Each group's :class:`Sums` over the account's proposals sent in ``[since,
    until)`` (no ``group_by``: one group keyed ``""``), summed by the database in one
    ``GROUP BY`` statement; by month, in the account's zone ``tz``."""
    sent = _per_proposal(account_id, since, until, member_id)
    key: Any = literal("")
    if group_by is GroupBy.MEMBER:
        key = sent.c.member
    elif group_by is GroupBy.BOOST:
        key = sent.c.boost_key
    elif group_by is GroupBy.MONTH:
        key = _month_key(conn, sent.c.sent_at, account_id, since, until, tz)
        if key is None:  # nothing sent
            return []
    summed = [sent.c[name] for name in _SUMMED]
    keyed = select(key.label("key"), *summed).subquery("keyed")
    query = select(
        keyed.c.key if group_by is not None else literal(""),
        func.count(),
        *(func.sum(keyed.c[name]) for name in _SUMMED),
    )
    if group_by is not None:
        query = query.group_by(keyed.c.key)
    return [(str(k), Sums(*(int(v or 0) for v in row))) for k, *row in conn.execute(query).all()]


# in the order of Sums' fields after ``proposals``
_SUMMED = ("price", "boost", "cents", "viewed", "interviewed", "hired")


def _month_key(
    conn: Connection, sent_at: Any, account_id: str, since: datetime, until: datetime, tz: str
) -> Any:
    """``YYYY-MM`` of ``sent_at`` in the zone ``tz``, as SQL: the last month whose start
    it is at or after, among the months the account's proposals in the period were
    sent in (``None``: there are none)."""
    first, last = conn.execute(
        select(func.min(proposals.c.created_at), func.max(proposals.c.created_at)).where(
            proposals.c.account_id == account_id,
            proposals.c.created_at >= since,
            proposals.c.created_at < until,
        )
    ).one()
    if first is None:
        return None
    months = month_starts(first, last, tz)
    if len(months) == 1:
        return literal(months[0][0])
    later = [(sent_at >= start, name) for name, start in reversed(months[1:])]
    return case(*later, else_=months[0][0])


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
        groups = sums(conn, account_id, start, end, row.timezone, by, own)
    currency = ctx.catalog.get(row.plan).currency
    return {"from": start, "to": end, **results(groups, currency, listed=by is not None)}


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
