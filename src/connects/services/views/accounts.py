"""Reads of an account as a whole: its row, the Connects overview, every account (the
operator's list) and a person with their accounts.

"Available" is computed, not stored: the stored balance less whatever sits in lots
that have expired but not yet been swept (R12), so an expired Connect is never shown
as spendable.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, case, func, select, true

from connects.db import measures
from connects.db.schema import accounts, auto_topup_settings, entries, memberships, topups, users
from connects.db.types import UTCDateTime
from connects.domain.calendar import month_key, month_start, next_month_start, zone
from connects.domain.errors import NotFound
from connects.domain.policy import Action, Actor
from connects.domain.vocabulary import EntryKind
from connects.services.context import Context
from connects.services.topup_trigger import settings_from
from connects.services.topups import settings_overview
from connects.services.views._reads import (
    ACCOUNT_ID,
    EXPIRING,
    HELD,
    SPENDABLE,
    AccountRead,
    authorized_row,
    params,
)

_AVAILABLE = select(SPENDABLE).where(accounts.c.id == ACCOUNT_ID)


def available(conn: Connection, account_id: str, now: datetime) -> int:
    """Spendable Connects now (R12)."""
    return int(conn.execute(_AVAILABLE, params(account_id, now)).scalar_one())


_HELD = select(HELD).where(accounts.c.id == ACCOUNT_ID)


def held(conn: Connection, account_id: str) -> int:
    """Connects the account's open holds keep (R34)."""
    return int(conn.execute(_HELD, {"account_id": account_id}).scalar_one())


_ACCOUNT = AccountRead([*accounts.c, SPENDABLE])


def account(ctx: Context, who: Actor, account_id: str) -> dict[str, Any]:
    """An account's settings and available Connects, with the caller's role in it."""
    now = ctx.now()
    with ctx.db.read() as conn:
        actor, row = authorized_row(conn, _ACCOUNT, who, Action.VIEW, params(account_id, now))
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
_UNTIL = bindparam("until", type_=UTCDateTime())
_MONTH = bindparam("month", type_=topups.c.month.type)
_PURCHASE = entries.c.kind == EntryKind.PURCHASE.value
# This month's sums: ``since`` and ``month`` are the month in the account's time zone.
_BOUGHT_SUMS = (
    select(
        _entry_sum(and_(_PURCHASE, entries.c.topup_id.is_(None))).label("manual"),
        _entry_sum(and_(_PURCHASE, entries.c.topup_id.is_not(None))).label("auto"),
    )
    .where(entries.c.account_id == ACCOUNT_ID, entries.c.at >= _SINCE)
    .subquery("month_sums")
)
_USED = measures.used(ACCOUNT_ID, _SINCE).label("used")  # R4, R26
_BOUGHT = measures.bought_in_limits(ACCOUNT_ID, _MONTH, _SINCE, _UNTIL).label("bought")  # R48
_THIS_MONTH = select(_BOUGHT_SUMS, _USED, _BOUGHT)
_OVERVIEW = AccountRead(
    [
        accounts.c.id,
        accounts.c.timezone,
        accounts.c.plan,
        accounts.c.next_cycle_at,
        SPENDABLE,
        EXPIRING,
        HELD,
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
    return {
        "since": month_start(now, tz),
        "until": next_month_start(now, tz),
        "month": month_key(now, tz),
    }


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
        bound = {**params(account_id, now), **_month(now, guess)}
        _, row = authorized_row(conn, _OVERVIEW, who, Action.VIEW, bound)
        sums = row
        if row.timezone != guess:
            if len(_ZONES) >= _ZONES_KEPT:
                _ZONES.clear()
            _ZONES[account_id] = row.timezone
            bound.update(_month(now, row.timezone))
            sums = conn.execute(_THIS_MONTH, bound).one()
    manual, auto = int(sums.manual), int(sums.auto)
    stored = (
        {c.name: getattr(row, f"topup_{c.name}") for c in auto_topup_settings.c}
        if row.topup_account_id is not None
        else None
    )
    return {
        "available": int(row.spendable),
        "held": int(row.held),  # R34
        "next_grant": {
            "at": row.next_cycle_at,
            "connects": ctx.catalog.get(row.plan).monthly_connects,
        },
        "used_this_month": int(sums.used),
        "purchased_this_month": manual + auto,
        "purchased_this_month_manual": manual,
        "purchased_this_month_auto": auto,
        "expiring_30d": int(row.expiring),
        "month_starts_at": bound["since"],
        "auto_topup": settings_overview(settings_from(stored), int(sums.bought)),
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
            .execution_options(all_accounts=True)  # every account: across shards
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
