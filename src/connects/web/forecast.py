"""The Connects page's run-out forecast: when the pool runs out if the last 30 days' net
spending goes on, counting what will come in meanwhile: each cycle's grant (R8) and
what auto top-up may still buy within its limits (R19-R21) while it can buy (R40).

The arithmetic is a pure function (:func:`forecast`) so it can be tested without a
database; :func:`burn_forecast` gathers an account's facts for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import select

from connects.db import measures
from connects.db.schema import accounts
from connects.domain.calendar import cycle_after, next_month_start, zone
from connects.domain.policy import Action, Actor
from connects.domain.vocabulary import BlockedReason
from connects.services import topup_status
from connects.services.access import authorize
from connects.services.context import Context
from connects.services.topup_trigger import bought_this_month, load_settings
from connects.services.views import available

BURN_WINDOW_DAYS = 30
HORIZON_DAYS = 366  # beyond a year the pool "does not run out at this rate"


@dataclass(frozen=True, slots=True)
class TopUpPlan:
    """What auto top-up will buy: at ``threshold`` or below, ``per_topup`` (or up to
    ``target``), at most ``left`` more this month and ``per_month`` from each new month."""

    threshold: int
    per_topup: int
    per_month: int
    left: int
    month_starts: tuple[date, ...]  # the first days of the coming months
    target: int | None = None


@dataclass(frozen=True, slots=True)
class Inflows:
    grants: tuple[tuple[date, int], ...] = ()  # (cycle day, Connects) to come
    topup: TopUpPlan | None = None


@dataclass(frozen=True, slots=True)
class Forecast:
    """When the pool runs out if the last 30 days' net spending goes on."""

    available: int
    per_day: float  # average daily net spend (spends less refunds)
    runs_out_on: date | None  # None: "not at this rate" (not within a year)
    days_left: int | None
    counted: tuple[str, ...] = field(default=())  # "grants", "auto top-up"


def forecast(
    available_now: int,
    net_spent: int,
    today: date,
    days: int = BURN_WINDOW_DAYS,
    inflows: Inflows | None = None,
) -> Forecast:
    """The run-out day at ``net_spent / days`` Connects a day, with ``inflows``.

    Day by day: a cycle's grant and a new month's auto top-up limit arrive at the start
    of their day, the day's spending goes, and auto top-up buys when the balance is at
    or below its threshold. The pool runs out on the first day whose spending it cannot
    cover. No net spending means it does not run out; an empty pool has run out today.
    """
    per_day = max(net_spent, 0) / days
    inflows = inflows or Inflows()
    counted = tuple(
        name for name, on in (("grants", inflows.grants), ("auto top-up", inflows.topup)) if on
    )
    if available_now <= 0 and inflows.topup is None:
        return Forecast(available_now, per_day, today, 0, counted)
    if per_day <= 0:
        return Forecast(available_now, 0.0, None, None, counted)
    grants: dict[date, int] = {}
    for at, connects in inflows.grants:
        grants[at] = grants.get(at, 0) + connects
    plan = inflows.topup
    left = plan.left if plan else 0
    balance = float(available_now) + grants.get(today, 0)  # a cycle due later today
    for d in range(HORIZON_DAYS):
        day = today + timedelta(days=d + 1)
        balance += grants.get(day, 0)
        if plan and day in plan.month_starts:
            left = plan.per_month
        if plan and balance <= plan.threshold and left > 0:
            want = plan.per_topup if plan.target is None else plan.target - int(balance)
            bought = max(min(want, left), 0)
            balance, left = balance + bought, left - bought
        balance -= per_day
        if balance < 0:
            return Forecast(available_now, per_day, today + timedelta(days=d), d, counted)
    return Forecast(available_now, per_day, None, None, counted)


def burn_forecast(ctx: Context, who: Actor, account_id: str) -> Forecast:
    """:func:`forecast` for an account, from its ledger, plan and auto top-up."""
    now = ctx.now()
    with ctx.db.read() as conn:
        authorize(conn, account_id, who, Action.VIEW, now)
        acct = conn.execute(
            select(
                accounts.c.timezone,
                accounts.c.plan,
                accounts.c.anchor_day,
                accounts.c.next_cycle_at,
            ).where(accounts.c.id == account_id)
        ).one()
        net = conn.execute(
            select(measures.burn(account_id, now - timedelta(days=BURN_WINDOW_DAYS)))
        ).scalar_one()
        pool = available(conn, account_id, now)
        tz = zone(acct.timezone)
        horizon = now + timedelta(days=HORIZON_DAYS)
        grant = ctx.catalog.get(acct.plan).monthly_connects
        grants: list[tuple[date, int]] = []
        at = acct.next_cycle_at
        while grant > 0 and at <= horizon:
            grants.append((at.astimezone(tz).date(), grant))
            at = cycle_after(acct.anchor_day, at, tz)
        settings = load_settings(conn, account_id)
        status = topup_status.status_of(conn, account_id, now)
        plan = None
        # It buys while it can, or again from next month once this month's limit is used.
        waits_for_month = status.reason is BlockedReason.MONTHLY_LIMIT_REACHED
        if settings.enabled and (status.active or waits_for_month):
            _, bought = bought_this_month(conn, account_id, now, acct.timezone)
            starts, start = [], now
            while (start := next_month_start(start, tz)) <= horizon:
                starts.append(start.astimezone(tz).date())
            plan = TopUpPlan(
                threshold=settings.threshold,
                per_topup=settings.per_topup,
                per_month=settings.per_month,
                left=max(settings.per_month - bought, 0),
                month_starts=tuple(starts),
                target=settings.target if settings.mode == "target" else None,
            )
    today = now.astimezone(tz).date()
    return forecast(pool, int(net), today, inflows=Inflows(tuple(grants), plan))
