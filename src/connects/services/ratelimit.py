"""Rate limits on whatever hands out a token, counted in the database.

Fixed windows: one row per (scope, SHA-256 of the key, window start) holds the number of
hits, raised by an ``INSERT ... ON CONFLICT DO UPDATE`` so that every process (several
``connects serve`` workers, several hosts on one PostgreSQL) counts into the same row.
Keys (e-mail addresses, client addresses) are stored hashed only. Over the limit:
``rate_limited`` (429) with ``retry_after``, the seconds until the window ends.

Windows run on the wall clock, not the ledger's clock: moving the simulated clock (R33)
must not reset them **(decision)**.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from connects.config import Settings
from connects.db.schema import rate_limit_hits as hits_table
from connects.domain.errors import RateLimited
from connects.services.context import Context

KEEP = timedelta(days=1)  # rows of windows older than this are deleted as we go


@dataclass(frozen=True, slots=True)
class Limit:
    """At most ``max_hits`` per ``window`` seconds for one key; 0 turns it off."""

    scope: str
    max_hits: int
    window: int

    @property
    def on(self) -> bool:
        return self.max_hits > 0 and self.window > 0


def signup_per_email(settings: Settings) -> Limit:
    return Limit("signup_email", settings.signin_limit_per_email, _window(settings))


def signup_per_ip(settings: Settings) -> Limit:
    return Limit("signup_ip", settings.signup_limit_per_ip, _window(settings))


def signin_failures_per_ip(settings: Settings) -> Limit:
    return Limit("signin_ip", settings.signin_limit_per_ip, _window(settings))


def _window(settings: Settings) -> int:
    return settings.signin_limit_window_seconds


def _hash(scope: str, key: str) -> str:
    return hashlib.sha256(f"{scope}\x00{key.strip().lower()}".encode()).hexdigest()


def _window_start(limit: Limit, now: datetime) -> tuple[datetime, int]:
    """The start of the window ``now`` falls in, and the seconds left in it (>= 1)."""
    epoch = now.timestamp()
    start = math.floor(epoch / limit.window) * limit.window
    left = max(1, math.ceil(start + limit.window - epoch))
    return datetime.fromtimestamp(start, UTC), left


def _refuse(limit: Limit, left: int) -> RateLimited:
    return RateLimited(
        f"too many attempts; try again in {left} seconds", retry_after=left, limit=limit.scope
    )


def hit(ctx: Context, limit: Limit, key: str, now: datetime | None = None) -> None:
    """Count one attempt for ``key``; ``rate_limited`` once the window's limit is passed.

    The count is committed before the refusal is raised, so refused attempts count too.
    """
    if not limit.on:
        return
    now = now or datetime.now(UTC)
    start, left = _window_start(limit, now)
    key_hash = _hash(limit.scope, key)
    with ctx.db.alone(), ctx.db.begin() as conn:  # counted whatever the request becomes
        maker = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        insert = maker(hits_table).values(
            scope=limit.scope, key_hash=key_hash, window_start=start, hits=1
        )
        stmt = insert.on_conflict_do_update(
            index_elements=[hits_table.c.scope, hits_table.c.key_hash, hits_table.c.window_start],
            set_={"hits": hits_table.c.hits + 1},
        ).returning(hits_table.c.hits)
        count = int(conn.execute(stmt).scalar_one())
        if count == 1:  # a new window for this key: drop windows long gone, as we go
            conn.execute(delete(hits_table).where(hits_table.c.window_start < now - KEEP))
    if count > limit.max_hits:
        raise _refuse(limit, left)


def check(ctx: Context, limit: Limit, key: str, now: datetime | None = None) -> None:
    """``rate_limited`` when ``key`` has used up this window already (counts nothing)."""
    if not limit.on:
        return
    now = now or datetime.now(UTC)
    start, left = _window_start(limit, now)
    with ctx.db.read() as conn:
        count = conn.execute(
            select(hits_table.c.hits).where(
                hits_table.c.scope == limit.scope,
                hits_table.c.key_hash == _hash(limit.scope, key),
                hits_table.c.window_start == start,
            )
        ).scalar_one_or_none()
    if count is not None and count >= limit.max_hits:
        raise _refuse(limit, left)


def client_address(client: object) -> str:
    """The caller's address from a Starlette ``request.client`` (``unknown`` without one)."""
    host = getattr(client, "host", None)
    return str(host) if host else "unknown"
