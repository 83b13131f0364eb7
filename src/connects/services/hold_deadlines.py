"""The due work of holds: a hold still open at its deadline is released (R34)."""

from __future__ import annotations

from sqlalchemy import select

from connects.db.schema import holds as holds_table
from connects.domain.policy import SYSTEM
from connects.domain.vocabulary import HoldStatus
from connects.services import holds
from connects.services.context import Context
from connects.services.uow import UnitOfWork

_DUE = (
    select(holds_table.c.id, holds_table.c.account_id)
    .where(holds_table.c.status == HoldStatus.HELD.value, holds_table.c.deadline.is_not(None))
    .order_by(holds_table.c.deadline, holds_table.c.id)
    .execution_options(all_accounts=True)  # the due work's sweep across shards
)


def release_due(ctx: Context, batch: int = 500) -> int:
    """Release every open hold past its deadline, one account's transaction at a time;
    a hold that ended meanwhile is left alone (it ends once). Holds released."""
    released = 0
    while True:
        now = ctx.now()
        with ctx.db.read() as conn:
            due = conn.execute(_DUE.where(holds_table.c.deadline <= now).limit(batch)).all()
        uow = UnitOfWork(ctx)
        for hold_id, account_id in due:
            with uow.begin(now) as tx:
                book = tx.book(account_id)
                hold = holds.load(tx.conn, hold_id, account_id)
                if hold.status == HoldStatus.HELD:
                    holds.release(book, hold, actor=SYSTEM, reason="its deadline passed")
                    released += 1
        if ctx.bus is not None:
            ctx.bus.publish(ctx, uow.collect())
        if len(due) < batch:
            return released
