"""People: sign-up and the caller (``/users``, ``/me``)."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from connects.api.common import API_PREFIX, RATE_LIMITED, READ_ERRORS, WRITE_ERRORS
from connects.api.deps import (
    CtxDep,
    CurrentPerson,
    IdempotencyKey,
    SettingsDep,
    secret_shown_once,
)
from connects.api.schemas import CreatedUser, Me, NewUser
from connects.domain.commands import CreateUser
from connects.services import ratelimit, views

router = APIRouter(prefix=API_PREFIX, tags=["people"])


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

    A replay with the same Idempotency-Key answers 409 ``secret_shown_once`` (R51).

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
