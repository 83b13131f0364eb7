"""Auto top-up: the business manager's grants, the settings, the history (R6, R19-R25)."""

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
    GrantId,
    Limit,
    page,
)
from connects.api.deps import AccountActor, CtxDep, IdempotencyKey
from connects.api.schemas import AutoTopupPut, AutoTopupSettings, Grant, NewGrant, Page, Topup
from connects.domain.commands import GrantPermissions, ResumeAutoTopUp, RevokeGrant, SetAutoTopUp
from connects.services import topups

router = APIRouter(prefix=API_PREFIX, tags=["auto top-up"], route_class=AnsweredRoute)


@router.get("/accounts/{account_id}/grants", response_model=Page[Grant], responses=READ_ERRORS)
def list_grants(
    account_id: AccountId,
    ctx: CtxDep,
    who: AccountActor,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """The business manager's grants on the account: pending, active or revoked (owner/admin)."""
    return page(topups.list_grants(ctx, who, account_id), limit, cursor)


@router.post(
    "/accounts/{account_id}/grants",
    status_code=status.HTTP_201_CREATED,
    response_model=Grant,
    responses=WRITE_ERRORS,
)
def create_grant(
    account_id: AccountId,
    body: NewGrant,
    ctx: CtxDep,
    who: AccountActor,
    _key: IdempotencyKey,
) -> dict[str, Any]:
    """Grant the top-up manager `connects:purchase` (owner/admin, R6, R19)."""
    return ctx.handle(GrantPermissions(who, account_id, body.grantee, list(body.permissions)))


@router.delete(
    "/accounts/{account_id}/grants/{grant_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=WRITE_ERRORS,
)
def revoke_grant(
    account_id: AccountId,
    grant_id: GrantId,
    ctx: CtxDep,
    who: AccountActor,
    _key: IdempotencyKey,
) -> Response:
    """Revoke a grant: the business manager loses the power at once (owner/admin, R6)."""
    ctx.handle(RevokeGrant(who, account_id, grant_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/accounts/{account_id}/auto-topup", response_model=AutoTopupSettings, responses=READ_ERRORS
)
def get_auto_topup(account_id: AccountId, ctx: CtxDep, who: AccountActor) -> dict[str, Any]:
    """The auto top-up settings: on/off, limits, threshold, mode (members, R19-R22)."""
    return topups.get_settings(ctx, who, account_id)


@router.put(
    "/accounts/{account_id}/auto-topup", response_model=AutoTopupSettings, responses=WRITE_ERRORS
)
def put_auto_topup(
    account_id: AccountId,
    body: AutoTopupPut,
    ctx: CtxDep,
    who: AccountActor,
    _key: IdempotencyKey,
) -> dict[str, Any]:
    """Change the auto top-up settings; fields left out keep their values (owner/admin)."""
    return ctx.handle(SetAutoTopUp(who, account_id, body.model_dump(exclude_unset=True)))


@router.post(
    "/accounts/{account_id}/auto-topup/resume",
    response_model=AutoTopupSettings,
    responses=WRITE_ERRORS,
)
def resume_auto_topup(
    account_id: AccountId, ctx: CtxDep, who: AccountActor, _key: IdempotencyKey
) -> dict[str, Any]:
    """End the pause that 3 declines in a row began; tries at once if still low (R42)."""
    return ctx.handle(ResumeAutoTopUp(who, account_id))


@router.get("/accounts/{account_id}/topups", response_model=Page[Topup], responses=READ_ERRORS)
def list_topups(
    account_id: AccountId,
    ctx: CtxDep,
    who: AccountActor,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """Every top-up attempt, newest first: time, quantity, cost, trigger, status, reason (R25)."""
    return topups.history(ctx, who, account_id, limit=limit, cursor=cursor)
