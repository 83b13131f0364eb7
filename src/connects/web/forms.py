"""The dashboard's form posts: each one calls the service function the API calls.

With htmx a post answers with the section it changed (the engine's refusal shown
inline, status 422, or the fresh section with a confirmation); without JavaScript it
redirects back to the page (303) or shows the page with the refusal. Every post needs
the session's CSRF token (:func:`connects.web.viewer.get_checked_viewer`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse

from connects.domain.commands import (
    GrantPermissions,
    ResumeAutoTopUp,
    RevokeGrant,
    SetAutoTopUp,
    SetBudget,
)
from connects.domain.errors import ConnectsError
from connects.domain.policy import PURCHASE_PERMISSION
from connects.domain.topup import TOPUP_MANAGER_ID
from connects.services.context import Context
from connects.web import notifications_bridge, pages
from connects.web.viewer import (
    CheckedViewerDep,
    CtxDep,
    DashboardRoute,
    Viewer,
    error_view,
    is_htmx,
    render,
)

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)

_WHOLE = re.compile(r"^\s*-?\d{1,12}\s*$")


def whole(value: str) -> Any:
    """A form field as an int when it is one; otherwise as typed, for the engine to refuse
    with its own message (the dashboard keeps no rules of its own)."""
    return int(value) if _WHOLE.match(value) else value.strip()


def outcome(
    request: Request,
    ctx: Context,
    viewer: Viewer,
    *,
    page: str,
    page_template: str,
    partial: str,
    form: str,
    build: Callable[[Context, Viewer], dict[str, Any]],
    action: Callable[[], str],
    values: dict[str, Any] | None = None,
) -> Response:
    """Run ``action`` and answer as htmx or a plain browser expects.

    ``action`` returns the confirmation to show; a :class:`ConnectsError` it raises is
    shown inline next to ``form`` with its code, the typed ``values`` kept.
    """
    errors: dict[str, Any] = {}
    notice: dict[str, str] = {}
    status = 200
    try:
        notice[form] = action()
    except ConnectsError as exc:
        errors[form] = error_view(exc)
        status = 422
    if not errors and not is_htmx(request):
        return RedirectResponse(page, status_code=303)
    # Balances may have changed: the top bar is re-read for the answer.
    from connects.web.viewer import load_viewer

    fresh = load_viewer(ctx, viewer.session)
    context = {
        **build(ctx, fresh),
        "errors": errors,
        "notice": notice,
        "values": {form: values or {}} if errors else {},
    }
    if is_htmx(request):
        return render(request, partial, {**context, "oob": True}, viewer=fresh, status_code=status)
    return render(request, page_template, context, viewer=fresh, status_code=status)


# -- auto top-up: the three steps of seed 000 --------------------------------------------


def _autotopup(
    request: Request,
    ctx: Context,
    viewer: Viewer,
    form: str,
    action: Callable[[], str],
    values: dict[str, Any] | None = None,
) -> Response:
    return outcome(
        request,
        ctx,
        viewer,
        page="/connects#auto-topup",
        page_template="connects.html",
        partial="partials/autotopup.html",
        form=form,
        build=pages.autotopup if is_htmx(request) else pages.connects,
        action=action,
        values=values,
    )


@router.post("/connects/grant")
def grant(request: Request, ctx: CtxDep, viewer: CheckedViewerDep) -> Response:
    """Step 1: grant the top-up manager ``connects:purchase`` (R6, R19)."""

    def act() -> str:
        made = ctx.handle(
            GrantPermissions(
                viewer.actor, viewer.account_id, TOPUP_MANAGER_ID, [PURCHASE_PERMISSION]
            )
        )
        if made["status"] == "pending":
            return "Permission granted; it becomes active once the grant has synced."
        return "Permission granted and active."

    return _autotopup(request, ctx, viewer, "grant", act)


@router.post("/connects/grant/{grant_id}/revoke")
def revoke(request: Request, grant_id: str, ctx: CtxDep, viewer: CheckedViewerDep) -> Response:
    """Revoke the grant: the top-up manager stops buying at once (R6)."""

    def act() -> str:
        ctx.handle(RevokeGrant(viewer.actor, viewer.account_id, grant_id))
        return "Permission revoked: auto top-up cannot buy Connects any more."

    return _autotopup(request, ctx, viewer, "grant", act)


@router.post("/connects/auto-topup")
def toggle(
    request: Request,
    ctx: CtxDep,
    viewer: CheckedViewerDep,
    enabled: Annotated[str, Form()] = "",
) -> Response:
    """Step 2: turn auto top-up on or off."""
    on = enabled in ("on", "true", "1")

    def act() -> str:
        ctx.handle(SetAutoTopUp(viewer.actor, viewer.account_id, {"enabled": on}))
        return "Auto top-up is on." if on else "Auto top-up is off."

    return _autotopup(request, ctx, viewer, "enable", act)


@router.post("/connects/limits")
def limits(
    request: Request,
    ctx: CtxDep,
    viewer: CheckedViewerDep,
    per_topup: Annotated[str, Form()] = "",
    per_month: Annotated[str, Form()] = "",
    threshold: Annotated[str, Form()] = "",
    mode: Annotated[str, Form()] = "fixed",
    target: Annotated[str, Form()] = "",
    just_in_time: Annotated[str, Form()] = "",
) -> Response:
    """Step 3: Connects per top-up and per month, the threshold, target mode (R19-R22)."""
    fields: dict[str, Any] = {
        "per_topup": whole(per_topup),
        "per_month": whole(per_month),
        "threshold": whole(threshold),
        "mode": mode,
        "target": whole(target) if target.strip() else None,
        "just_in_time": just_in_time in ("on", "true", "1"),
    }

    def act() -> str:
        ctx.handle(SetAutoTopUp(viewer.actor, viewer.account_id, fields))
        return "Limits saved."

    typed = {
        "per_topup": per_topup,
        "per_month": per_month,
        "threshold": threshold,
        "mode": mode,
        "target": target,
        "just_in_time": fields["just_in_time"],
    }
    return _autotopup(request, ctx, viewer, "limits", act, typed)


@router.post("/connects/auto-topup/resume")
def resume(request: Request, ctx: CtxDep, viewer: CheckedViewerDep) -> Response:
    """End the pause that 3 declined charges began (R42); tries at once if still low."""

    def act() -> str:
        ctx.handle(ResumeAutoTopUp(viewer.actor, viewer.account_id))
        return "Auto top-up resumed."

    return _autotopup(request, ctx, viewer, "status", act)


# -- members' budgets (R4) ------------------------------------------------------------------


@router.post("/members/{user_id}/budget")
def budget(
    request: Request,
    user_id: str,
    ctx: CtxDep,
    viewer: CheckedViewerDep,
    monthly_connects: Annotated[str, Form()] = "",
) -> Response:
    """Set or clear (empty) a member's monthly Connects budget."""
    value = whole(monthly_connects) if monthly_connects.strip() else None

    def act() -> str:
        ctx.handle(SetBudget(viewer.actor, viewer.account_id, user_id, value))
        return "Budget cleared." if value is None else "Budget saved."

    return outcome(
        request,
        ctx,
        viewer,
        page="/members",
        page_template="members.html",
        partial="partials/members_table.html",
        form=f"budget:{user_id}",
        build=pages.members,
        action=act,
        values={"monthly_connects": monthly_connects},
    )


# -- notifications (R27, R28) ------------------------------------------------------------------


def _notify(
    request: Request,
    ctx: Context,
    viewer: Viewer,
    form: str,
    action: Callable[[], str],
    values: dict[str, Any] | None = None,
) -> Response:
    return outcome(
        request,
        ctx,
        viewer,
        page="/notifications",
        page_template="notifications.html",
        partial="partials/notifications.html",
        form=form,
        build=pages.notifications,
        action=action,
        values=values,
    )


@router.post("/notifications/channels")
def add_channel(
    request: Request,
    ctx: CtxDep,
    viewer: CheckedViewerDep,
    kind: Annotated[str, Form()] = "",
    target: Annotated[str, Form()] = "",
) -> Response:
    """Add a Telegram, Slack, Discord, e-mail or webhook channel."""

    def act() -> str:
        return notifications_bridge.add_channel(ctx, viewer, kind, target.strip())

    return _notify(request, ctx, viewer, "channel", act, {"kind": kind, "target": target})


@router.post("/notifications/channels/{channel_id}/test")
def test_channel(
    request: Request, channel_id: str, ctx: CtxDep, viewer: CheckedViewerDep
) -> Response:
    """Send a test message to a channel now."""

    def act() -> str:
        return notifications_bridge.test_channel(ctx, viewer, channel_id)

    return _notify(request, ctx, viewer, f"channel:{channel_id}", act)


@router.post("/notifications/channels/{channel_id}/delete")
def remove_channel(
    request: Request, channel_id: str, ctx: CtxDep, viewer: CheckedViewerDep
) -> Response:
    """Remove a channel."""

    def act() -> str:
        return notifications_bridge.remove_channel(ctx, viewer, channel_id)

    return _notify(request, ctx, viewer, "channel", act)


@router.post("/notifications/settings")
def notification_settings(
    request: Request,
    ctx: CtxDep,
    viewer: CheckedViewerDep,
    low_balance: Annotated[str, Form()] = "",
    topups_on: Annotated[str, Form(alias="topups")] = "",
    monthly_limit: Annotated[str, Form()] = "",
    refunds: Annotated[str, Form()] = "",
    purchases_on: Annotated[str, Form(alias="purchases")] = "",
    expiring: Annotated[str, Form()] = "",
    low_balance_levels: Annotated[str, Form()] = "",
) -> Response:
    """The toggles of seed 000 (and the other events) with the low-balance levels (R45),
    typed as numbers separated by commas ("50, 20"; empty for none)."""
    typed = {"low_balance_levels": low_balance_levels}
    switches = {
        "low_balance": low_balance,
        "topups": topups_on,
        "monthly_limit": monthly_limit,
        "refunds": refunds,
        "purchases": purchases_on,
        "expiring": expiring,
    }
    levels = [whole(part) for part in re.split(r"[,;\s]+", low_balance_levels) if part]

    def act() -> str:
        return notifications_bridge.put_settings(
            ctx,
            viewer,
            low_balance_levels=levels,
            **{name: value == "on" for name, value in switches.items()},
        )

    return _notify(request, ctx, viewer, "settings", act, typed)
