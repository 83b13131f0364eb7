"""The web dashboard: server-rendered pages (Jinja2 + htmx) over the same services as
the REST API, with a one-time-link sign-in and server-side sessions."""

from __future__ import annotations

import inspect
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

STATIC = Path(__file__).resolve().parent / "static"


def install(app: FastAPI) -> None:
    """Mount the dashboard on ``app``: its pages at ``/`` and its files at ``/static``."""
    from connects.web.routes import router

    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _browsers_get_a_page_for_404(app)


def _browsers_get_a_page_for_404(app: FastAPI) -> None:
    """A browser (``Accept: text/html``) asking for a page that does not exist gets an
    HTML page; API clients, and anything under ``/v1``, keep the JSON error."""
    from connects.api.common import API_PREFIX
    from connects.web.viewer import render

    json_answer = app.exception_handlers[HTTPException]

    async def not_found(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        browser = "text/html" in request.headers.get("accept", "")
        if exc.status_code == 404 and browser and not request.url.path.startswith(API_PREFIX):
            return render(
                request,
                "problem.html",
                {
                    "title": "Page not found",
                    "message": "There is no page at this address. It may have moved, or "
                    "the link may be mistyped.",
                    "code": "not_found",
                },
                status_code=404,
            )
        answer = json_answer(request, exc)
        return await answer if inspect.isawaitable(answer) else answer

    app.add_exception_handler(HTTPException, not_found)
