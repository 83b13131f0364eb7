"""Connects: the overview, the ledger, expiring lots, cards and purchases (R12, R17-R18, R26)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response, status

from connects.api.answers import AnsweredRoute
from connects.api.common import (
    API_PREFIX,
    PAYMENT_ERRORS,
    READ_ERRORS,
    WRITE_ERRORS,
    AccountId,
    BillingMethodId,
    Cursor,
    Limit,
    page,
)
from connects.api.deps import AccountActor, CtxDep, IdempotencyKey
from connects.api.errors import IdempotencyKeyReused
from connects.api.schemas import (
    BillingMethod,
    BillingMethodChange,
    Entry,
    Expiring,
    NewBillingMethod,
    NewPurchase,
    Overview,
    Page,
    Purchase,
)
from connects.domain.commands import (
    AddBillingMethod,
    BuyConnects,
    RemoveBillingMethod,
    SetDefaultBillingMethod,
)
from connects.domain.errors import InvalidRequest
from connects.domain.vocabulary import EntryKind
from connects.services import views

router = APIRouter(prefix=API_PREFIX, tags=["connects"], route_class=AnsweredRoute)

CSV_PAGE = 1000


@router.get("/accounts/{account_id}/connects", response_model=Overview, responses=READ_ERRORS)
def get_overview(account_id: AccountId, ctx: CtxDep, who: AccountActor) -> dict[str, Any]:
    """The Connects overview: available, used and bought this month, expiring (R26)."""
    return views.overview(ctx, who, account_id)


@router.get(
    "/accounts/{account_id}/connects/history",
    response_model=Page[Entry],
    responses={
        **READ_ERRORS,
        200: {
            "description": "Ledger entries, newest first (JSON), or every entry as CSV.",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
    },
)
def get_history(
    account_id: AccountId,
    ctx: CtxDep,
    who: AccountActor,
    limit: Limit = 50,
    cursor: Cursor = None,
    kind: Annotated[
        EntryKind | None,
        Query(description="Only entries of this kind."),
    ] = None,
    member_id: Annotated[
        str | None, Query(max_length=64, description="Only entries of this member.")
    ] = None,
    format: Annotated[
        Literal["json", "csv"], Query(description="`csv` gives every matching entry as CSV.")
    ] = "json",
) -> Any:
    """The ledger, newest first: who, when, why and the balance after each change (R30)."""
    if format == "csv":
        items: list[dict[str, Any]] = []
        next_cursor = cursor
        while True:
            chunk = views.history(
                ctx,
                who,
                account_id,
                limit=CSV_PAGE,
                cursor=next_cursor,
                kind=kind,
                member_id=member_id,
            )
            items.extend(chunk["items"])
            next_cursor = chunk["next_cursor"]
            if next_cursor is None:
                break
        return Response(
            views.entries_csv(items),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{account_id}-history.csv"'},
        )
    return views.history(
        ctx, who, account_id, limit=limit, cursor=cursor, kind=kind, member_id=member_id
    )


@router.get(
    "/accounts/{account_id}/connects/expiring", response_model=Expiring, responses=READ_ERRORS
)
def get_expiring(account_id: AccountId, ctx: CtxDep, who: AccountActor) -> dict[str, Any]:
    """Connects expiring in the next 30 days, lot by lot (R12)."""
    return views.expiring(ctx, who, account_id)


@router.get(
    "/accounts/{account_id}/billing-methods",
    response_model=Page[BillingMethod],
    responses=READ_ERRORS,
)
def list_billing_methods(
    account_id: AccountId,
    ctx: CtxDep,
    who: AccountActor,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """The account's cards: brand and last four digits only (owner/admin)."""
    return page(views.billing_methods(ctx, who, account_id), limit, cursor)


@router.post(
    "/accounts/{account_id}/billing-methods",
    status_code=status.HTTP_201_CREATED,
    response_model=BillingMethod,
    responses=WRITE_ERRORS,
)
def add_billing_method(
    account_id: AccountId,
    body: NewBillingMethod,
    ctx: CtxDep,
    who: AccountActor,
    _key: IdempotencyKey,
) -> dict[str, Any]:
    """Attach a card from a gateway token (`tok_visa`, `tok_chargeDeclined`, ...)."""
    method = ctx.handle(AddBillingMethod(who, account_id, body.token))
    return {**method, "created_at": ctx.now()}


@router.patch(
    "/accounts/{account_id}/billing-methods/{billing_method_id}",
    response_model=BillingMethod,
    responses=WRITE_ERRORS,
)
def change_billing_method(
    account_id: AccountId,
    billing_method_id: BillingMethodId,
    body: BillingMethodChange,
    ctx: CtxDep,
    who: AccountActor,
    _key: IdempotencyKey,
) -> dict[str, Any]:
    """`{default: true}` makes the card the default, the one auto top-up charges (R44)."""
    if not body.default:
        why = "can only be true: make another card the default, or remove this one"
        raise InvalidRequest(f"default {why}", field="default", fields={"default": why})
    return ctx.handle(SetDefaultBillingMethod(who, account_id, billing_method_id))


@router.delete(
    "/accounts/{account_id}/billing-methods/{billing_method_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=WRITE_ERRORS,
)
def remove_billing_method(
    account_id: AccountId,
    billing_method_id: BillingMethodId,
    ctx: CtxDep,
    who: AccountActor,
    _key: IdempotencyKey,
) -> Response:
    """Remove a card; removing the default leaves none until one is chosen (R44)."""
    ctx.handle(RemoveBillingMethod(who, account_id, billing_method_id))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def purchase_out(data: dict[str, Any]) -> Purchase:
    return Purchase.model_validate({**data, "amount": data["amount_cents"]})


@router.post(
    "/accounts/{account_id}/purchases",
    status_code=status.HTTP_201_CREATED,
    response_model=Purchase,
    responses=PAYMENT_ERRORS,
)
def buy_connects(
    account_id: AccountId,
    body: NewPurchase,
    ctx: CtxDep,
    who: AccountActor,
    _key: IdempotencyKey,
) -> Purchase:
    """Buy Connects, paid whole by earnings or one card (owner/admin/granted manager, R17)."""
    if _key is None:
        return purchase_out(ctx.handle(BuyConnects(who, account_id, body.quantity, body.pay_with)))
    # With a key the request buys at most once, even when it runs again (R31).
    bought = ctx.handle(
        BuyConnects(who, account_id, body.quantity, body.pay_with, request_key=_key)
    )
    paid_with = "earnings" if bought["pay_with"] == "earnings" else bought["billing_method_id"]
    if bought["quantity"] != body.quantity or body.pay_with not in (paid_with, "default"):
        raise IdempotencyKeyReused(
            "this Idempotency-Key already made a purchase with another body",
            purchase_id=bought["id"],
        )
    return purchase_out(bought)
