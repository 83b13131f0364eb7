"""Accounts, members and budgets (R1-R4, R7)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from connects.api.answers import AnsweredRoute
from connects.api.common import (
    API_PREFIX,
    READ_ERRORS,
    WRITE_ERRORS,
    AccountId,
    Cursor,
    Limit,
    UserId,
    page,
)
from connects.api.deps import AccountActor, CtxDep, CurrentPerson, IdempotencyKey
from connects.api.schemas import (
    Account,
    AccountPatch,
    Budget,
    Invitation,
    Member,
    MemberPatch,
    NewAccount,
    NewMember,
    Page,
)
from connects.domain.commands import (
    ChangeRole,
    InviteMember,
    OpenAccount,
    RemoveMember,
    SetBudget,
    UpdateAccount,
)
from connects.domain.policy import Actor
from connects.services import views

router = APIRouter(prefix=API_PREFIX, tags=["accounts"], route_class=AnsweredRoute)


def account_out(data: dict[str, Any]) -> Account:
    return Account.model_validate({**data, "earnings": data["earnings_cents"]})


@router.post(
    "/accounts",
    status_code=status.HTTP_201_CREATED,
    response_model=Account,
    responses=WRITE_ERRORS,
)
def create_account(
    body: NewAccount, ctx: CtxDep, who: CurrentPerson, _key: IdempotencyKey
) -> Account:
    """Open a freelancer or agency account; the caller is its owner (R1, R2)."""
    account_id = ctx.handle(
        OpenAccount(who.user_id, body.kind, body.name, body.plan, body.timezone)
    )
    return account_out(views.account(ctx, who.actor, account_id))


@router.get("/accounts/{account_id}", response_model=Account, responses=READ_ERRORS)
def get_account(account_id: AccountId, ctx: CtxDep, who: AccountActor) -> Account:
    """An account: kind, plan, spendable balance, time zone and the caller's role."""
    return account_out(views.account(ctx, who, account_id))


@router.patch("/accounts/{account_id}", response_model=Account, responses=WRITE_ERRORS)
def update_account(
    account_id: AccountId,
    body: AccountPatch,
    ctx: CtxDep,
    who: AccountActor,
    _key: IdempotencyKey,
) -> Account:
    """Change the plan, time zone, low-balance threshold or name (owner/admin, R3)."""
    ctx.handle(
        UpdateAccount(
            who,
            account_id,
            plan=body.plan,
            timezone=body.timezone,
            low_balance_threshold=body.low_balance_threshold,
            name=body.name,
        )
    )
    return account_out(views.account(ctx, who, account_id))


@router.get("/accounts/{account_id}/members", response_model=Page[Member], responses=READ_ERRORS)
def list_members(
    account_id: AccountId,
    ctx: CtxDep,
    who: AccountActor,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """The members: role, monthly budget and Connects spent this month (R4)."""
    return page(views.members(ctx, who, account_id), limit, cursor)


def _member(ctx: Any, who: Actor, account_id: str, user_id: str) -> Member:
    return Member.model_validate(views.member(ctx, who, account_id, user_id))


@router.post(
    "/accounts/{account_id}/members",
    status_code=status.HTTP_201_CREATED,
    response_model=Invitation,
    responses=WRITE_ERRORS,
)
def add_member(
    account_id: AccountId,
    body: NewMember,
    ctx: CtxDep,
    who: AccountActor,
    _key: IdempotencyKey,
) -> Invitation:
    """Invite a person to an agency with a role (owner/admin, R3).

    The answer is the invitation (``status: "invited"``): the person becomes a member
    only when they accept it (R49).
    """
    return Invitation.model_validate(
        ctx.handle(InviteMember(who, account_id, body.user_id, body.role))
    )


@router.patch(
    "/accounts/{account_id}/members/{user_id}", response_model=Member, responses=WRITE_ERRORS
)
def change_member_role(
    account_id: AccountId,
    user_id: UserId,
    body: MemberPatch,
    ctx: CtxDep,
    who: AccountActor,
    _key: IdempotencyKey,
) -> Member:
    """Change a member's role; the owner's never changes (owner/admin, R3)."""
    ctx.handle(ChangeRole(who, account_id, user_id, body.role))
    return _member(ctx, who, account_id, user_id)


@router.delete(
    "/accounts/{account_id}/members/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=WRITE_ERRORS,
)
def remove_member(
    account_id: AccountId,
    user_id: UserId,
    ctx: CtxDep,
    who: AccountActor,
    _key: IdempotencyKey,
) -> Response:
    """Remove a member (not the owner); their past entries stay in the ledger."""
    ctx.handle(RemoveMember(who, account_id, user_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.put(
    "/accounts/{account_id}/members/{user_id}/budget",
    response_model=Member,
    responses=WRITE_ERRORS,
)
def set_member_budget(
    account_id: AccountId,
    user_id: UserId,
    body: Budget,
    ctx: CtxDep,
    who: AccountActor,
    _key: IdempotencyKey,
) -> Member:
    """Set or clear a member's monthly Connects budget (owner/admin, R4)."""
    ctx.handle(SetBudget(who, account_id, user_id, body.monthly_connects))
    return _member(ctx, who, account_id, user_id)
