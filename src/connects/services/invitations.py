"""Membership by consent (R49): an owner or admin invites, the invited person answers.

Until the invited person accepts there is no membership row, so every rule that asks
"is this person a member?" (reads, budgets, a proposal's assignee, R5) says no.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from connects.db.schema import accounts, invitations, memberships, users
from connects.domain.commands import AcceptInvitation, DeclineInvitation, InviteMember
from connects.domain.errors import AlreadyInvited, AlreadyMember, InvitationClosed, NotFound
from connects.domain.ids import new_id
from connects.domain.policy import Action
from connects.domain.vocabulary import InvitationStatus
from connects.services.accounts import assignable_role, person_by_email, require_agency
from connects.services.uow import UnitOfWork

OPEN = InvitationStatus.INVITED.value


def invitation_dict(row: Mapping[Any, Any], account_name: str) -> dict[str, Any]:
    """An invitation as its invited person and the inviting agency see it."""
    return {
        "id": row["id"],
        "account_id": row["account_id"],
        "account_name": account_name,
        "user_id": row["user_id"],
        "role": row["role"],
        "status": row["status"],
        "invited_at": row["created_at"],
        "answered_at": row["answered_at"],
    }


def invite_member(cmd: InviteMember, uow: UnitOfWork) -> dict[str, Any]:
    """Invite a person to an agency with a role (owner/admin only, R3, R49).

    Nothing changes for the person until they accept: they are not a member.
    """
    account_id, user_id, role = cmd.account_id, cmd.user_id, assignable_role(cmd.role)
    with uow.begin() as tx:
        conn, now, book = tx.conn, tx.now, tx.book(account_id)
        tx.authorize(account_id, cmd.who, Action.MANAGE)
        require_agency(book)
        if cmd.email is not None:  # looked up only once the caller may invite
            user_id = person_by_email(conn, cmd.email) or ""
            if not user_id:
                raise NotFound(f"no person has the e-mail {cmd.email.strip()}", email=cmd.email)
        if conn.execute(select(users.c.id).where(users.c.id == user_id)).first() is None:
            raise NotFound("no such person", user_id=user_id)
        member = select(memberships.c.user_id).where(
            memberships.c.account_id == account_id, memberships.c.user_id == user_id
        )
        if conn.execute(member).first() is not None:
            raise AlreadyMember("this person is already a member", user_id=user_id)
        pending = select(invitations.c.id).where(
            invitations.c.account_id == account_id,
            invitations.c.user_id == user_id,
            invitations.c.status == OPEN,
        )
        if conn.execute(pending).first() is not None:
            raise AlreadyInvited("this person already has an open invitation", user_id=user_id)
        row = {
            "id": new_id("inv"),
            "account_id": account_id,
            "user_id": user_id,
            "role": role.value,
            "invited_by": cmd.who.id or cmd.who.kind,
            "status": OPEN,
            "created_at": now,
            "answered_at": None,
        }
        conn.execute(insert(invitations), row)
        name = conn.execute(select(accounts.c.name).where(accounts.c.id == account_id)).scalar_one()
    return invitation_dict(row, name)


def _answer(conn: Connection, user_id: str, invitation_id: str, status: str, now: Any) -> Any:
    """Move the caller's open invitation to ``status``; only the invited person may.

    The move is conditional on the invitation still being open, so of two racing
    answers exactly one wins and the other is told it is closed.
    """
    found = conn.execute(
        select(invitations, accounts.c.name.label("account_name"))
        .join(accounts, accounts.c.id == invitations.c.account_id)
        .where(invitations.c.id == invitation_id, invitations.c.user_id == user_id)
        .execution_options(all_accounts=True)  # a person's invitations: every shard
    ).one_or_none()
    if found is None:  # someone else's invitation looks like none at all
        raise NotFound("no such invitation", invitation_id=invitation_id)
    moved = conn.execute(
        update(invitations)
        .where(
            invitations.c.account_id == found.account_id,
            invitations.c.id == invitation_id,
            invitations.c.status == OPEN,
        )
        .values(status=status, answered_at=now)
    ).rowcount
    if not moved:
        raise InvitationClosed("this invitation was already answered", invitation_id=invitation_id)
    return found


def accept_invitation(cmd: AcceptInvitation, uow: UnitOfWork) -> dict[str, Any]:
    """The invited person accepts: from now on they are a member with the invited role."""
    with uow.begin() as tx:
        conn, now = tx.conn, tx.now
        row = _answer(conn, cmd.user_id, cmd.invitation_id, InvitationStatus.ACCEPTED, now)
        try:
            conn.execute(
                insert(memberships),
                {
                    "account_id": row.account_id,
                    "user_id": cmd.user_id,
                    "role": row.role,
                    "monthly_budget": None,
                    "created_at": now,
                },
            )
        except IntegrityError:  # the whole answer rolls back with it
            raise AlreadyMember("you are already a member", user_id=cmd.user_id) from None
    return {
        **invitation_dict(row._mapping, row.account_name),
        "status": InvitationStatus.ACCEPTED.value,
        "answered_at": now,
    }


def decline_invitation(cmd: DeclineInvitation, uow: UnitOfWork) -> dict[str, Any]:
    """The invited person declines: the invitation closes and nothing else changes."""
    with uow.begin() as tx:
        now = tx.now
        row = _answer(tx.conn, cmd.user_id, cmd.invitation_id, InvitationStatus.DECLINED, now)
    return {
        **invitation_dict(row._mapping, row.account_name),
        "status": InvitationStatus.DECLINED.value,
        "answered_at": now,
    }
