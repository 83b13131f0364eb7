"""What is kept only for a while: stored idempotent answers (R31, R51).

A stored answer lets a retry of the same request replay it; past the retention
(``CONNECTS_IDEMPOTENCY_RETENTION_HOURS``, 24 by default) no client retries any more, so
the row (the request's path, its body's hash and the answer) is deleted.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete

from connects.db.schema import idempotency_keys
from connects.services.context import Context


def purge_idempotent_answers(ctx: Context) -> int:
    """Delete the idempotency keys older than the retention; how many went."""
    cutoff = ctx.now() - timedelta(hours=ctx.idempotency_retention_hours)
    with ctx.db.begin() as conn:
        done = conn.execute(delete(idempotency_keys).where(idempotency_keys.c.created_at < cutoff))
    return int(done.rowcount or 0)
