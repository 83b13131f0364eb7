"""Auto top-up's status for one account (R40): the facts from the database, the
verdict from :func:`connects.domain.topup_status.status`.

The one place it is read: the API's ``GET /accounts/{id}/auto-topup`` and the overview,
the dashboard's panel and top bar, the runner (why the top-up manager was refused a
purchase) and the recovery (whether what could not be bought may be tried again).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from connects.db.schema import accounts, grants
from connects.domain.calendar import next_month_start, zone
from connects.domain.policy import PURCHASE_PERMISSION
from connects.domain.topup import TOPUP_MANAGER_ID, grant_status
from connects.domain.topup_status import Facts, Status, grant_block, status
from connects.domain.vocabulary import BlockedReason
from connects.services import billing
from connects.services.context import Context
from connects.services.topup_state import load_state
from connects.services.topup_trigger import bought_this_month, load_settings


def grant_facts(
    conn: Connection, account_id: str, now: datetime
) -> tuple[tuple[str, datetime], ...]:
    """``(status, active_at)`` of each ``connects:purchase`` grant of the top-up manager."""
    rows = conn.execute(
        select(grants.c.permissions, grants.c.active_at, grants.c.revoked_at).where(
            grants.c.account_id == account_id, grants.c.grantee == TOPUP_MANAGER_ID
        )
    ).all()
    return tuple(
        (grant_status(r.active_at, r.revoked_at, now), r.active_at)
        for r in rows
        if PURCHASE_PERMISSION in r.permissions.split()
    )


def grant_problem(conn: Connection, account_id: str, now: datetime) -> str:
    """Why the top-up manager was refused: ``grant_pending``, ``grant_revoked`` or
    ``no_grant`` (the last also when a grant turned live again meanwhile)."""
    reason, _ = grant_block(grant_facts(conn, account_id, now))
    return (reason or BlockedReason.NO_GRANT).value


def status_of(conn: Connection, account_id: str, now: datetime) -> Status:
    """Whether auto top-up can buy now, and if not why and when it tries again (R40)."""
    timezone = conn.execute(
        select(accounts.c.timezone).where(accounts.c.id == account_id)
    ).scalar_one()
    settings = load_settings(conn, account_id)
    state = load_state(conn, account_id)
    _, bought = bought_this_month(conn, account_id, now, timezone)
    facts = Facts(
        grants=grant_facts(conn, account_id, now),
        has_card=billing.default_card(conn, account_id) is not None,
        paused=state.paused_at is not None,
        declines=state.declines,
        retry_at=state.retry_at,
        left_this_month=settings.per_month - bought,
        next_month_at=next_month_start(now, zone(timezone)),
    )
    return status(facts, now)


def describe(conn: Connection, account_id: str, now: datetime, *, cards: bool) -> dict[str, Any]:
    """``status``, ``blocked_reason``, ``next_try_at``, ``paused_at`` and, for those who
    may see cards (``cards``), the ``card`` auto top-up charges (R44)."""
    out = status_of(conn, account_id, now).as_dict()
    out["paused_at"] = load_state(conn, account_id).paused_at
    if cards:
        out["card"] = billing.default_card(conn, account_id)
    return out


def blocked_while_on(ctx: Context, account_id: str) -> str | None:
    """Why auto top-up, switched on, cannot buy now (R40); None when it is off or can
    buy. The dashboard's top bar says it on every page."""
    now = ctx.now()
    with ctx.db.read() as conn:
        if not load_settings(conn, account_id).enabled:
            return None
        found = status_of(conn, account_id, now)
    return None if found.active else str(found.reason)


def grant_block_of(ctx: Context, account_id: str) -> BlockedReason | None:
    """What keeps the top-up manager from buying (``no_grant``, ``grant_pending``,
    ``grant_revoked``), or None while its grant is active: for those who may not see
    the grants themselves (members), who are still shown whether step 1 is done."""
    with ctx.db.read() as conn:
        reason, _ = grant_block(grant_facts(conn, account_id, ctx.now()))
    return reason
