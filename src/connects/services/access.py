"""Who is acting: a person's role in an account, or a business manager's live grants."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, or_, select

from connects.db.schema import grants, memberships
from connects.domain.errors import NotFound
from connects.domain.policy import Action, Actor, Role, require


def role_of(conn: Connection, account_id: str, user_id: str) -> Role | None:
    role = conn.execute(
        select(memberships.c.role).where(
            memberships.c.account_id == account_id, memberships.c.user_id == user_id
        )
    ).scalar_one_or_none()
    return Role(role) if role else None


def live_permissions(
    conn: Connection, account_id: str, grantee: str, now: datetime
) -> frozenset[str]:
    """Permissions granted to ``grantee`` that are active now: synced, not revoked (R6)."""
    rows = conn.execute(
        select(grants.c.permissions).where(
            grants.c.account_id == account_id,
            grants.c.grantee == grantee,
            grants.c.active_at <= now,
            or_(grants.c.revoked_at.is_(None), grants.c.revoked_at > now),
        )
    ).scalars()
    return frozenset(p for row in rows for p in row.split())


def as_member(account_id: str, user_id: str, role: str | None) -> Actor:
    """A person acting on an account with ``role`` (None: not a member).

    A person who is not a member gets ``not_found``: outsiders never learn that an
    account exists. Every read and write resolves a person through here.
    """
    if role is None:
        raise NotFound("no such account", account_id=account_id)
    return Actor("user", user_id, Role(role))


def resolve(conn: Connection, account_id: str, who: Actor, now: datetime) -> Actor:
    """``who`` with their role (a person, :func:`as_member`) or live permissions (a
    business manager). A business manager with no live grant on the account gets
    ``not_found``, as an outsider does: it never learns that the account exists."""
    if who.kind == "user":
        assert who.id is not None
        return as_member(account_id, who.id, role_of(conn, account_id, who.id))
    if who.kind == "business_manager":
        assert who.id is not None
        permissions = live_permissions(conn, account_id, who.id, now)
        if not permissions:
            raise NotFound("no such account", account_id=account_id)
        return Actor("business_manager", who.id, None, permissions)
    return who


def authorize(
    conn: Connection, account_id: str, who: Actor, action: Action, now: datetime
) -> Actor:
    """Resolve ``who`` and refuse unless they may do ``action`` (R3, R6)."""
    actor = resolve(conn, account_id, who, now)
    require(actor, action)
    return actor
