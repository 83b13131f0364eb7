"""The Buy form's posts (R17, R18, R43, issue 24): review, confirm, buy.

``review`` asks the engine what the purchase would cost and what pays
(:func:`connects.services.views.purchase_quote`, the purchase's own checks: the
quantity, ``max_purchase``, the card) and shows the confirm step; ``confirm`` buys and
says what was charged to which card; ``edit`` goes back to the form with what was typed.
Nothing is charged before ``confirm``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response

from connects.domain.commands import BuyConnects
from connects.domain.errors import ConnectsError
from connects.services import views
from connects.services.context import Context
from connects.web import pages
from connects.web.forms import outcome, whole
from connects.web.viewer import (
    CheckedViewerDep,
    CtxDep,
    DashboardRoute,
    Viewer,
    error_view,
    is_htmx,
    money,
    render,
)

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)


def _paid_by(quote: dict[str, Any]) -> str:
    card = quote["card"]
    if card is None:
        return "paid from the earnings balance"
    return f"charged to {card['brand'].title()} ending {card['last4']}"


def _bought(ctx: Context, viewer: Viewer, quantity: Any, pay_with: str) -> str:
    """Buy what the confirm step showed; the confirmation says what was charged where."""
    quote = views.purchase_quote(ctx, viewer.actor, viewer.account_id, quantity, pay_with)
    done = ctx.handle(BuyConnects(viewer.actor, viewer.account_id, quantity, quote["pay_with"]))
    amount = money(done["amount_cents"], done["currency"])
    if done["status"] == "pending":
        return (
            f"Buying {done['quantity']:,} Connects for {amount}: the card payment is still "
            "being confirmed; the Connects arrive as soon as it is."
        )
    return f"Bought {done['quantity']:,} Connects for {amount}, {_paid_by(quote)}."


@router.post("/buy")
def buy(
    request: Request,
    ctx: CtxDep,
    viewer: CheckedViewerDep,
    quantity: Annotated[str, Form()] = "",
    pay_with: Annotated[str, Form()] = "",
    step: Annotated[str, Form()] = "review",
) -> Response:
    """Buy Connects, paid whole by earnings or one card, in two steps (R17, R43):
    ``review`` shows the total and what pays, ``confirm`` buys, ``edit`` goes back."""
    typed = {"quantity": quantity, "pay_with": pay_with}
    wanted = whole(quantity)
    if step != "confirm":
        return _buy_review(request, ctx, viewer, wanted, pay_with, typed, edit=step == "edit")

    return outcome(
        request,
        ctx,
        viewer,
        page="/buy",
        page_template="buy.html",
        partial="partials/buy.html",
        form="buy",
        build=pages.buy,
        action=lambda: _bought(ctx, viewer, wanted, pay_with),
        values=typed,
    )


def _buy_review(
    request: Request,
    ctx: Context,
    viewer: Viewer,
    quantity: Any,
    pay_with: str,
    typed: dict[str, Any],
    *,
    edit: bool,
) -> Response:
    """The confirm step: the engine's price and the card, or its refusal by the field."""
    errors: dict[str, Any] = {}
    confirm = None
    if not edit:
        try:
            quote = views.purchase_quote(ctx, viewer.actor, viewer.account_id, quantity, pay_with)
            confirm = {**quote, "paid_by": _paid_by(quote)}
        except ConnectsError as exc:
            errors["buy"] = error_view(exc)
    context = {
        **pages.buy(ctx, viewer),
        "errors": errors,
        "confirm": confirm,
        "values": {"buy": typed},
    }
    status = 422 if errors else 200
    if is_htmx(request):
        return render(request, "partials/buy.html", context, viewer=viewer, status_code=status)
    return render(request, "buy.html", context, viewer=viewer, status_code=status)
