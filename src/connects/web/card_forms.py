"""The dashboard's card forms on the Buy page: add a card, make one the default, remove
one (R17, R44). Each calls the command the API calls and re-renders the Buy section
(:func:`connects.web.forms.outcome`); buying itself is in :mod:`connects.web.buy_forms`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response

from connects.domain.commands import (
    AddBillingMethod,
    RemoveBillingMethod,
    SetDefaultBillingMethod,
)
from connects.services import views
from connects.services.context import Context
from connects.web import pages
from connects.web.forms import outcome
from connects.web.viewer import CheckedViewerDep, CtxDep, DashboardRoute, Viewer

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)


def _cards(
    request: Request,
    ctx: Context,
    viewer: Viewer,
    action: Callable[[], str],
    values: dict[str, Any] | None = None,
) -> Response:
    return outcome(
        request,
        ctx,
        viewer,
        page="/buy#cards",
        page_template="buy.html",
        partial="partials/buy.html",
        form="card",
        build=pages.buy,
        action=action,
        values=values,
    )


def _named(ctx: Context, viewer: Viewer, method_id: str) -> str:
    """'Visa ending 4242' for a card of the account (before it changes)."""
    for card in views.billing_methods(ctx, viewer.actor, viewer.account_id):
        if card["id"] == method_id:
            return f"{card['brand'].title()} ending {card['last4']}"
    return "The card"


@router.post("/billing-methods")
def add_card(
    request: Request,
    ctx: CtxDep,
    viewer: CheckedViewerDep,
    token: Annotated[str, Form()] = "",
) -> Response:
    """Add a card from a payment token (test tokens: ``tok_visa``, ``tok_chargeDeclined``)."""

    def act() -> str:
        card = ctx.handle(AddBillingMethod(viewer.actor, viewer.account_id, token.strip()))
        name = f"{card['brand'].title()} ending {card['last4']}"
        if card["default"]:
            return f"{name} added; it is the default card, the one auto top-up charges."
        return f"{name} added. Make it the default for auto top-up to charge it."

    return _cards(request, ctx, viewer, act, {"token": token})


@router.post("/billing-methods/{method_id}/default")
def make_default(
    request: Request, method_id: str, ctx: CtxDep, viewer: CheckedViewerDep
) -> Response:
    """Make a card the default: the one auto top-up and "default card" charge (R44)."""

    def act() -> str:
        ctx.handle(SetDefaultBillingMethod(viewer.actor, viewer.account_id, method_id))
        return f"{_named(ctx, viewer, method_id)} is now the default card."

    return _cards(request, ctx, viewer, act)


@router.post("/billing-methods/{method_id}/remove")
def remove(request: Request, method_id: str, ctx: CtxDep, viewer: CheckedViewerDep) -> Response:
    """Remove a card; removing the default leaves none until one is chosen (R44)."""

    def act() -> str:
        name = _named(ctx, viewer, method_id)
        ctx.handle(RemoveBillingMethod(viewer.actor, viewer.account_id, method_id))
        return f"{name} removed."

    return _cards(request, ctx, viewer, act)
