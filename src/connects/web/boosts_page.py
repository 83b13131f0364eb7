"""The dashboard's Proposals page: the account's proposals with their boost status and
rank, each job's auction (R35), and for a freelancer account the availability badge's
switch with its weekly maximum (R37). The form calls the command the API calls."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response

from connects.domain.commands import SetBadge
from connects.services import badge, views
from connects.services.context import Context
from connects.web.forms import outcome, whole
from connects.web.viewer import CheckedViewerDep, CtxDep, DashboardRoute, Viewer, ViewerDep, render

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)


def proposals(ctx: Context, viewer: Viewer) -> dict[str, Any]:
    """The page's data: proposals, their jobs' auctions, the badge (freelancers)."""
    account_id = viewer.account_id
    items = views.account_proposals(ctx, viewer.actor, account_id)
    auctions = {p["job_id"]: views.auction(ctx, p["job_id"]) for p in items}
    freelancer = viewer.current is not None and viewer.current.kind == "freelancer"
    return {
        "proposals": items,
        "auctions": auctions,
        "overview": views.overview(ctx, viewer.actor, account_id),
        "badge": badge.get_badge(ctx, viewer.actor, account_id) if freelancer else None,
    }


@router.get("/proposals")
def proposals_page(request: Request, ctx: CtxDep, viewer: ViewerDep) -> Response:
    """Proposals with boost status and rank, the auctions, the badge (R35, R37)."""
    return render(request, "proposals.html", proposals(ctx, viewer), viewer=viewer)


@router.post("/proposals/badge")
def set_badge(
    request: Request,
    ctx: CtxDep,
    viewer: CheckedViewerDep,
    enabled: Annotated[str, Form()] = "",
    weekly_max: Annotated[str, Form()] = "",
) -> Response:
    """Switch the availability badge and set its weekly maximum (R37)."""
    on = enabled in ("on", "true", "1")
    most = whole(weekly_max) if weekly_max.strip() else None

    def act() -> str:
        shown = ctx.handle(SetBadge(viewer.actor, viewer.account_id, on, most))
        if shown["enabled"]:
            return f"The badge is on: {shown['weekly_price']} Connects a week, charged daily."
        return "The badge is off."

    return outcome(
        request,
        ctx,
        viewer,
        page="/proposals#badge",
        page_template="proposals.html",
        partial="proposals.html",
        form="badge",
        build=proposals,
        action=act,
        values={"weekly_max": weekly_max},
    )
