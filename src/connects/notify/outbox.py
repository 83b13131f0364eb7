"""The outbox, drained: events become deliveries, deliveries are claimed and sent (R29).

1. :func:`fan_out` turns each event not yet fanned out into one ``deliveries`` row per
   live channel of its account that wants it (the toggles of seed 000 and the
   channel's own filter), and stamps the event in the same transaction. The unique
   ``(event_id, channel_id)`` makes a second fan-out of the same event a no-op.
2. :func:`claim` takes due deliveries under a lease: ``FOR UPDATE SKIP LOCKED`` on
   PostgreSQL, so concurrent workers take disjoint rows; SQLite's ``BEGIN IMMEDIATE``
   serialises the select-and-update. A worker that dies leaves ``sending`` rows whose
   lease runs out; the next claim takes them again and records the lost attempt.
3. :func:`deliver` sends each claimed row through the :class:`Notifier` outside any
   transaction and records the attempt: ``sent``, or back to ``pending`` with an
   exponential backoff, or ``dead`` after ``max_attempts``. Nothing is ever dropped.

Delivery is therefore at least once: a worker that sent and died before recording
causes a repeat, with the same event id for the receiver to dedupe on.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import socket
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from connects.db.schema import (
    accounts,
    channels,
    deliveries,
    delivery_attempts,
    events,
    lots,
    notification_settings,
)
from connects.domain.calendar import EXPIRING_WINDOW, zone
from connects.domain.ids import new_id
from connects.notify import crypto
from connects.notify.channels import Channel, DeliveryFailed, Event, Notifier
from connects.services.context import Context

log = logging.getLogger("connects.notify")

# Which switch of ``notification_settings`` governs each event kind (R27, seed 000:
# "Low Connects Balance" and "Auto Top-Up"); kinds not named are always sent.
TOGGLES: dict[str, str] = {
    "balance_low": "low_balance",
    "balance_empty": "low_balance",
    "topup_succeeded": "topups",
    "topup_failed": "topups",
    "monthly_limit_reached": "monthly_limit",
    "connects_refunded": "refunds",
    "connects_purchased": "purchases",
    "connects_expiring": "expiring",
}
SWITCHES = ("low_balance", "topups", "monthly_limit", "refunds", "purchases", "expiring")


@dataclass(frozen=True)
class DeliveryPolicy:
    """Leases and retries. Backoff doubles from ``base_delay`` up to ``max_delay``."""

    lease: timedelta = timedelta(seconds=60)
    base_delay: timedelta = timedelta(seconds=10)
    max_delay: timedelta = timedelta(hours=1)
    max_attempts: int = 8
    batch: int = 20

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed attempt."""
        delay: timedelta = self.base_delay * (2 ** max(0, attempts - 1))
        return min(self.max_delay, delay)


def worker_name() -> str:
    """Who claims: host, process and a random part (a restarted process is a new worker)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


def wants(kind: str, payload: Mapping[str, Any], switches: Mapping[str, bool]) -> bool:
    """Whether the account's settings let an event of ``kind`` out (all on by default)."""
    switch = TOGGLES.get(kind)
    if switch is not None and not switches.get(switch, True):
        return False
    # A purchase made by auto top-up is a top-up too: the Auto Top-Up toggle covers it.
    return not (
        kind == "connects_purchased" and payload.get("auto") and not switches.get("topups", True)
    )


def _insert_ignore_many(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    maker = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    conn.execute(maker(table).on_conflict_do_nothing(), rows)


# -- 1. fan-out ---------------------------------------------------------------------


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
        s.account_id: {name: bool(getattr(s, name)) for name in SWITCHES}
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
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
            )
    _insert_ignore_many(conn, deliveries, out)
    conn.execute(
        update(events).where(events.c.id.in_([r.id for r in rows])).values(fanned_out_at=now)
    )
    return len(out)


# -- 2. claims ------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """A delivery this worker holds until ``until``; ``token`` proves it is still ours."""

    delivery_id: str
    token: str
    until: datetime
    attempts: int
    channel: Channel | None  # None: the channel was removed or its secret is unreadable
    event: Event
    problem: str | None = None


def claim(
    ctx: Context, worker: str, policy: DeliveryPolicy, limit: int | None = None
) -> list[Claim]:
    """Take up to ``limit`` due deliveries (pending and due, or with a lapsed lease)."""
    now = ctx.now()
    until = now + policy.lease
    token = f"{worker}/{secrets.token_hex(4)}"[:80]
    due = or_(
        and_(deliveries.c.status == "pending", deliveries.c.next_attempt_at <= now),
        and_(deliveries.c.status == "sending", deliveries.c.claimed_until <= now),
    )
    with ctx.db.begin() as conn:
        query = (
            select(
                deliveries.c.id,
                deliveries.c.account_id,
                deliveries.c.status,
                deliveries.c.attempts,
                deliveries.c.claimed_by,
            )
            .where(due)
            .order_by(deliveries.c.next_attempt_at)
            .limit(limit or policy.batch)
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = conn.execute(query).all()
        if not rows:
            return []
        lapsed = [r for r in rows if r.status == "sending"]
        if lapsed:
            # The worker that held these stopped before recording: that attempt counts.
            conn.execute(
                insert(delivery_attempts),
                [
                    {
                        "id": new_id("att"),
                        "account_id": r.account_id,
                        "delivery_id": r.id,
                        "at": now,
                        "ok": False,
                        "error": f"lease expired: worker {r.claimed_by} did not finish",
                        "duration_ms": 0,
                        "worker": r.claimed_by,
                    }
                    for r in lapsed
                ],
            )
        spent = [r.id for r in lapsed if r.attempts >= policy.max_attempts]
        if spent:
            conn.execute(
                update(deliveries)
                .where(deliveries.c.id.in_(spent))
                .values(
                    status="dead",
                    claimed_by=None,
                    claimed_until=None,
                    last_error="gave up: every attempt's worker stopped before finishing",
                )
            )
        take = [r.id for r in rows if r.id not in set(spent)]
        if not take:
            return []
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id.in_(take))
            .values(
                status="sending",
                claimed_by=token,
                claimed_until=until,
                attempts=deliveries.c.attempts + 1,
            )
        )
        loaded = conn.execute(
            select(
                deliveries.c.id,
                deliveries.c.attempts,
                events.c.id.label("event_id"),
                events.c.account_id,
                events.c.kind,
                events.c.payload,
                events.c.created_at,
                accounts.c.name.label("account_name"),
                channels.c.id.label("channel_id"),
                channels.c.kind.label("channel_kind"),
                channels.c.target_encrypted,
                channels.c.secret_encrypted,
                channels.c.deleted_at,
            )
            .join(events, events.c.id == deliveries.c.event_id)
            .join(channels, channels.c.id == deliveries.c.channel_id)
            .join(accounts, accounts.c.id == deliveries.c.account_id)
            .where(deliveries.c.id.in_(take))
            .order_by(deliveries.c.next_attempt_at)
        ).all()
    return [_claim_of(ctx, r, token, until) for r in loaded]


def _claim_of(ctx: Context, r: Any, token: str, until: datetime) -> Claim:
    event = Event(
        id=r.event_id,
        account_id=r.account_id,
        kind=r.kind,
        payload=json.loads(r.payload),
        created_at=r.created_at,
        account_name=r.account_name,
    )
    channel: Channel | None = None
    problem: str | None = None
    if r.deleted_at is not None or r.target_encrypted is None:
        problem = "the channel was removed"
    else:
        try:
            channel = Channel(
                id=r.channel_id,
                account_id=r.account_id,
                kind=r.channel_kind,
                target=crypto.decrypt(ctx.secret_key, r.target_encrypted),
                secret=crypto.decrypt(ctx.secret_key, r.secret_encrypted)
                if r.secret_encrypted
                else None,
            )
        except ValueError as exc:
            problem = str(exc)
    return Claim(r.id, token, until, r.attempts, channel, event, problem)


# -- 3. delivery ------------------------------------------------------------------------


def redact(text: str, channel: Channel | None) -> str:
    """``text`` with the channel's secrets (and their long parts) blanked out (R28)."""
    if channel is None:
        return text
    pieces: set[str] = {channel.target}
    if channel.secret:
        pieces.add(channel.secret)
    for piece in list(pieces):
        pieces.update(p for p in re.split(r"[/:?&=@]+", piece) if len(p) >= 8)
    for piece in sorted(pieces, key=len, reverse=True):
        text = text.replace(piece, "***")
    return text


def deliver(
    ctx: Context, notifier: Notifier, claims: Iterable[Claim], policy: DeliveryPolicy
) -> tuple[int, int]:
    """Send each claim and record the attempt; returns (sent, failed)."""
    sent = failed = 0
    for c in claims:
        started = time.monotonic()
        error: str | None = c.problem
        if c.channel is not None:
            try:
                notifier.send(c.channel, c.event)
            except DeliveryFailed as exc:
                error = str(exc) or type(exc).__name__
            except Exception as exc:  # an adapter bug must not lose the delivery
                error = f"{type(exc).__name__}: {exc}"
        duration_ms = int((time.monotonic() - started) * 1000)
        if error is not None:
            error = redact(error, c.channel)[:1000]
        record(ctx, c, error, duration_ms, policy, permanent=c.problem is not None)
        if error is None:
            sent += 1
            log.info("delivered %s %s (%s)", c.event.kind, c.event.id, c.delivery_id)
        else:
            failed += 1
            log.warning("delivery %s of %s failed: %s", c.delivery_id, c.event.id, error)
    return sent, failed


def record(
    ctx: Context,
    c: Claim,
    error: str | None,
    duration_ms: int,
    policy: DeliveryPolicy,
    *,
    permanent: bool = False,
) -> None:
    """Write one attempt and move the delivery on."""
    now = ctx.now()
    worker = c.token.rsplit("/", 1)[0]
    with ctx.db.begin() as conn:
        conn.execute(
            insert(delivery_attempts),
            {
                "id": new_id("att"),
                "account_id": c.event.account_id,
                "delivery_id": c.delivery_id,
                "at": now,
                "ok": error is None,
                "error": error,
                "duration_ms": duration_ms,
                "worker": worker,
            },
        )
        if error is None:
            # Sent is sent, even if our lease lapsed meanwhile and another worker holds it.
            conn.execute(
                update(deliveries)
                .where(
                    deliveries.c.id == c.delivery_id,
                    deliveries.c.status.in_(("pending", "sending")),
                )
                .values(
                    status="sent", sent_at=now, claimed_by=None, claimed_until=None, last_error=None
                )
            )
            return
        dead = permanent or c.attempts >= policy.max_attempts
        conn.execute(
            update(deliveries)
            .where(deliveries.c.id == c.delivery_id, deliveries.c.claimed_by == c.token)
            .values(
                status="dead" if dead else "pending",
                next_attempt_at=now if dead else now + policy.backoff(c.attempts),
                claimed_by=None,
                claimed_until=None,
                last_error=error,
            )
        )


def drain(
    ctx: Context,
    notifier: Notifier,
    worker: str,
    policy: DeliveryPolicy,
    *,
    max_claims: int = 50,
) -> tuple[int, int]:
    """Claim and send until nothing is due (at most ``max_claims`` rounds)."""
    sent = failed = 0
    for _ in range(max_claims):
        claims = claim(ctx, worker, policy)
        if not claims:
            break
        s, f = deliver(ctx, notifier, claims, policy)
        sent, failed = sent + s, failed + f
    return sent, failed


# -- the expiring digest (R27) -------------------------------------------------------


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
        .where(
            lots.c.remaining > 0,
            lots.c.expires_at > now,
            lots.c.expires_at <= horizon,
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
                    kind="connects_expiring",
                    payload=json.dumps(payload, sort_keys=True),
                    created_at=now,
                    dedupe_key=key,
                )
                .on_conflict_do_nothing()
                .returning(events.c.id)
            )
            emitted += int(result.first() is not None)
    return emitted
