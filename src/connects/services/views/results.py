"""Results for an account over a period (R39): the proposals sent in it, what their
Connects came to (price and boosts apart, net of returns, at cost) and what happened
to them (R38), in total and by member, by boosted or not, or by month.

The period is a cohort: the proposals *sent* in ``[since, until)``, with everything
that happened to them since, whenever it happened (a hire next month counts for the
proposal sent this month). Who sees what (R3): the owner and admins see every
member; a manager or a member sees their own proposals only.

Each proposal's row keeps its figures (``services.proposal_figures``, checked by
``connects verify``), so the database does the sums in one ``GROUP BY`` over one index
of one table (and, by month, a first query for the months the period's proposals
span), whatever the number of proposals; ``domain/results.py`` turns the groups' sums
into R.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import Connection, case, func, literal, select, union_all

from connects.db.schema import accounts, proposals, results_months
from connects.domain.calendar import month_starts
from connects.domain.errors import InvalidRequest, NotFound
from connects.domain.policy import Action, Actor, Role
from connects.domain.results import BOOSTED, NOT_BOOSTED, GroupBy, Sums, results
from connects.services.access import authorize
from connects.services.context import Context
from connects.services.proposal_figures import MARKS

DEFAULT_PERIOD = timedelta(days=30)
NOW_INCLUDED = timedelta(microseconds=1)  # the smallest step of a stored time
SEES_ALL = frozenset({Role.OWNER, Role.ADMIN})


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


def _sent(account_id: str, since: datetime, until: datetime, member_id: str | None) -> list[Any]:
    """The account's proposals sent in ``[since, until)`` (a member's own only)."""
    p = proposals.c
    where = [p.account_id == account_id, p.created_at >= since, p.created_at < until]
    return where if member_id is None else [*where, p.freelancer_id == member_id]


# Each proposal's kept figures (services.proposal_figures), summed in the order of
# Sums' fields: the count, price and boost net of returns, their cost, the outcomes.
_SUMS = (
    func.count(),
    *(
        func.sum(proposals.c[name])
        for name in ("price_net", "boost_net", "cost_net_cents", "viewed", "interviewed", "hired")
    ),
)


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
    until)`` (no ``group_by``: one group keyed ``""``; groups with no proposal left
    out); by month, in the account's zone ``tz``. The whole months of the zone inside
    the period come from results_months, the part-months at its ends from the
    proposals' own rows."""
    starts = month_starts(since, until, tz)
    whole = [
        (name, start, after)
        for (name, start), (_, after) in pairwise(starts)
        if start >= since and after <= until
    ]
    if not whole:
        return _scan(conn, account_id, since, until, tz, group_by, member_id)
    total: dict[str, Sums] = {}
    parts = [_months(conn, account_id, [name for name, *_ in whole], group_by, member_id)]
    if since < whole[0][1]:
        parts.append(_scan(conn, account_id, since, whole[0][1], tz, group_by, member_id))
    if whole[-1][2] < until:
        parts.append(_scan(conn, account_id, whole[-1][2], until, tz, group_by, member_id))
    for part in parts:
        for key, summed in part:
            total[key] = total.get(key, Sums()) + summed
    return list(total.items())


def _months(
    conn: Connection,
    account_id: str,
    months: list[str],
    group_by: GroupBy | None,
    member_id: str | None,
) -> list[tuple[str, Sums]]:
    """Each group's sums over whole months, from results_months."""
    m = results_months.c
    key = _key(group_by, m.member_id, m.boosted, m.month)
    names = ("proposals", "price_net", "boost_net", "cost_net_cents", *MARKS)
    query = select(key.label("key"), *(func.sum(m[n]) for n in names)).where(
        m.account_id == account_id, m.month.in_(months)
    )
    if member_id is not None:
        query = query.where(m.member_id == member_id)
    return _groups(conn, query, key, group_by)


def _key(group_by: GroupBy | None, member: Any, boosted: Any, month: Any) -> Any:
    """The group's key from these columns: ``""`` when not grouped."""
    if group_by is GroupBy.MEMBER:
        return member
    if group_by is GroupBy.BOOST:
        return case((boosted == 1, BOOSTED), else_=NOT_BOOSTED)
    if group_by is GroupBy.MONTH:
        return month
    return literal("")


def _groups(
    conn: Connection, query: Any, key: Any, group_by: GroupBy | None
) -> list[tuple[str, Sums]]:
    """Run ``SELECT key, count, sums...`` grouped by ``key``; groups with none left out."""
    if group_by is not None:
        query = query.group_by(key)
    rows = conn.execute(query).all()
    return [(str(k), Sums(*(int(v or 0) for v in row))) for k, *row in rows if row[0]]


def _scan(
    conn: Connection,
    account_id: str,
    since: datetime,
    until: datetime,
    tz: str,
    group_by: GroupBy | None,
    member_id: str | None = None,
) -> list[tuple[str, Sums]]:
    """Each group's sums over the proposals sent in ``[since, until)``, from their own
    rows: one statement."""
    if group_by is GroupBy.MONTH:
        query = _by_month(conn, account_id, since, until, tz, member_id)
        if query is None:  # nothing sent
            return []
        return _groups(conn, query, None, None)  # each month its own part
    p = proposals.c
    key = _key(group_by, p.freelancer_id, p.boosted, None)
    query = select(key.label("key"), *_SUMS).where(*_sent(account_id, since, until, member_id))
    return _groups(conn, query, key, group_by)


def _by_month(
    conn: Connection,
    account_id: str,
    since: datetime,
    until: datetime,
    tz: str,
    member_id: str | None,
) -> Any:
    """One statement summing each month of the zone ``tz`` that the period's proposals
    span, each over its own range of the account's index (``UNION ALL``; ``None``:
    nothing was sent in the period)."""
    first, last = conn.execute(
        select(func.min(proposals.c.created_at), func.max(proposals.c.created_at)).where(
            *_sent(account_id, since, until, member_id)
        )
    ).one()
    if first is None:
        return None
    months = month_starts(first, last, tz)
    ends = [start for _, start in months[1:]] + [until]
    parts = [
        select(literal(name).label("key"), *_SUMS).where(
            *_sent(account_id, max(start, since), min(end, until), member_id)
        )
        for (name, start), end in zip(months, ends, strict=True)
    ]
    return parts[0] if len(parts) == 1 else union_all(*parts)


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
