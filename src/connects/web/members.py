"""The Members page's changes and the invited person's answer (R3, R49).

An owner or admin invites an existing person by e-mail with a role, changes a member's
role, removes a member (never the owner); the invited person accepts or declines on
the Invitations page. Each post sends the command the API sends
(:mod:`connects.api.routes.accounts`, :mod:`connects.api.routes.people`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response

from connects.domain.commands import (
    AcceptInvitation,
    ChangeRole,
    DeclineInvitation,
    InviteMember,
    RemoveMember,
)
from connects.services import views
from connects.services.context import Context
from connects.web import auth, pages
from connects.web.forms import outcome
from connects.web.viewer import CheckedViewerDep, CtxDep, DashboardRoute, Viewer, ViewerDep, render

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)


def _members(
    request: Request,
    ctx: Context,
    viewer: Viewer,
    form: str,
    action: Any,
    values: dict[str, Any] | None = None,
) -> Response:
    return outcome(
        request,
        ctx,
        viewer,
        page="/members",
        page_template="members.html",
        partial="partials/members_table.html",
        form=form,
        build=pages.members,
        action=action,
        values=values,
    )


def _name(ctx: Context, user_id: str) -> str:
    return views.names(ctx, [user_id]).get(user_id, user_id)


@router.post("/members/invite")
def invite(
    request: Request,
    ctx: CtxDep,
    viewer: CheckedViewerDep,
    email: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "member",
) -> Response:
    """Invite the person who signed up with ``email``; they join once they accept (R49)."""

    def act() -> str:
        # The address is looked up after the caller's right to invite is checked: a
        # member who may not invite learns nothing of who has signed up.
        named = email if email.strip() else None
        made = ctx.handle(InviteMember(viewer.actor, viewer.account_id, "", role, email=named))
        return (
            f"{_name(ctx, made['user_id'])} is invited as {role}. They join once they accept, "
            "on their Invitations page."
        )

    return _members(request, ctx, viewer, "invite", act, {"email": email, "role": role})


@router.post("/members/{user_id}/role")
def change_role(
    request: Request,
    user_id: str,
    ctx: CtxDep,
    viewer: CheckedViewerDep,
    role: Annotated[str, Form()] = "",
) -> Response:
    """Give a member another role; the owner's never changes (R3)."""

    def act() -> str:
        ctx.handle(ChangeRole(viewer.actor, viewer.account_id, user_id, role))
        return f"{_name(ctx, user_id)} is now {'an' if role == 'admin' else 'a'} {role}."

    return _members(request, ctx, viewer, f"member:{user_id}", act)


@router.post("/members/{user_id}/remove")
def remove(request: Request, user_id: str, ctx: CtxDep, viewer: CheckedViewerDep) -> Response:
    """Remove a member (never the owner); their past entries stay in the history."""

    def act() -> str:
        name = _name(ctx, user_id)
        ctx.handle(RemoveMember(viewer.actor, viewer.account_id, user_id))
        return f"{name} was removed. Their past entries stay in the history."

    return _members(request, ctx, viewer, f"member:{user_id}", act)


# -- the invited person ---------------------------------------------------------------------


@router.get("/invitations")
def invitations_page(request: Request, ctx: CtxDep, viewer: ViewerDep) -> Response:
    """The invitations waiting for the signed-in person's answer (R49)."""
    return render(request, "invitations.html", pages.invitations(ctx, viewer), viewer=viewer)


def _answer(request: Request, ctx: Context, viewer: Viewer, action: Any) -> Response:
    return outcome(
        request,
        ctx,
        viewer,
        page="/invitations",
        page_template="invitations.html",
        partial="partials/invitations.html",
        form="invitation",
        build=pages.invitations,
        action=action,
    )


@router.post("/invitations/{invitation_id}/accept")
def accept(request: Request, invitation_id: str, ctx: CtxDep, viewer: CheckedViewerDep) -> Response:
    """Join the agency with the invited role; the dashboard switches to its pool."""

    def act() -> str:
        done = ctx.handle(AcceptInvitation(viewer.session.user_id, invitation_id))
        auth.set_account(ctx, viewer.session, done["account_id"])
        viewer.session = replace(viewer.session, account_id=done["account_id"])  # re-read
        return f"You joined {done['account_name']} as {done['role']}."

    return _answer(request, ctx, viewer, act)


@router.post("/invitations/{invitation_id}/decline")
def decline(
    request: Request, invitation_id: str, ctx: CtxDep, viewer: CheckedViewerDep
) -> Response:
    """Refuse the invitation; nothing else changes."""

    def act() -> str:
        done = ctx.handle(DeclineInvitation(viewer.session.user_id, invitation_id))
        return f"You declined to join {done['account_name']}."

    return _answer(request, ctx, viewer, act)
