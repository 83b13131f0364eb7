"""The expiring digest (R27): one ``connects_expiring`` event per account and period.

The worker calls :func:`emit_expiring_digests` on its schedule; the event's
``dedupe_key`` (the account's local day or ISO week) keeps it to one per period
however often it runs. The events then fan out like any other (:mod:`.fanout`).
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from connects.db.measures import lots_expiring
from connects.db.schema import accounts, channels, events, lots, notification_settings
from connects.domain.calendar import EXPIRING_WINDOW, zone
from connects.domain.ids import new_id
from connects.domain.vocabulary import EventType
from connects.services.context import Context


def _period_key(now: datetime, tz_name: str, every: str) -> str:
    try:
        local = now.astimezone(zone(tz_name))
    except Exception:
        local = now
    if every == "day":
        return f"expiring:{local.date().isoformat()}"
    year, week, _ = local.isocalendar()
    return f"expiring:{year}-W{week:02d}"


def emit_expiring_digests(ctx: Context) -> int:
    """A ``connects_expiring`` event for each account with Connects expiring within 30
    days, at most once per account per day or week (its ``expiring_every``), and only
    for accounts that have a channel and have not switched the digest off."""
    now = ctx.now()
    horizon = now + EXPIRING_WINDOW
    with_channel = select(channels.c.account_id).where(channels.c.deleted_at.is_(None))
    soon = (
        select(
            lots.c.account_id,
            func.sum(lots.c.remaining).label("within"),
            func.min(lots.c.expires_at).label("first"),
            func.count().label("n"),
        )
        # Grouped over every account: the account expression is the lot's own column.
        .where(
            *lots_expiring(lots.c.account_id, now, horizon),
            lots.c.account_id.in_(with_channel),
        )
        .group_by(lots.c.account_id)
        .subquery()
    )
    emitted = 0
    with ctx.db.begin() as conn:
        rows = conn.execute(
            select(
                soon.c.account_id,
                soon.c.within,
                soon.c.first,
                soon.c.n,
                accounts.c.timezone,
                accounts.c.balance,
                notification_settings.c.expiring,
                notification_settings.c.expiring_every,
            )
            .join(accounts, accounts.c.id == soon.c.account_id)
            .outerjoin(
                notification_settings, notification_settings.c.account_id == soon.c.account_id
            )
        ).all()
        for r in rows:
            if r.expiring is False:
                continue
            key = _period_key(now, r.timezone, r.expiring_every or "week")
            payload = {
                "account_id": r.account_id,
                "balance": int(r.balance),
                "within_30d": int(r.within),
                "lots": int(r.n),
                "first_expires_at": r.first.isoformat() if r.first else None,
            }
            maker = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
            result = conn.execute(
                maker(events)
                .values(
                    id=new_id("evt"),
                    account_id=r.account_id,
                    kind=EventType.CONNECTS_EXPIRING.value,
                    payload=json.dumps(payload, sort_keys=True),
                    created_at=now,
                    dedupe_key=key,
                )
                .on_conflict_do_nothing()
                .returning(events.c.id)
            )
            emitted += int(result.first() is not None)
    return emitted
