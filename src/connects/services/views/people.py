"""Reads of the people on an account: members with their budgets and this month's use
(as the budget check counts it), and the cards on file."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from connects.db import measures
from connects.db.schema import accounts, invitations, memberships, users
from connects.db.schema import billing_methods as billing_methods_table
from connects.domain.calendar import month_start, zone
from connects.domain.errors import NotFound
from connects.domain.policy import Action, Actor, sees_email
from connects.domain.vocabulary import InvitationStatus
from connects.services.access import authorize
from connects.services.context import Context
from connects.services.invitations import invitation_dict


def members(ctx: Context, who: Actor, account_id: str) -> list[dict[str, Any]]:
    """An account's members with role, monthly budget and Connects spent this month (R4).

    A member's e-mail is shown only to themselves and the owner and admins (R49).
    """
    now = ctx.now()
    with ctx.db.read() as conn:
        viewer = authorize(conn, account_id, who, Action.VIEW, now)
        tz_name = conn.execute(
            select(accounts.c.timezone).where(accounts.c.id == account_id)
        ).scalar_one()
        since = month_start(now, zone(tz_name))
        spent = measures.used_by_member(account_id, since)  # R4: as enforced
        rows = conn.execute(
            select(
                memberships.c.user_id,
                memberships.c.role,
                memberships.c.monthly_budget,
                memberships.c.created_at,
                users.c.name,
                users.c.email,
                func.coalesce(spent.c.used, 0).label("used"),
            )
            .join(users, users.c.id == memberships.c.user_id)
            .outerjoin(spent, spent.c.member_id == memberships.c.user_id)
            .where(memberships.c.account_id == account_id)
            .order_by(memberships.c.created_at, memberships.c.user_id)
        ).all()
    return [
        {
            "user_id": r.user_id,
            "name": r.name,
            "email": r.email if sees_email(viewer, r.user_id) else None,  # R49
            "role": r.role,
            "monthly_budget": r.monthly_budget,
            "spent_this_month": int(r.used),
            "joined_at": r.created_at,
        }
        for r in rows
    ]


def member(ctx: Context, who: Actor, account_id: str, user_id: str) -> dict[str, Any]:
    """One member of an account, as :func:`members` shows it."""
    for m in members(ctx, who, account_id):
        if m["user_id"] == user_id:
            return m
    raise NotFound("no such member", user_id=user_id)


def billing_methods(ctx: Context, who: Actor, account_id: str) -> list[dict[str, Any]]:
    """An account's cards: brand, last four digits and which is the default, nothing more.

    Owner and admins only, like adding one; a business manager never reads them (R6).
    """
    now = ctx.now()
    with ctx.db.read() as conn:
        authorize(conn, account_id, who, Action.MANAGE, now)
        rows = conn.execute(
            select(
                billing_methods_table.c.id,
                billing_methods_table.c.brand,
                billing_methods_table.c.last4,
                billing_methods_table.c.is_default,
                billing_methods_table.c.created_at,
            )
            .where(
                billing_methods_table.c.account_id == account_id,
                billing_methods_table.c.removed_at.is_(None),  # R44
            )
            .order_by(billing_methods_table.c.created_at, billing_methods_table.c.id)
        ).all()
    return [
        {
            "id": r.id,
            "brand": r.brand,
            "last4": r.last4,
            "default": bool(r.is_default),
            "created_at": r.created_at,
        }
        for r in rows
    ]


def invitations_of(ctx: Context, user_id: str) -> list[dict[str, Any]]:
    """The invitations waiting for ``user_id``'s answer, oldest first (R49)."""
    with ctx.db.read() as conn:
        rows = conn.execute(
            select(invitations, accounts.c.name.label("account_name"))
            .join(accounts, accounts.c.id == invitations.c.account_id)
            .where(
                invitations.c.user_id == user_id,
                invitations.c.status == InvitationStatus.INVITED.value,
            )
            .order_by(invitations.c.created_at, invitations.c.id)
        ).all()
    return [invitation_dict(r._mapping, r.account_name) for r in rows]
