"""Who may do what: roles (R3), submitting on behalf (R5), business managers (R6)."""

from __future__ import annotations

import pytest

from connects.domain.errors import CannotSubmitOnBehalf, Forbidden, NotAMember
from connects.domain.policy import (
    OPERATOR,
    PURCHASE_PERMISSION,
    ROLES,
    SYSTEM,
    Action,
    Actor,
    Role,
    allows,
    check_submitter,
    require,
)


def test_roles() -> None:
    # R3
    assert ROLES == ("owner", "admin", "manager", "member")


@pytest.mark.parametrize(
    ("role", "view", "buy", "manage"),
    [
        (Role.OWNER, True, True, True),
        (Role.ADMIN, True, True, True),
        (Role.MANAGER, True, False, False),
        (Role.MEMBER, True, False, False),
        (None, False, False, False),
    ],
)
def test_only_owner_and_admins_buy_and_manage(
    role: Role | None, view: bool, buy: bool, manage: bool
) -> None:
    # R3: only the owner and admins add Connects, change the plan and settings
    assert allows(role, Action.VIEW) is view
    assert allows(role, Action.BUY) is buy
    assert allows(role, Action.MANAGE) is manage


@pytest.mark.parametrize("role", [Role.MANAGER, Role.MEMBER])
@pytest.mark.parametrize("action", [Action.BUY, Action.MANAGE])
def test_require_refuses_managers_and_members(role: Role, action: Action) -> None:
    # R3
    with pytest.raises(Forbidden) as info:
        require(Actor("user", "u1", role), action)
    assert info.value.code == "forbidden"


def test_require_refuses_a_non_member() -> None:
    with pytest.raises(Forbidden):
        require(Actor("user", "u1", None), Action.VIEW)


def test_system_and_operator_pass() -> None:
    for action in Action:
        require(SYSTEM, action)
        require(OPERATOR, action)


def test_business_manager_may_only_buy_with_the_grant() -> None:
    # R6: its only power is what was granted
    granted = Actor("business_manager", "bm", None, frozenset({PURCHASE_PERMISSION}))
    require(granted, Action.BUY)
    for action in (Action.VIEW, Action.MANAGE):
        with pytest.raises(Forbidden):
            require(granted, action)
    revoked = Actor("business_manager", "bm", None, frozenset())
    with pytest.raises(Forbidden):
        require(revoked, Action.BUY)  # R6: revoking stops it at once
    other = Actor("business_manager", "bm", None, frozenset({"connects:read"}))
    with pytest.raises(Forbidden):
        require(other, Action.BUY)


def test_actor_label() -> None:
    assert Actor("user", "usr_1").label == "user:usr_1"
    assert SYSTEM.label == "system"


def submit(
    *,
    kind: str = "agency",
    submitter: str = "a",
    submitter_role: Role | None = Role.MEMBER,
    freelancer: str = "a",
    freelancer_role: Role | None = Role.MEMBER,
    on_behalf: bool = True,
) -> None:
    check_submitter(
        account_kind=kind,
        submitter_id=submitter,
        submitter_role=submitter_role,
        freelancer_id=freelancer,
        freelancer_role=freelancer_role,
        submit_on_behalf=on_behalf,
    )


@pytest.mark.parametrize("role", list(Role))
def test_everyone_submits_for_themselves(role: Role) -> None:
    # R5: members submit for themselves, on any plan
    submit(submitter_role=role, freelancer_role=role, on_behalf=False)
    submit(submitter_role=role, freelancer_role=role, on_behalf=True)


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN, Role.MANAGER])
def test_on_behalf_allowed_for_owner_admin_manager_on_plus(role: Role) -> None:
    # R5: on a plan with submit_on_behalf
    submit(submitter="boss", submitter_role=role, freelancer="w", on_behalf=True)


def test_member_never_submits_for_another() -> None:
    # R5
    with pytest.raises(CannotSubmitOnBehalf) as info:
        submit(submitter="m", submitter_role=Role.MEMBER, freelancer="w", on_behalf=True)
    assert info.value.code == "cannot_submit_on_behalf"


@pytest.mark.parametrize("role", [Role.OWNER, Role.ADMIN, Role.MANAGER])
def test_no_on_behalf_without_the_plan_feature(role: Role) -> None:
    # R5: agency-basic has no submit_on_behalf
    with pytest.raises(CannotSubmitOnBehalf):
        submit(submitter="boss", submitter_role=role, freelancer="w", on_behalf=False)


def test_freelancer_account_never_on_behalf() -> None:
    # R5: on a freelancer account the work is the owner's
    with pytest.raises(CannotSubmitOnBehalf):
        submit(
            kind="freelancer",
            submitter="o",
            submitter_role=Role.OWNER,
            freelancer="x",
            freelancer_role=Role.MEMBER,
            on_behalf=True,
        )


def test_assignee_must_be_a_member() -> None:
    # R5: a proposal is assigned to a member who would do the work
    with pytest.raises(NotAMember) as info:
        submit(submitter="boss", submitter_role=Role.OWNER, freelancer="x", freelancer_role=None)
    assert info.value.code == "not_a_member"
    assert info.value.details == {"freelancer_id": "x"}


def test_submitter_must_be_a_member() -> None:
    with pytest.raises(Forbidden):
        submit(submitter_role=None)
