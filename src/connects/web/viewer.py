"""Who is looking at the dashboard, and the plumbing every page shares.

:class:`Viewer` is the signed-in person with the account (pool) they are looking at and
every account they may switch to. :class:`DashboardRoute` turns the two ways a page can
stop early into answers a browser understands: not signed in (a redirect to the login
page) and a refusal of the engine on a page load (the page's error state).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from connects.api.deps import CtxDep, SettingsDep
from connects.domain.errors import ConnectsError, Forbidden, NotFound
from connects.domain.policy import Action, Actor, Role, allows
from connects.notify.messages import topup_reason
from connects.services import topup_status, views
from connects.services.context import Context
from connects.web import auth
from connects.web.words import money, num, sentence

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))

KIND_LABEL = {"agency": "Agency pool", "freelancer": "Freelancer balance"}


def _when(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M")


def _day(moment: datetime | None) -> str:
    return "" if moment is None else moment.strftime("%b %-d, %Y")


templates.env.filters.update(money=money, num=num, when=_when, day=_day)
templates.env.globals.update(kind_label=KIND_LABEL, topup_reason=topup_reason)


class LoginRequired(Exception):
    """No live session: the browser goes to the login page."""


@dataclass(frozen=True, slots=True)
class Pool:
    """One account the viewer may look at, as the switcher lists it."""

    id: str
    kind: str
    name: str
    role: str
    available: int
    held: int = 0  # R34: kept by open holds (boost bids)

    @property
    def label(self) -> str:
        return KIND_LABEL.get(self.kind, self.kind)


@dataclass
class Viewer:
    """The signed-in person and the account they are looking at."""

    session: auth.WebSession
    pools: list[Pool]
    current: Pool | None
    extra: dict[str, Any] = field(default_factory=dict)
    invited: int = 0  # invitations waiting for this person's answer (R49)
    ask: str = "the owner"  # whom to ask for what this person may not do (R3)
    # Why the current account's auto top-up, switched on, cannot buy (R40); else None.
    topup_blocked: str | None = None

    @property
    def actor(self) -> Actor:
        return Actor("user", self.session.user_id)

    @property
    def account_id(self) -> str:
        if self.current is None:
            raise NotFound("you are not a member of any account yet")
        return self.current.id

    @property
    def role(self) -> Role | None:
        return Role(self.current.role) if self.current else None

    @property
    def can_manage(self) -> bool:
        return allows(self.role, Action.MANAGE)

    @property
    def can_buy(self) -> bool:
        return allows(self.role, Action.BUY)

    def require_manage(self) -> None:
        if not self.can_manage:
            raise Forbidden(f"a {self.role} may not change this; ask the owner or an admin")


def load_viewer(ctx: Context, session: auth.WebSession) -> Viewer:
    """The viewer's accounts with their available Connects; picks the current one."""
    person = views.me(ctx, session.user_id)
    now = ctx.now()
    pools: list[Pool] = []
    with ctx.db.read() as conn:
        for m in person["memberships"]:
            pools.append(
                Pool(
                    m["account_id"],
                    m["kind"],
                    m["name"],
                    m["role"],
                    views.available(conn, m["account_id"], now),
                    views.held(conn, m["account_id"]),
                )
            )
    # Agencies first: they are what the switcher is mostly for (seed 001).
    pools.sort(key=lambda p: (p.kind != "agency", p.name.lower()))
    current = next((p for p in pools if p.id == session.account_id), None)
    if current is None and pools:
        current = pools[0]
    invited = len(views.invitations_of(ctx, session.user_id))
    viewer = Viewer(session, pools, current, invited=invited)
    if current is not None:
        viewer.topup_blocked = topup_status.blocked_while_on(ctx, current.id)
    if current is not None and not viewer.can_manage:
        viewer.ask = who_to_ask(ctx, viewer)
    return viewer


def who_to_ask(ctx: Context, viewer: Viewer) -> str:
    """The people who may buy and change settings here, for 'ask ...' lines (R3)."""
    people = views.members(ctx, viewer.actor, viewer.account_id)
    managers = [m for m in people if allows(Role(m["role"]), Action.MANAGE)]
    managers.sort(key=lambda m: m["role"] != Role.OWNER)  # the owner first
    return " or ".join(f"{m['name']} ({m['role']})" for m in managers) or "the owner"


def get_viewer(request: Request, ctx: CtxDep) -> Viewer:
    """The signed-in viewer, or :class:`LoginRequired`."""
    session = auth.session_for_cookie(ctx, request.cookies.get(auth.COOKIE))
    if session is None:
        raise LoginRequired
    return load_viewer(ctx, session)


async def get_checked_viewer(request: Request, ctx: CtxDep) -> Viewer:
    """:func:`get_viewer` for a form post, refused unless the CSRF token matches."""
    from anyio import to_thread

    viewer = await to_thread.run_sync(get_viewer, request, ctx)
    form = await request.form()
    given = request.headers.get("x-csrf-token") or form.get("csrf_token")
    if not auth.csrf_ok(viewer.session, given if isinstance(given, str) else None):
        raise CsrfRefused
    return viewer


class CsrfRefused(Exception):
    """A form post without this session's CSRF token."""


ViewerDep = Annotated[Viewer, Depends(get_viewer)]
CheckedViewerDep = Annotated[Viewer, Depends(get_checked_viewer)]


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render(
    request: Request,
    name: str,
    context: dict[str, Any],
    *,
    viewer: Viewer | None = None,
    settings: Any = None,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """A template with what every page needs: the viewer, the CSRF token, the page."""
    base: dict[str, Any] = {"viewer": viewer, "path": request.url.path, "errors": {}}
    if viewer is not None:
        base["csrf_token"] = viewer.session.csrf_token
    return templates.TemplateResponse(
        request, name, {**base, **context}, status_code=status_code, headers=headers
    )


def error_view(exc: ConnectsError) -> dict[str, Any]:
    """An engine refusal as the templates show it: the sentence for people
    (:mod:`connects.web.words`), the stable code (kept in the page's markup) and the field."""
    fields = exc.details.get("fields")
    return {
        "code": exc.code,
        "message": sentence(exc),
        "field": exc.details.get("field"),
        "fields": fields if isinstance(fields, dict) else {},
    }


class DashboardRoute(APIRoute):
    """Sends signed-out browsers to ``/login`` and shows refusals as pages, not JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired:
                if is_htmx(request):
                    return Response(status_code=204, headers={"HX-Redirect": "/login"})
                return RedirectResponse("/login", status_code=303)
            except CsrfRefused:
                return render(
                    request,
                    "problem.html",
                    {
                        "title": "This form has expired",
                        "message": "Reload the page and try again (the form's security "
                        "token did not match your session).",
                        "code": "csrf_failed",
                    },
                    status_code=403,
                )
            except ConnectsError as exc:
                return render(
                    request,
                    "problem.html",
                    {"title": "Not available", "message": sentence(exc), "code": exc.code},
                    status_code=exc.status,
                )

        return route


__all__ = [
    "CheckedViewerDep",
    "CtxDep",
    "DashboardRoute",
    "SettingsDep",
    "Viewer",
    "ViewerDep",
    "error_view",
    "get_viewer",
    "is_htmx",
    "money",  # connects.web.words.money, as the Buy form's confirmation uses it
    "render",
    "templates",
]
