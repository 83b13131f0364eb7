"""Claims: due deliveries taken under a lease, so each is sent by one worker at a time (R29).

:func:`claim` takes due deliveries (pending and due, or ``sending`` with a lapsed
lease): ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so concurrent workers take disjoint
rows; SQLite's ``BEGIN IMMEDIATE`` serialises the select-and-update. A worker that
dies leaves ``sending`` rows whose lease runs out; the next claim takes them again and
records the lost attempt, or marks them ``dead`` once every attempt was spent so.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, insert, or_, select, update

from connects.db.schema import accounts, channels, deliveries, delivery_attempts, events
from connects.domain.ids import new_id
from connects.domain.vocabulary import DeliveryStatus
from connects.notify import crypto, webhooks
from connects.notify.channels import Channel, Event
from connects.services.context import Context


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
        and_(
            deliveries.c.status == DeliveryStatus.PENDING.value, deliveries.c.next_attempt_at <= now
        ),
        and_(
            deliveries.c.status == DeliveryStatus.SENDING.value, deliveries.c.claimed_until <= now
        ),
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
            .execution_options(all_accounts=True)  # a sweep across shards
        )
        if conn.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = conn.execute(query).all()
        if not rows:
            return []
        lapsed = [r for r in rows if r.status == DeliveryStatus.SENDING]
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
                .execution_options(all_accounts=True)  # the claimed batch spans shards
                .values(
                    status=DeliveryStatus.DEAD.value,
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
            .execution_options(all_accounts=True)  # the claimed batch spans shards
            .values(
                status=DeliveryStatus.SENDING.value,
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
                channels.c.secret_raw,
                channels.c.deleted_at,
            )
            .join(events, events.c.id == deliveries.c.event_id)
            .join(channels, channels.c.id == deliveries.c.channel_id)
            .join(accounts, accounts.c.id == deliveries.c.account_id)
            .where(deliveries.c.id.in_(take))
            .order_by(deliveries.c.next_attempt_at)
            .execution_options(all_accounts=True)  # the claimed batch spans shards
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
                secret=webhooks.open_secret(ctx.secret_key, r.secret_encrypted, r.secret_raw),
            )
        except ValueError as exc:
            problem = str(exc)
    return Claim(r.id, token, until, r.attempts, channel, event, problem)
