"""Who may do what (R3-R6, R18): roles, actions and the business manager's grants."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from connects.domain.errors import CannotSubmitOnBehalf, Forbidden, NotAMember


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    MANAGER = "manager"
    MEMBER = "member"


ROLES = tuple(r.value for r in Role)
ASSIGNABLE_ROLES = (Role.ADMIN, Role.MANAGER, Role.MEMBER)
PURCHASE_PERMISSION = "connects:purchase"
KNOWN_PERMISSIONS = (PURCHASE_PERMISSION,)


class Action(StrEnum):
    VIEW = "view"  # read balance, history, overview
    BUY = "buy"  # add Connects (R3, R18)
    MANAGE = "manage"  # plan, members, budgets, billing, auto top-up, notifications, grants


_BY_ROLE: dict[Role, frozenset[Action]] = {
    Role.OWNER: frozenset(Action),
    Role.ADMIN: frozenset(Action),
    Role.MANAGER: frozenset({Action.VIEW}),
    Role.MEMBER: frozenset({Action.VIEW}),
}

_ON_BEHALF_ROLES = frozenset({Role.OWNER, Role.ADMIN, Role.MANAGER})


@dataclass(frozen=True, slots=True)
class Actor:
    """Who did something, as written on every ledger entry (R30).

    ``kind`` is ``user`` (a person, with their role in the account if any),
    ``business_manager`` (an outside principal acting through a grant, R6),
    ``system`` (the worker: cycles, expiry, auto top-up) or ``operator``.
    """

    kind: str
    id: str | None = None
    role: Role | None = None
    permissions: frozenset[str] = frozenset()

    @property
    def label(self) -> str:
        return f"{label_prefix(self.kind)}{self.id}" if self.id else self.kind


def label_prefix(kind: str) -> str:
    """What an actor's label puts before its id (``user:`` for a person)."""
    return f"{kind}:"


SYSTEM = Actor("system")
OPERATOR = Actor("operator")


def allows(role: Role | None, action: Action) -> bool:
    return role is not None and action in _BY_ROLE[role]


def require(actor: Actor, action: Action) -> None:
    """Refuse with ``forbidden`` unless ``actor`` may do ``action`` on the account."""
    if actor.kind in ("system", "operator"):
        return
    if actor.kind == "business_manager":
        if action is Action.BUY and PURCHASE_PERMISSION in actor.permissions:
            return
        raise Forbidden(f"the business manager has no permission to {action.value}")
    if not allows(actor.role, action):
        raise Forbidden(f"a {actor.role or 'non-member'} may not {action.value} here")


def sees_email(viewer: Actor, person_id: str) -> bool:
    """Whether ``viewer`` (resolved in an account ``person_id`` belongs to) may see that
    person's e-mail: the person themselves, or the account's owner and admins (R49)."""
    if viewer.kind != "user":
        return False
    return viewer.id == person_id or allows(viewer.role, Action.MANAGE)


def check_submitter(
    *,
    account_kind: str,
    submitter_id: str,
    submitter_role: Role | None,
    freelancer_id: str,
    freelancer_role: Role | None,
    submit_on_behalf: bool,
) -> None:
    """Refuse a proposal whose submitter or assignee breaks R5.

    Every proposal is assigned to one person who would do the work. On a freelancer
    account that is the owner. Under an agency it is any member; members submit for
    themselves, and on a plan with ``submit_on_behalf`` the owner, admins and
    managers may submit for any member.
    """
    if submitter_role is None:
        raise Forbidden("only members of the account may submit proposals under it")
    if freelancer_role is None:
        raise NotAMember(
            "a proposal must be assigned to a member of the account",
            freelancer_id=freelancer_id,
        )
    if submitter_id == freelancer_id:
        return
    if account_kind == "freelancer" or not submit_on_behalf:
        raise CannotSubmitOnBehalf(
            "this plan does not allow submitting proposals on behalf of another member"
        )
    if submitter_role not in _ON_BEHALF_ROLES:
        raise CannotSubmitOnBehalf("only the owner, admins and managers submit on behalf of others")
