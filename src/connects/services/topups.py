"""Auto top-up (R19-R26): the business manager's grants, the settings, the history.

The public face of auto top-up for the API and the CLI. Decisions are taken in
:mod:`connects.services.topup_trigger`, inside the transaction that took the balance
down; :mod:`connects.services.topup_runner` executes them exactly once (R23).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, update

from connects.db.schema import auto_topup_settings, grants, topups
from connects.domain.commands import GrantPermissions, ResumeAutoTopUp, RevokeGrant, SetAutoTopUp
from connects.domain.cursors import id_cursor, page_limit
from connects.domain.errors import InvalidRequest, NotFound
from connects.domain.events import TopUpConditionsChanged
from connects.domain.ids import new_id
from connects.domain.policy import KNOWN_PERMISSIONS, Action, Actor, allows
from connects.domain.topup import TopUpSettings, grant_status
from connects.domain.vocabulary import TopUpStatus
from connects.services import topup_state, topup_status
from connects.services.access import authorize
from connects.services.context import Context
from connects.services.topup_trigger import load_settings
from connects.services.uow import UnitOfWork

MAX_GRANTEE = 64
# A grantee is a service's name (``topup-manager``): plain ASCII, so no control or
# bidirectional character can make one grant look like another in a list.
_GRANTEE = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._:-]{{0,{MAX_GRANTEE - 1}}}")


# -- grants (R6, R19) -------------------------------------------------------------------


def _grant_dict(row: Any, now: datetime) -> dict[str, Any]:
    return {
        "id": row.id,
        "grantee": row.grantee,
        "permissions": row.permissions.split(),
        "status": grant_status(row.active_at, row.revoked_at, now),
        "active_at": row.active_at,
        "created_at": row.created_at,
        "revoked_at": row.revoked_at,
    }


def _permissions(value: Any) -> list[str]:
    if not isinstance(value, list | tuple) or not value:
        raise InvalidRequest("permissions must be a non-empty list", field="permissions")
    unknown = sorted({p for p in value if p not in KNOWN_PERMISSIONS}, key=str)
    if unknown:
        raise InvalidRequest(
            f"unknown permission(s): {', '.join(map(str, unknown))}",
            field="permissions",
            unknown=[str(p) for p in unknown],
            known=list(KNOWN_PERMISSIONS),
        )
    return sorted(set(value))


def create_grant(cmd: GrantPermissions, uow: UnitOfWork) -> dict[str, Any]:
    """Grant a business manager permissions (owner/admin, R6, R19).

    The grant is ``pending`` for the configured sync delay, then ``active``.
    """
    ctx, who, account_id, grantee = uow.ctx, cmd.who, cmd.account_id, cmd.grantee
    if not isinstance(grantee, str) or not _GRANTEE.fullmatch(grantee):
        raise InvalidRequest(
            f"grantee must be 1 to {MAX_GRANTEE} letters, digits, '.', '_', ':' or '-'",
            field="grantee",
        )
    perms = _permissions(cmd.permissions)
    now = ctx.now()
    row = {
        "id": new_id("grt"),
        "account_id": account_id,
        "grantee": grantee,
        "permissions": " ".join(perms),
        "created_at": now,
        "active_at": now + _delay(ctx),
        "revoked_at": None,
        "created_by": who.id,
    }
    with uow.begin(now) as tx:
        tx.authorize(account_id, who, Action.MANAGE)
        tx.conn.execute(insert(grants), row)
        saved = tx.conn.execute(
            select(grants).where(grants.c.account_id == account_id, grants.c.id == row["id"])
        ).one()
        if not _delay(ctx):  # active at once: a waiting top-up may buy (R41)
            tx.raise_event(TopUpConditionsChanged(account_id, "grant_active"))
    return _grant_dict(saved, now)


def _delay(ctx: Context) -> timedelta:
    return timedelta(seconds=max(ctx.grant_sync_delay_seconds, 0))


def revoke_grant(cmd: RevokeGrant, uow: UnitOfWork) -> None:
    """Revoke a grant: the business manager loses its power at once (R6)."""
    account_id, grant_id = cmd.account_id, cmd.grant_id
    with uow.begin() as tx:
        conn, now = tx.conn, tx.now
        tx.authorize(account_id, cmd.who, Action.MANAGE)
        row = conn.execute(
            select(grants).where(grants.c.id == grant_id, grants.c.account_id == account_id)
        ).one_or_none()
        if row is None:
            raise NotFound("no such grant", grant_id=grant_id)
        if row.revoked_at is None:
            conn.execute(
                update(grants)
                .where(grants.c.account_id == account_id, grants.c.id == grant_id)
                .values(revoked_at=now)
            )


def list_grants(ctx: Context, who: Actor, account_id: str) -> list[dict[str, Any]]:
    """The account's grants, oldest first, each ``pending``, ``active`` or ``revoked``."""
    now = ctx.now()
    with ctx.db.read() as conn:
        authorize(conn, account_id, who, Action.MANAGE, now)
        rows = conn.execute(
            select(grants)
            .where(grants.c.account_id == account_id)
            .order_by(grants.c.created_at, grants.c.id)
        ).all()
    return [_grant_dict(r, now) for r in rows]


# -- settings (R19-R22) -----------------------------------------------------------------


def get_settings(ctx: Context, who: Actor, account_id: str) -> dict[str, Any]:
    """The auto top-up settings with its status (R40); every member may read them, and
    the owner and admins also see the card it charges (R44)."""
    now = ctx.now()
    with ctx.db.read() as conn:
        actor = authorize(conn, account_id, who, Action.VIEW, now)
        return {
            **load_settings(conn, account_id).as_dict(),
            **topup_status.describe(conn, account_id, now, cards=allows(actor.role, Action.MANAGE)),
        }


def put_settings(cmd: SetAutoTopUp, uow: UnitOfWork) -> dict[str, Any]:
    """Change some settings (owner/admin, R3); the rest keep their values.

    ``invalid_request`` names every bad field and changes nothing.
    """
    account_id = cmd.account_id
    with uow.begin() as tx:
        conn, now = tx.conn, tx.now
        tx.authorize(account_id, cmd.who, Action.MANAGE)
        old = load_settings(conn, account_id)
        new = old.changed(dict(cmd.fields), max_purchase=uow.ctx.max_purchase)
        values = {**new.as_dict(), "updated_at": now}
        done = conn.execute(
            update(auto_topup_settings)
            .where(auto_topup_settings.c.account_id == account_id)
            .values(**values)
        ).rowcount
        if not done:
            conn.execute(insert(auto_topup_settings), {"account_id": account_id, **values})
        # R41: a raised limit may let a waiting top-up buy; switching on or raising
        # the threshold buys at once if the balance is already at or below it.
        catch_up = new.enabled and (not old.enabled or new.threshold > old.threshold)
        tx.raise_event(TopUpConditionsChanged(account_id, "settings", catch_up=catch_up))
    return get_settings(uow.ctx, cmd.who, account_id)  # with its status (R40)


def resume(cmd: ResumeAutoTopUp, uow: UnitOfWork) -> dict[str, Any]:
    """End the pause that 3 declines in a row began (owner/admin, R42): the card is
    tried again at once if the balance is at or below the threshold (R41). Resuming
    auto top-up that is not paused changes nothing."""
    account_id = cmd.account_id
    with uow.begin() as tx:
        tx.authorize(account_id, cmd.who, Action.MANAGE)
        if topup_state.resume(tx.conn, account_id):
            tx.raise_event(TopUpConditionsChanged(account_id, "resumed", catch_up=True))
    return get_settings(uow.ctx, cmd.who, account_id)


def settings_overview(settings: TopUpSettings, bought: int) -> dict[str, Any]:
    """``settings`` with ``bought`` this month and what is left of the monthly limit."""
    return {
        **settings.as_dict(),
        "bought_this_month": bought,
        "left_this_month": max(settings.per_month - bought, 0),
    }


# -- history (R25) ----------------------------------------------------------------------


def _item(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "at": r.created_at,
        "quantity": r.quantity,
        "amount": r.amount_cents,
        # What the card was charged: the amount once it succeeded, 0 when it failed or
        # was skipped, None while it is pending (R44: a failed attempt charged nothing).
        "charged": {TopUpStatus.SUCCEEDED: r.amount_cents, TopUpStatus.PENDING: None}.get(
            r.status, 0
        ),
        "currency": r.currency,
        "trigger": r.trigger,
        "status": r.status,
        "reason": r.reason,
        "purchase_id": r.purchase_id,
        "completed_at": r.completed_at,
    }


def history(
    ctx: Context, who: Actor, account_id: str, *, limit: int = 50, cursor: str | None = None
) -> dict[str, Any]:
    """Every top-up attempt, newest first: time, quantity, cost, trigger, status, reason."""
    limit = page_limit(limit, 1000)
    cursor = id_cursor(cursor, "tup")
    now = ctx.now()
    with ctx.db.read() as conn:
        authorize(conn, account_id, who, Action.VIEW, now)
        query = select(topups).where(topups.c.account_id == account_id)
        if cursor is not None:
            query = query.where(topups.c.id < cursor)
        rows = conn.execute(query.order_by(topups.c.id.desc()).limit(limit + 1)).all()
    items = [_item(r) for r in rows[:limit]]
    return {"items": items, "next_cursor": rows[limit - 1].id if len(rows) > limit else None}
