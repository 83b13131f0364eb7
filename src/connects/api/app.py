"""The FastAPI application: ``create_app(ctx, settings)``, and a factory for uvicorn.

``uvicorn --factory connects.api.app:create_app_from_env`` builds everything from the
``CONNECTS_*`` environment in each worker process. Nothing another process needs is
kept in memory: idempotency keys and the simulated clock live in the database.
"""

from __future__ import annotations

import gc
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from connects import __version__
from connects.api import docs, errors, routes_notifications
from connects.api.background import BackgroundWork
from connects.api.common import API_PREFIX
from connects.api.idempotency import IdempotencyMiddleware
from connects.api.routes import accounts, admin, boosts, connects, jobs, people, results, system
from connects.bootstrap import build
from connects.config import Settings
from connects.metrics import LATENCY, REQUESTS
from connects.services.context import Context
from connects.web import install as install_dashboard

DESCRIPTION = """The Connects (bid-credit) engine of a freelance marketplace.

Authenticate with `Authorization: Bearer <token>`. Errors are
`{"error": {"code", "message", "details"}}`. Every POST, PUT, PATCH and DELETE takes an
`Idempotency-Key` header (R31). Lists take `?limit=&cursor=` and answer
`{"items": [...], "next_cursor": ...}`. Connects are integers; money is integer cents
with a `currency`; times are RFC 3339 UTC.
"""


def operation_id(route: APIRoute) -> str:
    """Stable OpenAPI operation ids: the route function's name."""
    return route.name


class MetricsMiddleware:
    """Counts requests and their latency by method, route template and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            REQUESTS.labels(method, template, str(status)).inc()
            LATENCY.labels(method, template).observe(time.perf_counter() - start)


def create_app(ctx: Context, settings: Settings, *, owns_ctx: bool = False) -> FastAPI:
    """The API on a wired context. ``owns_ctx``: dispose its database on shutdown."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        work = None
        if settings.background_interval_seconds > 0:
            work = BackgroundWork(ctx, settings.background_interval_seconds)
            work.start()
        app.state.background = work
        try:
            yield
        finally:
            if work is not None:
                work.stop()
            if owns_ctx:
                ctx.db.dispose()

    app = FastAPI(
        title="connects",
        version=__version__,
        description=DESCRIPTION,
        generate_unique_id_function=operation_id,
        lifespan=lifespan,
        docs_url=None,  # served from vendored files below (connects.api.docs)
        redoc_url=None,
    )
    app.state.ctx = ctx
    app.state.settings = settings
    errors.install(app)

    # Routers carry their full prefix, so route templates (metrics) read as served.
    routers = [system.router, people.router, accounts.router, connects.router, jobs.router]
    routers += [boosts.router, results.router]
    routers += [admin.router, *_optional_routers(), routes_notifications.router]
    if ctx.clock.simulated:  # R33: /admin/clock exists only on the simulated clock
        routers.append(admin.clock_router)
    for router in routers:
        app.include_router(router)
    # The table of API.md lists /healthz and /metrics with the rest: serve both places.
    app.add_api_route(
        f"{API_PREFIX}/healthz", system.healthz, include_in_schema=False, name="healthz_v1"
    )
    app.add_api_route(
        f"{API_PREFIX}/metrics", system.metrics, include_in_schema=False, name="metrics_v1"
    )

    install_dashboard(app)  # the web dashboard at / (connects.web)
    docs.install(app)  # /docs: Swagger UI from the dashboard's vendored files

    app.add_middleware(IdempotencyMiddleware, ctx=ctx, settings=settings)
    app.add_middleware(MetricsMiddleware)
    if settings.trusted_proxies.strip():
        # Outermost: the rate limits, the logs and every route see the client it names.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    return app


def _optional_routers() -> list[Any]:
    """Routers whose services ship separately (auto top-up)."""
    try:
        from connects.api.routes import topups
    except ImportError:  # pragma: no cover - until connects.services.topups exists
        return []
    return [topups.router]


def create_app_from_env() -> FastAPI:
    """The app from ``CONNECTS_*`` settings (``uvicorn --factory``; one per worker)."""
    settings = Settings()
    app = create_app(build(settings), settings, owns_ctx=True)
    # Everything built so far lives as long as the process: keep it out of the cyclic
    # collector's full passes, and collect the young generation less often. Fewer,
    # shorter pauses under load (the tail of the latency).
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    return app
