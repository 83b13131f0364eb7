"""People: sign-up and the caller (``/users``, ``/me``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status

from connects.api.answers import AnsweredRoute
from connects.api.common import (
    API_PREFIX,
    RATE_LIMITED,
    READ_ERRORS,
    WRITE_ERRORS,
    Cursor,
    InvitationId,
    Limit,
    page,
)
from connects.api.deps import (
    CtxDep,
    CurrentPerson,
    IdempotencyKey,
    SettingsDep,
    secret_shown_once,
)
from connects.api.schemas import CreatedUser, Invitation, Me, NewUser, Page
from connects.domain.commands import AcceptInvitation, CreateUser, DeclineInvitation
from connects.services import ratelimit, views

router = APIRouter(prefix=API_PREFIX, tags=["people"], route_class=AnsweredRoute)


@router.post(
    "/users",
    status_code=status.HTTP_201_CREATED,
    response_model=CreatedUser,
    responses={**WRITE_ERRORS, **RATE_LIMITED},
)
def create_user(
    body: NewUser, request: Request, ctx: CtxDep, settings: SettingsDep, _key: IdempotencyKey
) -> CreatedUser:
    """Sign up: a new person and their bearer token, shown only in this answer.

    The answer never tells whether the address is already registered (R49): it is
    always a new person.

    Rate limited per client address and per e-mail address (429 ``rate_limited``).
    """
    ratelimit.hit(ctx, ratelimit.signup_per_ip(settings), ratelimit.client_address(request.client))
    ratelimit.hit(ctx, ratelimit.signup_per_email(settings), body.email)
    created = CreatedUser.model_validate(ctx.handle(CreateUser(body.name, body.email)))
    secret_shown_once(request)  # the token: never stored in the replayable answer (R51)
    return created


@router.get("/me", response_model=Me, responses=READ_ERRORS)
def get_me(ctx: CtxDep, who: CurrentPerson) -> Me:
    """The caller, with the accounts they own and every membership they hold."""
    return Me.model_validate(views.me(ctx, who.user_id))


@router.get("/me/invitations", response_model=Page[Invitation], responses=READ_ERRORS)
def list_my_invitations(
    ctx: CtxDep, who: CurrentPerson, limit: Limit = 50, cursor: Cursor = None
) -> dict[str, Any]:
    """The invitations to join an agency waiting for the caller's answer (R49)."""
    return page(views.invitations_of(ctx, who.user_id), limit, cursor)


@router.post(
    "/invitations/{invitation_id}/accept", response_model=Invitation, responses=WRITE_ERRORS
)
def accept_invitation(
    invitation_id: InvitationId, ctx: CtxDep, who: CurrentPerson, _key: IdempotencyKey
) -> Invitation:
    """Join the agency with the invited role; only the invited person may (R49)."""
    return Invitation.model_validate(ctx.handle(AcceptInvitation(who.user_id, invitation_id)))


@router.post(
    "/invitations/{invitation_id}/decline", response_model=Invitation, responses=WRITE_ERRORS
)
def decline_invitation(
    invitation_id: InvitationId, ctx: CtxDep, who: CurrentPerson, _key: IdempotencyKey
) -> Invitation:
    """Refuse the invitation; only the invited person may (R49)."""
    return Invitation.model_validate(ctx.handle(DeclineInvitation(who.user_id, invitation_id)))
