"""Fan-out: each new outbox event becomes one delivery per channel that wants it (R29).

:func:`fan_out` turns each event not yet fanned out into one ``deliveries`` row per
live channel of its account that wants it (the account's toggles, R27, and the
channel's own filter), and stamps the event in the same transaction. The unique
``(event_id, channel_id)`` makes a second fan-out of the same event a no-op; on
PostgreSQL concurrent workers take disjoint events (``FOR UPDATE SKIP LOCKED``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from connects.db.schema import channels, deliveries, events, notification_settings
from connects.domain.ids import new_id
from connects.domain.vocabulary import DeliveryStatus, EventType, NotificationSwitch
from connects.services.context import Context


def wants(kind: str, payload: Mapping[str, Any], switches: Mapping[str, bool]) -> bool:
    """Whether the account's settings let an event of ``kind`` out (all on by default);
    a kind that is not an :class:`EventType` (a channel test) is always let out."""
    try:
        switch: NotificationSwitch | None = EventType(kind).switch
    except ValueError:
        switch = None
    if switch is not None and not switches.get(switch, True):
        return False
    # A purchase made by auto top-up is a top-up too: the Auto Top-Up toggle covers it.
    return not (
        kind == EventType.CONNECTS_PURCHASED
        and payload.get("auto")
        and not switches.get(NotificationSwitch.TOPUPS, True)
    )


def _insert_ignore_many(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    maker = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(maker(table).on_conflict_do_nothing(), rows)


def fan_out(ctx: Context, batch: int = 500) -> int:
    """Turn new events into deliveries; returns how many deliveries were created."""
    created = 0
    while True:
        now = ctx.now()
        with ctx.db.begin() as conn:
            query = (
                select(events.c.id, events.c.account_id, events.c.kind, events.c.payload)
                .where(events.c.fanned_out_at.is_(None))
                .order_by(events.c.created_at)
                .limit(batch)
                .execution_options(all_accounts=True)  # a sweep across shards
            )
            if conn.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = conn.execute(query).all()
            if not rows:
                return created
            created += _fan_out_rows(conn, rows, now)
        if len(rows) < batch:
            return created


def _fan_out_rows(conn: Connection, rows: Sequence[Any], now: datetime) -> int:
    account_ids = sorted({r.account_id for r in rows})
    by_account: dict[str, list[Any]] = {}
    for ch in conn.execute(
        select(channels.c.id, channels.c.account_id, channels.c.events).where(
            channels.c.account_id.in_(account_ids), channels.c.deleted_at.is_(None)
        )
    ):
        by_account.setdefault(ch.account_id, []).append(ch)
    switches = {
        s.account_id: {name.value: bool(getattr(s, name)) for name in NotificationSwitch}
        for s in conn.execute(
            select(notification_settings).where(notification_settings.c.account_id.in_(account_ids))
        )
    }
    out: list[dict[str, Any]] = []
    for ev in rows:
        chans = by_account.get(ev.account_id)
        if not chans:
            continue
        payload = json.loads(ev.payload)
        if not wants(ev.kind, payload, switches.get(ev.account_id, {})):
            continue
        for ch in chans:
            if ch.events and ev.kind not in ch.events.split():
                continue
            out.append(
                {
                    "id": new_id("dlv"),
                    "account_id": ev.account_id,
                    "event_id": ev.id,
                    "channel_id": ch.id,
                    "event_kind": ev.kind,
                    "status": DeliveryStatus.PENDING.value,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
            )
    _insert_ignore_many(conn, deliveries, out)
    conn.execute(
        update(events)
        .where(events.c.id.in_([r.id for r in rows]))
        .values(fanned_out_at=now)
        .execution_options(all_accounts=True)  # the batch spans shards
    )
    return len(out)
