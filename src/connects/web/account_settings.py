"""The Settings page: the account's name, time zone and plan, with what each plan gives
(monthly grant, rollover cap, price, the price of one more Connect).

Each change is the API's ``PATCH /v1/accounts/{id}`` (:class:`UpdateAccount`): owner
and admins only (R3); everyone else sees the settings and whom to ask.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from zoneinfo import available_timezones

from fastapi import APIRouter, Form, Request, Response

from connects.domain.commands import UpdateAccount
from connects.services import views
from connects.services.context import Context
from connects.web.forms import outcome
from connects.web.viewer import CheckedViewerDep, CtxDep, DashboardRoute, Viewer, ViewerDep, render

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)

_ZONES = sorted(available_timezones())


def settings(ctx: Context, viewer: Viewer) -> dict[str, Any]:
    """The account's settings, the plans it may be on, the zones to pick from."""
    account = views.account(ctx, viewer.actor, viewer.account_id)
    return {
        "account": account,
        "plans": ctx.catalog.of_kind(account["kind"]),
        "zones": _ZONES,
        "ask": viewer.ask,
    }


@router.get("/settings")
def settings_page(request: Request, ctx: CtxDep, viewer: ViewerDep) -> Response:
    """Name, time zone and plan of the account in use (R3, R7, R8)."""
    return render(request, "settings.html", settings(ctx, viewer), viewer=viewer)


def _change(
    request: Request,
    ctx: Context,
    viewer: Viewer,
    form: str,
    action: Callable[[], str],
    values: dict[str, Any],
) -> Response:
    return outcome(
        request,
        ctx,
        viewer,
        page="/settings",
        page_template="settings.html",
        partial="partials/settings.html",
        form=form,
        build=settings,
        action=action,
        values=values,
    )


@router.post("/settings/name")
def rename(
    request: Request, ctx: CtxDep, viewer: CheckedViewerDep, name: Annotated[str, Form()] = ""
) -> Response:
    def act() -> str:
        ctx.handle(UpdateAccount(viewer.actor, viewer.account_id, name=name))
        return f"The account is now called {name.strip()}."

    return _change(request, ctx, viewer, "name", act, {"name": name})


@router.post("/settings/timezone")
def set_timezone(
    request: Request, ctx: CtxDep, viewer: CheckedViewerDep, timezone: Annotated[str, Form()] = ""
) -> Response:
    """The zone of months and cycle days; the pending cycle day moves by hours (R8)."""

    def act() -> str:
        ctx.handle(UpdateAccount(viewer.actor, viewer.account_id, timezone=timezone.strip()))
        return f"Time zone set to {timezone.strip()}: months and cycle days follow it."

    return _change(request, ctx, viewer, "timezone", act, {"timezone": timezone})


@router.post("/settings/plan")
def change_plan(
    request: Request, ctx: CtxDep, viewer: CheckedViewerDep, plan: Annotated[str, Form()] = ""
) -> Response:
    """A new plan's price and features apply at once, its grant and cap from the next
    cycle day (the decision of UpdateAccount)."""

    def act() -> str:
        ctx.handle(UpdateAccount(viewer.actor, viewer.account_id, plan=plan))
        nxt = views.account(ctx, viewer.actor, viewer.account_id)["next_cycle_at"]
        return (
            f"The plan is now {plan}. Its price and features apply now; its monthly grant "
            f"and rollover cap from the next cycle day, {nxt:%b %-d, %Y}."
        )

    return _change(request, ctx, viewer, "plan", act, {"plan": plan})
