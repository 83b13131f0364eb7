"""Reads of the people on an account: members with their budgets and this month's use
(as the budget check counts it), and the cards on file."""

from __future__ import annotations

from collections.abc import Iterable
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
from connects.services.accounts import person_by_email
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


def person_id(ctx: Context, ref: str) -> str:
    """The person ``ref`` names, by e-mail or by id (the CLI's ``--member``).

    An e-mail is looked up as :func:`person_by_email` does (the first holder); one
    nobody holds is ``not_found``, not an empty answer. For the operator's CLI and for
    the owner or admin inviting a person to their agency by e-mail.
    """
    ref = ref.strip()
    with ctx.db.read() as conn:
        if "@" in ref:
            found = person_by_email(conn, ref)
            if found is None:
                raise NotFound(f"no person has the e-mail {ref}", email=ref)
            return found
        if conn.execute(select(users.c.id).where(users.c.id == ref)).first() is None:
            raise NotFound(f"no person has the id {ref}", user_id=ref)
    return ref


def names(ctx: Context, user_ids: Iterable[str | None]) -> dict[str, str]:
    """People's names by id, to show beside (or instead of) their ids."""
    wanted = sorted({i for i in user_ids if i})
    if not wanted:
        return {}
    with ctx.db.read() as conn:
        rows = conn.execute(select(users.c.id, users.c.name).where(users.c.id.in_(wanted)))
        return {r.id: r.name for r in rows}


def open_invitations(ctx: Context, who: Actor, account_id: str) -> list[dict[str, Any]]:
    """The agency's invitations still waiting for an answer (owner and admins, R49)."""
    now = ctx.now()
    with ctx.db.read() as conn:
        authorize(conn, account_id, who, Action.MANAGE, now)
        rows = conn.execute(
            select(
                invitations,
                accounts.c.name.label("account_name"),
                users.c.name.label("person_name"),
            )
            .join(accounts, accounts.c.id == invitations.c.account_id)
            .join(users, users.c.id == invitations.c.user_id)
            .where(
                invitations.c.account_id == account_id,
                invitations.c.status == InvitationStatus.INVITED.value,
            )
            .order_by(invitations.c.created_at, invitations.c.id)
        ).all()
    # No e-mail: the person does not belong to the agency yet (R49).
    return [{**invitation_dict(r._mapping, r.account_name), "name": r.person_name} for r in rows]
