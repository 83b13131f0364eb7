"""Reads only the dashboard needs: the balance over time (the run-out forecast is in
:mod:`connects.web.forecast`).

Plain queries, like :mod:`connects.services.views`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from connects.db.schema import accounts, entries
from connects.domain.calendar import zone
from connects.domain.policy import Action, Actor
from connects.services.access import authorize
from connects.services.context import Context
from connects.services.views import available


def balance_series(ctx: Context, who: Actor, account_id: str, days: int = 90) -> dict[str, Any]:
    """The end-of-day balance for the last ``days`` days, with the days that had an
    auto top-up, a manual purchase or an expiry marked (amounts for the tooltips)."""
    now = ctx.now()
    with ctx.db.read() as conn:
        authorize(conn, account_id, who, Action.VIEW, now)
        acct = conn.execute(
            select(accounts.c.timezone, accounts.c.created_at).where(accounts.c.id == account_id)
        ).one()
        tz = zone(acct.timezone)
        today = now.astimezone(tz).date()
        first = max(today - timedelta(days=days - 1), acct.created_at.astimezone(tz).date())
        start = datetime.combine(first, datetime.min.time(), tzinfo=tz)
        opening = conn.execute(
            select(entries.c.balance_after)
            .where(entries.c.account_id == account_id, entries.c.at < start)
            .order_by(entries.c.seq.desc())
            .limit(1)
        ).scalar_one_or_none()
        rows = conn.execute(
            select(
                entries.c.at,
                entries.c.kind,
                entries.c.amount,
                entries.c.balance_after,
                entries.c.topup_id,
            )
            .where(entries.c.account_id == account_id, entries.c.at >= start, entries.c.at <= now)
            .order_by(entries.c.seq)
        ).all()
    n = (today - first).days + 1
    labels = [(first + timedelta(days=i)).isoformat() for i in range(n)]
    end_of_day: list[int | None] = [None] * n
    marks: dict[str, list[int]] = {"auto_topup": [0] * n, "purchase": [0] * n, "expire": [0] * n}
    for r in rows:
        i = (r.at.astimezone(tz).date() - first).days
        if not 0 <= i < n:
            continue
        end_of_day[i] = int(r.balance_after)
        if r.kind == "purchase":
            marks["auto_topup" if r.topup_id else "purchase"][i] += int(r.amount)
        elif r.kind == "expire":
            marks["expire"][i] += -int(r.amount)
    balance: list[int] = []
    last = int(opening or 0)
    for value in end_of_day:
        last = value if value is not None else last
        balance.append(last)
    if balance:
        # Today's point is what can be spent now (expired-but-unswept lots excluded, R12).
        with ctx.db.read() as conn:
            balance[-1] = available(conn, account_id, now)
    return {"labels": labels, "balance": balance, **marks}
