"""The dashboard's pages: sign-in, the account switcher and every read-only view.

Form posts (the mutations) live in :mod:`connects.web.forms`; both call the same
service functions as the REST API, so the dashboard never has rules of its own.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from connects.config import Settings
from connects.domain.errors import ConnectsError, InvalidRequest, RateLimited
from connects.services import ratelimit, views
from connects.services.accounts import person_by_email
from connects.services.context import Context
from connects.web import auth, pages
from connects.web.account_settings import router as settings_router
from connects.web.boosts_page import router as boosts_router
from connects.web.buy_forms import router as buy_router
from connects.web.card_forms import router as card_router
from connects.web.forms import router as forms_router
from connects.web.members import router as members_router
from connects.web.results_page import router as results_router
from connects.web.viewer import (
    CheckedViewerDep,
    CtxDep,
    DashboardRoute,
    SettingsDep,
    ViewerDep,
    error_view,
    get_viewer,
    render,
)

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)
router.include_router(forms_router)
router.include_router(buy_router)
router.include_router(card_router)
router.include_router(members_router)
router.include_router(boosts_router)
router.include_router(results_router)
router.include_router(settings_router)

LOGIN_CSRF_COOKIE = "connects_login_csrf"
DEMO_OWNER_EMAIL = "owner@demo.connects"  # connects.demo.DEMO_OWNER_EMAIL


def _cookie_kwargs(request: Request) -> dict[str, Any]:
    return {
        "httponly": True,
        "samesite": "lax",
        "secure": request.url.scheme == "https",
        "path": "/",
    }


def _demo_owner_id(ctx: Context, settings: Settings) -> str | None:
    """The demo owner's id when the demo sign-in is offered: dev mode and demo data."""
    if settings.mode != "dev":
        return None
    with ctx.db.read() as conn:
        return person_by_email(conn, DEMO_OWNER_EMAIL)


def _login_page(
    request: Request,
    ctx: Context,
    settings: Settings,
    *,
    error: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        {
            "demo": _demo_owner_id(ctx, settings) is not None,
            "login_csrf": token,
            "error": error,
        },
        status_code=status_code,
    )
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=3600, **_cookie_kwargs(request))
    return response


def _signed_in(request: Request, new: auth.NewSession) -> Response:
    response = RedirectResponse("/connects", status_code=303)
    response.set_cookie(
        auth.COOKIE,
        new.cookie_value,
        max_age=int(auth.SESSION_LIFETIME.total_seconds()),
        **_cookie_kwargs(request),
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
    return response


@router.get("/login")
def login(request: Request, ctx: CtxDep, settings: SettingsDep) -> Response:
    """The sign-in page: how to get a link, and the demo owner in dev mode."""
    if auth.session_for_cookie(ctx, request.cookies.get(auth.COOKIE)) is not None:
        return RedirectResponse("/connects", status_code=303)
    return _login_page(request, ctx, settings)


def _rate_limited(request: Request, ctx: Context, settings: Settings, exc: RateLimited) -> Response:
    response = _login_page(request, ctx, settings, error=error_view(exc), status_code=429)
    response.headers["Retry-After"] = str(exc.details["retry_after"])
    return response


def _count_failure(request: Request, ctx: Context, settings: Settings) -> None:
    """One more failed sign-in from this address (``rate_limited`` past the limit)."""
    address = ratelimit.client_address(request.client)
    ratelimit.hit(ctx, ratelimit.signin_failures_per_ip(settings), address)


@router.get("/login/{token}")
def login_with_link(request: Request, token: str, ctx: CtxDep, settings: SettingsDep) -> Response:
    """Use a one-time sign-in link printed by ``connects login-link``.

    Failed attempts are rate limited per client address (guessing links is hopeless
    anyway, but costs us a query each): past the limit even a good link waits.
    """
    limit = ratelimit.signin_failures_per_ip(settings)
    try:
        ratelimit.check(ctx, limit, ratelimit.client_address(request.client))
        try:
            new = auth.redeem_login_link(ctx, token)
        except ConnectsError as exc:
            _count_failure(request, ctx, settings)
            return _login_page(request, ctx, settings, error=error_view(exc), status_code=400)
    except RateLimited as exc:
        return _rate_limited(request, ctx, settings, exc)
    return _signed_in(request, new)


@router.post("/login/demo")
def login_demo(
    request: Request,
    ctx: CtxDep,
    settings: SettingsDep,
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Dev mode only: sign in as the demo owner (when the demo data exists)."""
    expected = request.cookies.get(LOGIN_CSRF_COOKIE) or ""
    try:
        ratelimit.check(
            ctx,
            ratelimit.signin_failures_per_ip(settings),
            ratelimit.client_address(request.client),
        )
        if not expected or not secrets.compare_digest(expected, csrf_token):
            _count_failure(request, ctx, settings)
            exc = InvalidRequest("the sign-in form expired; try again", field="csrf_token")
            return _login_page(request, ctx, settings, error=error_view(exc), status_code=403)
    except RateLimited as limited:
        return _rate_limited(request, ctx, settings, limited)
    owner = _demo_owner_id(ctx, settings)
    if owner is None:
        return RedirectResponse("/login", status_code=303)
    return _signed_in(request, auth.open_session_for(ctx, owner))


@router.post("/logout")
def logout(request: Request, ctx: CtxDep, viewer: CheckedViewerDep) -> Response:
    """Sign out this browser."""
    auth.end_session(ctx, viewer.session)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(auth.COOKIE, path="/")
    return response


def _local(path: str) -> str:
    """Only redirect within the dashboard (no open redirect)."""
    if path.startswith("/") and not path.startswith("//") and "\\" not in path:
        return path
    return "/connects"


@router.post("/switch")
def switch(
    ctx: CtxDep,
    viewer: CheckedViewerDep,
    account_id: Annotated[str, Form()] = "",
    next_path: Annotated[str, Form(alias="next")] = "/connects",
) -> Response:
    """Switch the dashboard to another of the viewer's accounts (seed 001)."""
    if account_id not in {p.id for p in viewer.pools}:
        raise InvalidRequest("you are not a member of that account", field="account_id")
    auth.set_account(ctx, viewer.session, account_id)
    return RedirectResponse(_local(next_path), status_code=303)


@router.get("/")
def home(request: Request, ctx: CtxDep) -> Response:
    """The dashboard starts on the Connects page."""
    get_viewer(request, ctx)
    return RedirectResponse("/connects", status_code=303)


@router.get("/connects")
def connects_page(request: Request, ctx: CtxDep, viewer: ViewerDep) -> Response:
    """Available, used and bought this month, expiring, forecast, auto top-up (R26)."""
    if viewer.current is None:  # no account yet: what they may join
        return RedirectResponse("/invitations", status_code=303)
    return render(request, "connects.html", pages.connects(ctx, viewer), viewer=viewer)


@router.get("/topups")
def topups_page(
    request: Request,
    ctx: CtxDep,
    viewer: ViewerDep,
    cursor: Annotated[str | None, Query()] = None,
) -> Response:
    """Every auto top-up attempt: time, quantity, cost, trigger, status, reason (R25)."""
    return render(request, "topups.html", pages.topups_page(ctx, viewer, cursor), viewer=viewer)


@router.get("/history")
def history_page(
    request: Request,
    ctx: CtxDep,
    viewer: ViewerDep,
    kind: Annotated[str, Query()] = "",
    member: Annotated[str, Query()] = "",
    cursor: Annotated[str | None, Query()] = None,
) -> Response:
    """The ledger, newest first, filtered by kind and member (R30)."""
    try:
        context = pages.history(ctx, viewer, kind or None, member or None, cursor)
    except InvalidRequest as exc:  # a hand-edited filter: show the engine's words inline
        context = {**pages.history(ctx, viewer, None, None, None), "error": error_view(exc)}
        return render(request, "history.html", context, viewer=viewer, status_code=422)
    return render(request, "history.html", context, viewer=viewer)


@router.get("/history.csv")
def history_csv(
    ctx: CtxDep,
    viewer: ViewerDep,
    kind: Annotated[str, Query()] = "",
    member: Annotated[str, Query()] = "",
) -> Response:
    """The filtered ledger as CSV (every matching entry)."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = views.history(
            ctx,
            viewer.actor,
            viewer.account_id,
            limit=1000,
            cursor=cursor,
            kind=kind or None,
            member_id=member or None,
        )
        items.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    name = f"connects-history-{viewer.account_id}.csv"
    return Response(
        views.entries_csv(items),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/expiry")
def expiry_page(request: Request, ctx: CtxDep, viewer: ViewerDep) -> Response:
    """When the pool's Connects expire, month by month (R10, R12)."""
    return render(request, "expiry.html", pages.expiry(ctx, viewer), viewer=viewer)


@router.get("/members")
def members_page(request: Request, ctx: CtxDep, viewer: ViewerDep) -> Response:
    """Members, roles, monthly budgets and what each spent this month (R4)."""
    return render(request, "members.html", pages.members(ctx, viewer), viewer=viewer)


@router.get("/notifications")
def notifications_page(request: Request, ctx: CtxDep, viewer: ViewerDep) -> Response:
    """Channels and the two toggles of seed 000 (R27, R28)."""
    context = pages.notifications(ctx, viewer)
    return render(request, "notifications.html", context, viewer=viewer)


@router.get("/buy")
def buy_page(request: Request, ctx: CtxDep, viewer: ViewerDep) -> Response:
    """Buy Connects with earnings or a card; add a card (R17, R18)."""
    return render(request, "buy.html", pages.buy(ctx, viewer), viewer=viewer)
