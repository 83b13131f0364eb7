"""The web dashboard: server-rendered pages (Jinja2 + htmx) over the same services as
the REST API, with a one-time-link sign-in and server-side sessions."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).resolve().parent / "static"


def install(app: FastAPI) -> None:
    """Mount the dashboard on ``app``: its pages at ``/`` and its files at ``/static``."""
    from connects.web.routes import router

    app.include_router(router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
