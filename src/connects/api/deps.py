"""Who is calling, as ``Annotated`` dependencies the routes declare.

``Authorization: Bearer <token>`` names one of three principals:

- a person (their token is stored hashed, ``services.accounts.user_by_token``);
- the operator (``CONNECTS_OPERATOR_TOKEN``), who acts only under ``/admin``;
- the business manager (``CONNECTS_BUSINESS_MANAGER_TOKEN``), the auto top-up service
  acting as ``topup-manager`` with only what an account granted it (R6).

No token or an unknown one: 401. A known principal that may not do the thing: 403.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from connects.api.answers import KEYED
from connects.api.errors import Unauthorized
from connects.config import Settings
from connects.domain.errors import Forbidden
from connects.domain.policy import OPERATOR, Actor
from connects.services.accounts import user_by_token
from connects.services.context import Context

TOPUP_MANAGER = "topup-manager"


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: ``kind`` is ``user``, ``operator`` or ``business_manager``."""

    kind: str
    actor: Actor
    name: str = ""

    @property
    def key(self) -> str:
        """A stable name for the caller (idempotency keys are kept per principal, R31)."""
        return self.actor.label

    @property
    def user_id(self) -> str:
        assert self.actor.id is not None
        return self.actor.id


def _same(given: str, expected: str | None) -> bool:
    return expected is not None and hmac.compare_digest(given.encode(), expected.encode())


def fixed_principal(settings: Settings, token: str) -> Principal | None:
    """The operator or the business manager when ``token`` is theirs (configured, not
    stored), else None."""
    if _same(token, settings.operator_token):
        return Principal("operator", OPERATOR, "operator")
    if _same(token, settings.business_manager_token):
        return Principal(
            "business_manager", Actor("business_manager", TOPUP_MANAGER), TOPUP_MANAGER
        )
    return None


def person(user_id: str, name: str) -> Principal:
    return Principal("user", Actor("user", user_id), name)


def usable_token(token: str) -> bool:
    return bool(token) and len(token) <= 512


def principal_for_token(ctx: Context, settings: Settings, token: str) -> Principal | None:
    """The principal holding ``token``, or None when nobody does."""
    if not usable_token(token):
        return None
    fixed = fixed_principal(settings, token)
    if fixed is not None:
        return fixed
    with ctx.db.lookup() as conn:
        user = user_by_token(conn, token)
    return None if user is None else person(user.id, user.name)


async def look_up_principal(ctx: Context, settings: Settings, token: str) -> Principal | None:
    """:func:`principal_for_token` from the event loop: in a worker thread, or right
    here where the database says a lookup never waits (SQLite, ``Database.inline_lookups``):
    the hop to a thread and back cost more than the lookup itself."""
    if ctx.db.inline_lookups:
        return principal_for_token(ctx, settings, token)
    return await run_in_threadpool(principal_for_token, ctx, settings, token)


# Dependencies that do no I/O are ``async def``: FastAPI runs a plain ``def`` dependency
# in the thread pool, a hop that costs more than the work itself.


async def get_ctx(request: Request) -> Context:
    ctx: Context = request.app.state.ctx
    return ctx


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


CtxDep = Annotated[Context, Depends(get_ctx)]
SettingsDep = Annotated[Settings, Depends(get_settings)]

_bearer = HTTPBearer(auto_error=False, description="A person's token, or the operator's.")


# Where the idempotency middleware leaves the principal it already looked up, as
# ``(token, principal)``, so the route does not look the token up a second time.
PRINCIPAL_STATE = "connects.principal"


def secret_shown_once(request: Request) -> None:
    """Mark this request's answer as carrying a secret: a keyed request stores the
    refusal ``secret_shown_once`` instead of it, so no replay tells it again (R51)."""
    keyed = KEYED.get()
    if keyed is not None:
        keyed[1].secret = True


async def get_principal(
    request: Request,
    ctx: CtxDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller; 401 without a token or with one nobody holds."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("send Authorization: Bearer <token>")
    token = credentials.credentials
    known = request.scope.get("state", {}).get(PRINCIPAL_STATE)
    principal: Principal | None
    if known is not None and hmac.compare_digest(known[0].encode(), token.encode()):
        principal = known[1]
    else:
        principal = await look_up_principal(ctx, settings, token)
    if principal is None:
        raise Unauthorized("the token is not valid")
    return principal


async def get_account_actor(principal: Annotated[Principal, Depends(get_principal)]) -> Actor:
    """A person or the business manager acting on an account (the operator acts under /admin)."""
    if principal.kind == "operator":
        raise Forbidden("the operator token acts only under /admin")
    return principal.actor


async def get_person(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    """A person: the business manager and the operator are refused (403)."""
    if principal.kind != "user":
        raise Forbidden("only a person may do this")
    return principal


async def get_operator(principal: Annotated[Principal, Depends(get_principal)]) -> Principal:
    """The operator (``CONNECTS_OPERATOR_TOKEN``); anyone else is refused (403)."""
    if principal.kind != "operator":
        raise Forbidden("only the operator may do this")
    return principal


async def idempotency_key_header(
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=200,
            pattern=r"^[!-~]+$",
            description="Retry-safe key (R31): the same key and body replay the first answer.",
        ),
    ] = None,
) -> str | None:
    """Declared for the docs; the idempotency middleware does the work."""
    return idempotency_key


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
AccountActor = Annotated[Actor, Depends(get_account_actor)]
CurrentPerson = Annotated[Principal, Depends(get_person)]
OperatorDep = Annotated[Principal, Depends(get_operator)]
IdempotencyKey = Annotated[str | None, Depends(idempotency_key_header)]
