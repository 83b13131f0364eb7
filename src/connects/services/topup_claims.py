"""Who runs a decided top-up (R23): an executor claims its ``topups`` row under a lease,
in a transaction of its own committed at once, and gives the claim up when it cannot
finish (connects.services.topup_runner). Two executors never both run one top-up while
its lease lasts; a killed executor's lease runs out and the next run of due work takes it.
"""

from __future__ import annotations

import secrets
import time
from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, or_, select, update

from connects.db.schema import topups
from connects.domain.errors import NotFound
from connects.domain.vocabulary import TopUpStatus
from connects.services.uow import UnitOfWork

# How long a claim keeps other executors off a top-up, on the context's clock. Past it
# another executor may run it again: the derived purchase id makes that reuse the one
# charge, so the lease only has to outlast an ordinary run, gateway call included.
LEASE = timedelta(seconds=60)
# How long (wall time) a caller that must wait for a top-up another executor holds
# polls before it answers with the top-up still pending, and the pauses between polls.
WAIT_SECONDS = 10.0
WAIT_PAUSES = (0.005, 0.1)


def take(uow: UnitOfWork, account_id: str, topup_id: str, *, wait: bool) -> tuple[Any, str, str]:
    """``(row, lease token, status)``: the row when this call claimed it, else None and
    the status it has (``pending`` while another executor holds it)."""
    deadline = time.monotonic() + WAIT_SECONDS
    pause, longest = WAIT_PAUSES
    while True:
        row, token, status = claim(uow, account_id, topup_id)
        if row is not None or status != TopUpStatus.PENDING or not wait:
            return row, token, status
        if time.monotonic() >= deadline:
            return None, token, status
        time.sleep(pause)
        pause = min(pause * 2, longest)


def claim(uow: UnitOfWork, account_id: str, topup_id: str) -> tuple[Any, str, str]:
    """Claim a pending top-up whose lease is free, committed at once (see :func:`take`)."""
    now = uow.ctx.now()  # before the transaction: a clock kept in the database is a read
    token = secrets.token_hex(8)
    with uow.begin(now) as tx:
        conn = tx.conn
        took = conn.execute(
            update(topups)
            .where(
                topups.c.account_id == account_id,
                topups.c.id == topup_id,
                topups.c.status == TopUpStatus.PENDING.value,
                or_(topups.c.claimed_until.is_(None), topups.c.claimed_until <= now),
            )
            .values(claimed_by=token, claimed_until=now + LEASE)
        ).rowcount
        if took:
            row = conn.execute(
                select(topups).where(topups.c.account_id == account_id, topups.c.id == topup_id)
            ).one()
            return row, token, TopUpStatus.PENDING.value
        return None, token, status_of(conn, account_id, topup_id)


def release(uow: UnitOfWork, account_id: str, topup_id: str, token: str) -> None:
    """Give a claim up early, so the next run of due work may retry at once."""
    with uow.begin() as tx:
        tx.conn.execute(
            update(topups)
            .where(
                topups.c.account_id == account_id,
                topups.c.id == topup_id,
                topups.c.claimed_by == token,
            )
            .values(claimed_by=None, claimed_until=None)
        )


def status_of(conn: Connection, account_id: str, topup_id: str) -> str:
    status = conn.execute(
        select(topups.c.status).where(topups.c.account_id == account_id, topups.c.id == topup_id)
    ).scalar()
    if status is None:
        raise NotFound("no such top-up", topup_id=topup_id)
    return str(status)
