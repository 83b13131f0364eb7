"""Delivery: each claimed row sent through the :class:`Notifier` and its attempt recorded (R29).

:func:`deliver` sends outside any transaction, then :func:`record` writes the attempt
and moves the delivery on: ``sent``, or back to ``pending`` after an exponential
backoff, or ``dead`` after ``max_attempts``. Nothing is ever dropped, and every
attempt stays visible in the history.

Delivery is therefore at least once: a worker that sent and died before recording
causes a repeat, with the same event id for the receiver to dedupe on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from sqlalchemy import insert, update

from connects.db.schema import deliveries, delivery_attempts
from connects.domain.ids import new_id
from connects.domain.vocabulary import DeliveryStatus
from connects.notify.channels import DeliveryFailed, Notifier, redact
from connects.notify.claims import Claim, DeliveryPolicy, claim
from connects.services.context import Context

log = logging.getLogger("connects.notify")


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
                notifier.send(c.channel, c.event, at=ctx.now())
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
                    deliveries.c.account_id == c.event.account_id,
                    deliveries.c.id == c.delivery_id,
                    deliveries.c.status.in_(
                        (DeliveryStatus.PENDING.value, DeliveryStatus.SENDING.value)
                    ),
                )
                .values(
                    status=DeliveryStatus.SENT.value,
                    sent_at=now,
                    claimed_by=None,
                    claimed_until=None,
                    last_error=None,
                )
            )
            return
        dead = permanent or c.attempts >= policy.max_attempts
        conn.execute(
            update(deliveries)
            .where(
                deliveries.c.account_id == c.event.account_id,
                deliveries.c.id == c.delivery_id,
                deliveries.c.claimed_by == c.token,
            )
            .values(
                status=(DeliveryStatus.DEAD if dead else DeliveryStatus.PENDING).value,
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
