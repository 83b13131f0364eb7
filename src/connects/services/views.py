"""The read side: plain queries for the API, the dashboard and the CLI.

Reads never take locks. "Available" is computed, not stored: the stored balance less
whatever sits in lots that have expired but not yet been swept (R12), so an expired
Connect is never shown as spendable.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, case, func, select, true

from connects.db import measures
from connects.db.schema import (
    accounts,
    auto_topup_settings,
    entries,
    jobs,
    lots,
    memberships,
    proposals,
    topups,
    users,
)
from connects.db.schema import billing_methods as billing_methods_table
from connects.db.types import UTCDateTime
from connects.domain.calendar import EXPIRING_WINDOW, month_key, month_start, zone
from connects.domain.cursors import number_cursor
from connects.domain.errors import InvalidRequest, NotFound
from connects.domain.policy import Action, Actor, require
from connects.services.access import as_member, authorize
from connects.services.context import Context
from connects.services.topup_trigger import settings_from
from connects.services.topups import settings_overview

ENTRY_KINDS = ("grant", "purchase", "spend", "refund", "reward", "expire", "rollover_forfeit")


# The account reads below are built once, with bind parameters, and only executed per
# call: building a statement costs more Python time than PostgreSQL takes to answer it.
_ACCOUNT_ID = bindparam("account_id", type_=accounts.c.id.type)
_NOW = bindparam("now", type_=UTCDateTime())
_HORIZON = bindparam("horizon", type_=UTCDateTime())  # now + the expiring window


# Spendable now (R12) and what expires in (now, now+30d], correlated to the account row.
_SPENDABLE = measures.available(accounts.c.id, accounts.c.balance, _NOW).label("spendable")
_EXPIRING = measures.expiring(accounts.c.id, _NOW, _HORIZON).label("expiring")
_AVAILABLE = select(_SPENDABLE).where(accounts.c.id == _ACCOUNT_ID)


def _params(account_id: str, now: datetime) -> dict[str, Any]:
    return {"account_id": account_id, "now": now, "horizon": now + EXPIRING_WINDOW}


def available(conn: Connection, account_id: str, now: datetime) -> int:
    """Spendable Connects now (R12)."""
    return int(conn.execute(_AVAILABLE, _params(account_id, now)).scalar_one())


class _AccountRead:
    """``columns`` of one account (bind parameter ``account_id``), prebuilt twice: for a
    person, with their role in the account joined in (one round trip); for anyone
    else, as is (their access is resolved first)."""

    def __init__(
        self, columns: list[Any], source: Any = accounts, order_by: tuple[Any, ...] = ()
    ) -> None:
        member = and_(
            memberships.c.account_id == accounts.c.id,
            memberships.c.user_id == bindparam("user_id", type_=memberships.c.user_id.type),
        )
        self.as_person = (
            select(*columns, memberships.c.role)
            .select_from(source.outerjoin(memberships, member))
            .where(accounts.c.id == _ACCOUNT_ID)
            .order_by(*order_by)
        )
        self.as_is = (
            select(*columns)
            .select_from(source)
            .where(accounts.c.id == _ACCOUNT_ID)
            .order_by(*order_by)
        )


def _authorized_row(
    conn: Connection,
    read: _AccountRead,
    who: Actor,
    action: Action,
    params: dict[str, Any],
    *,
    all_rows: bool = False,
) -> tuple[Actor, Any]:
    """The caller resolved on the account and its row (``all_rows``: the read's rows, one
    or more), refused as :func:`authorize` refuses. ``params`` has ``account_id`` and
    ``now``, and whatever else the read binds."""
    account_id = params["account_id"]
    if who.kind != "user":  # a business manager's grants, or the operator
        actor = authorize(conn, account_id, who, action, params["now"])
        rows = conn.execute(read.as_is, params).all()
        if not rows:
            raise NotFound("no such account", account_id=account_id)  # the operator asked
    else:
        assert who.id is not None
        rows = conn.execute(read.as_person, {**params, "user_id": who.id}).all()
        actor = as_member(account_id, who.id, rows[0].role if rows else None)
        require(actor, action)
    return actor, rows if all_rows else rows[0]


_ACCOUNT = _AccountRead([*accounts.c, _SPENDABLE])


def account(ctx: Context, who: Actor, account_id: str) -> dict[str, Any]:
    now = ctx.now()
    with ctx.db.read() as conn:
        actor, row = _authorized_row(conn, _ACCOUNT, who, Action.VIEW, _params(account_id, now))
    return {
        "id": row.id,
        "kind": row.kind,
        "name": row.name,
        "plan": row.plan,
        "balance": int(row.spendable),
        "timezone": row.timezone,
        "low_balance_threshold": row.low_balance_threshold,
        "owner_id": row.owner_id,
        "earnings_cents": row.earnings_cents,
        "currency": ctx.catalog.get(row.plan).currency,
        "next_cycle_at": row.next_cycle_at,
        "created_at": row.created_at,
        "role": actor.role.value if actor.role else None,
    }


def _entry_sum(condition: Any) -> Any:
    return func.coalesce(func.sum(case((condition, entries.c.amount), else_=0)), 0)


_SINCE = bindparam("since", type_=UTCDateTime())
_MONTH = bindparam("month", type_=topups.c.month.type)
# This month's sums: ``since`` and ``month`` are the month in the account's time zone.
_BOUGHT_SUMS = (
    select(
        _entry_sum(and_(entries.c.kind == "purchase", entries.c.topup_id.is_(None))).label(
            "manual"
        ),
        _entry_sum(and_(entries.c.kind == "purchase", entries.c.topup_id.is_not(None))).label(
            "auto"
        ),
    )
    .where(entries.c.account_id == _ACCOUNT_ID, entries.c.at >= _SINCE)
    .subquery("month_sums")
)
_USED = measures.used(_ACCOUNT_ID, _SINCE).label("used")  # R4, R26
_BOUGHT = measures.bought_by_topups(_ACCOUNT_ID, _MONTH).label("bought")
_THIS_MONTH = select(_BOUGHT_SUMS, _USED, _BOUGHT)
_OVERVIEW = _AccountRead(
    [
        accounts.c.id,
        accounts.c.timezone,
        _SPENDABLE,
        _EXPIRING,
        *[c.label(f"topup_{c.name}") for c in auto_topup_settings.c],
        *_BOUGHT_SUMS.c,
        _USED,
        _BOUGHT,
    ],
    source=accounts.outerjoin(
        auto_topup_settings, auto_topup_settings.c.account_id == accounts.c.id
    ).join(_BOUGHT_SUMS, true()),
)
# Account id -> its time zone as last read here: which month to sum in the one query.
_ZONES: dict[str, str] = {}
_ZONES_KEPT = 50_000


def _month(now: datetime, timezone: str) -> dict[str, Any]:
    tz = zone(timezone)
    return {"since": month_start(now, tz), "month": month_key(now, tz)}


def overview(ctx: Context, who: Actor, account_id: str) -> dict[str, Any]:
    """The Connects overview (R26): available, used and bought this month, expiring,
    and the auto top-up settings with what they bought this month.

    One query: the account with the caller's role, its top-up settings, its lot sums
    and this month's sums. "This month" starts in the account's time zone, which the
    query itself reads: it sums from the month start in the zone last read for this
    account here (UTC at first), and only if the account turns out to be in another
    zone is the month summed again, in a second query."""
    now = ctx.now()
    guess = _ZONES.get(account_id, "UTC")
    with ctx.db.read() as conn:
        params = {**_params(account_id, now), **_month(now, guess)}
        _, row = _authorized_row(conn, _OVERVIEW, who, Action.VIEW, params)
        sums = row
        if row.timezone != guess:
            if len(_ZONES) >= _ZONES_KEPT:
                _ZONES.clear()
            _ZONES[account_id] = row.timezone
            params.update(_month(now, row.timezone))
            sums = conn.execute(_THIS_MONTH, params).one()
    manual, auto = int(sums.manual), int(sums.auto)
    stored = (
        {c.name: getattr(row, f"topup_{c.name}") for c in auto_topup_settings.c}
        if row.topup_account_id is not None
        else None
    )
    return {
        "available": int(row.spendable),
        "used_this_month": int(sums.used),
        "purchased_this_month": manual + auto,
        "purchased_this_month_manual": manual,
        "purchased_this_month_auto": auto,
        "expiring_30d": int(row.expiring),
        "month_starts_at": params["since"],
        "auto_topup": settings_overview(settings_from(stored), int(sums.bought)),
    }


def _lots_read(*window: Any) -> _AccountRead:
    """The account's live lots in ``window``, soonest to expire first, one row each
    (one row of nulls if there are none), joined to the account row in one query."""
    live = and_(
        lots.c.account_id == accounts.c.id,
        lots.c.remaining > 0,
        lots.c.expires_at > _NOW,
        *window,
    )
    return _AccountRead(
        [
            accounts.c.id.label("account_id"),
            lots.c.id,
            lots.c.source,
            lots.c.issued_at,
            lots.c.expires_at,
            lots.c.remaining,
        ],
        source=accounts.outerjoin(lots, live),
        order_by=(lots.c.expires_at, lots.c.issued_at, lots.c.id),
    )


_LIVE_LOTS = _lots_read()
_EXPIRING_LOTS = _lots_read(lots.c.expires_at <= _HORIZON)


def expiring(
    ctx: Context, who: Actor, account_id: str, *, all_lots: bool = False
) -> dict[str, Any]:
    """What expires in (now, now+30d] (R12), lot by lot; ``all_lots`` lists every live lot."""
    now = ctx.now()
    params = _params(account_id, now)
    read = _LIVE_LOTS if all_lots else _EXPIRING_LOTS
    with ctx.db.read() as conn:
        _, first = _authorized_row(conn, read, who, Action.VIEW, params, all_rows=True)
    rows = [r for r in first if r.id is not None]
    return {
        "within_30d": sum(r.remaining for r in rows if r.expires_at <= params["horizon"]),
        "lots": [
            {
                "id": r.id,
                "source": r.source,
                "issued_at": r.issued_at,
                "expires_at": r.expires_at,
                "remaining": r.remaining,
            }
            for r in rows
        ],
    }


def history(
    ctx: Context,
    who: Actor,
    account_id: str,
    *,
    limit: int = 50,
    cursor: str | None = None,
    kind: str | None = None,
    member_id: str | None = None,
) -> dict[str, Any]:
    """Ledger entries, newest first, paged by sequence number (R30)."""
    if not 1 <= limit <= 1000:
        raise InvalidRequest("limit must be from 1 to 1000", field="limit")
    if kind is not None and kind not in ENTRY_KINDS:
        raise InvalidRequest(f"kind must be one of {', '.join(ENTRY_KINDS)}", field="kind")
    before = number_cursor(cursor)  # the sequence number of the last entry shown
    now = ctx.now()
    with ctx.db.read() as conn:
        authorize(conn, account_id, who, Action.VIEW, now)
        if conn.execute(select(accounts.c.id).where(accounts.c.id == account_id)).first() is None:
            raise NotFound("no such account", account_id=account_id)  # the operator asked (R32)
        query = select(entries).where(entries.c.account_id == account_id)
        if before is not None:
            query = query.where(entries.c.seq < before)
        if kind is not None:
            query = query.where(entries.c.kind == kind)
        if member_id is not None:
            query = query.where(entries.c.member_id == member_id)
        rows = conn.execute(query.order_by(entries.c.seq.desc()).limit(limit + 1)).all()
    items = [entry_dict(r) for r in rows[:limit]]
    next_cursor = str(rows[limit - 1].seq) if len(rows) > limit else None
    return {"items": items, "next_cursor": next_cursor}


def entry_dict(r: Any) -> dict[str, Any]:
    actor = r.actor_kind if r.actor_id is None else f"{r.actor_kind}:{r.actor_id}"
    return {
        "id": r.id,
        "seq": r.seq,
        "at": r.at,
        "kind": r.kind,
        "amount": r.amount,
        "balance_after": r.balance_after,
        "actor": actor,
        "member_id": r.member_id,
        "proposal_id": r.proposal_id,
        "purchase_id": r.purchase_id,
        "topup_id": r.topup_id,
        "note": r.note,
    }


def all_accounts(ctx: Context) -> list[dict[str, Any]]:
    """Every account with its owner and available Connects (operator and CLI use)."""
    now = ctx.now()
    members = (
        select(memberships.c.account_id, func.count().label("n"))
        .group_by(memberships.c.account_id)
        .subquery()
    )
    with ctx.db.read() as conn:
        rows = conn.execute(
            select(
                accounts.c.id,
                accounts.c.kind,
                accounts.c.name,
                accounts.c.plan,
                measures.available(accounts.c.id, accounts.c.balance, now).label("available"),
                users.c.name.label("owner"),
                func.coalesce(members.c.n, 0).label("members"),
            )
            .join(users, users.c.id == accounts.c.owner_id)
            .outerjoin(members, members.c.account_id == accounts.c.id)
            .order_by(accounts.c.created_at, accounts.c.id)
        ).all()
    return [
        {
            "id": r.id,
            "kind": r.kind,
            "name": r.name,
            "plan": r.plan,
            "owner": r.owner,
            "available": int(r.available),
            "members": r.members,
        }
        for r in rows
    ]


CSV_FIELDS = (
    "id",
    "at",
    "kind",
    "amount",
    "balance_after",
    "actor",
    "member_id",
    "proposal_id",
    "purchase_id",
    "topup_id",
    "note",
)


def entries_csv(items: list[dict[str, Any]]) -> str:
    """Ledger entries as CSV (the CLI's ``history --csv`` and the API's ``?format=csv``)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for e in items:
        writer.writerow({**e, "at": e["at"].isoformat()})
    return out.getvalue()


def me(ctx: Context, user_id: str) -> dict[str, Any]:
    """A person with the accounts they own and every membership they hold."""
    with ctx.db.read() as conn:
        user = conn.execute(select(users).where(users.c.id == user_id)).one_or_none()
        if user is None:
            raise NotFound("no such person", user_id=user_id)
        rows = conn.execute(
            select(
                accounts.c.id,
                accounts.c.kind,
                accounts.c.name,
                accounts.c.plan,
                accounts.c.owner_id,
                memberships.c.role,
                memberships.c.monthly_budget,
            )
            .join(memberships, memberships.c.account_id == accounts.c.id)
            .where(memberships.c.user_id == user_id)
            .order_by(accounts.c.created_at, accounts.c.id)
        ).all()
    member_of = [
        {
            "account_id": r.id,
            "kind": r.kind,
            "name": r.name,
            "plan": r.plan,
            "role": r.role,
            "monthly_budget": r.monthly_budget,
        }
        for r in rows
    ]
    return {
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "created_at": user.created_at,
        "accounts": [
            {"id": r.id, "kind": r.kind, "name": r.name, "plan": r.plan}
            for r in rows
            if r.owner_id == user_id
        ],
        "memberships": member_of,
    }


def members(ctx: Context, who: Actor, account_id: str) -> list[dict[str, Any]]:
    """An account's members with role, monthly budget and Connects spent this month (R4)."""
    now = ctx.now()
    with ctx.db.read() as conn:
        authorize(conn, account_id, who, Action.VIEW, now)
        tz_name = conn.execute(
            select(accounts.c.timezone).where(accounts.c.id == account_id)
        ).scalar_one()
        since = month_start(now, zone(tz_name))
        spent = measures.used_by_member(account_id, since)  # R4: as enforced
        rows = conn.execute(
            select(
                memberships.c.user_id,
                memberships.c.role,
                memberships.c.monthly_budget,
                memberships.c.created_at,
                users.c.name,
                users.c.email,
                func.coalesce(spent.c.used, 0).label("used"),
            )
            .join(users, users.c.id == memberships.c.user_id)
            .outerjoin(spent, spent.c.member_id == memberships.c.user_id)
            .where(memberships.c.account_id == account_id)
            .order_by(memberships.c.created_at, memberships.c.user_id)
        ).all()
    return [
        {
            "user_id": r.user_id,
            "name": r.name,
            "email": r.email,
            "role": r.role,
            "monthly_budget": r.monthly_budget,
            "spent_this_month": int(r.used),
            "joined_at": r.created_at,
        }
        for r in rows
    ]


def member(ctx: Context, who: Actor, account_id: str, user_id: str) -> dict[str, Any]:
    """One member of an account, as :func:`members` shows it."""
    for m in members(ctx, who, account_id):
        if m["user_id"] == user_id:
            return m
    raise NotFound("no such member", user_id=user_id)


def billing_methods(ctx: Context, who: Actor, account_id: str) -> list[dict[str, Any]]:
    """An account's cards: brand, last four digits and which is the default, nothing more.

    Owner and admins only, like adding one; a business manager never reads them (R6).
    """
    now = ctx.now()
    with ctx.db.read() as conn:
        authorize(conn, account_id, who, Action.MANAGE, now)
        rows = conn.execute(
            select(
                billing_methods_table.c.id,
                billing_methods_table.c.brand,
                billing_methods_table.c.last4,
                billing_methods_table.c.is_default,
                billing_methods_table.c.created_at,
            )
            .where(billing_methods_table.c.account_id == account_id)
            .order_by(billing_methods_table.c.created_at, billing_methods_table.c.id)
        ).all()
    return [
        {
            "id": r.id,
            "brand": r.brand,
            "last4": r.last4,
            "default": bool(r.is_default),
            "created_at": r.created_at,
        }
        for r in rows
    ]


def job(ctx: Context, job_id: str) -> dict[str, Any]:
    """A job as anyone on the marketplace sees it: title, live price, status."""
    with ctx.db.read() as conn:
        row = conn.execute(select(jobs).where(jobs.c.id == job_id)).one_or_none()
    if row is None:
        raise NotFound("no such job", job_id=job_id)
    return {
        "id": row.id,
        "client_id": row.client_id,
        "title": row.title,
        "connects_required": row.connects_required,
        "status": row.status,
        "hired_proposal_id": row.hired_proposal_id,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def proposal(ctx: Context, proposal_id: str) -> dict[str, Any]:
    """A proposal's current state (callers check who may see it)."""
    with ctx.db.read() as conn:
        row = conn.execute(select(proposals).where(proposals.c.id == proposal_id)).one_or_none()
    if row is None:
        raise NotFound("no such proposal", proposal_id=proposal_id)
    return {
        "id": row.id,
        "status": row.status,
        "connects_spent": row.connects_spent,
        "account_id": row.account_id,
        "job_id": row.job_id,
        "freelancer_id": row.freelancer_id,
        "submitted_by": row.submitted_by,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }
