"""Liveness and metrics (``/healthz``, ``/metrics``)."""

from __future__ import annotations

import os

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess
from sqlalchemy import text

from connects.api.answers import AnsweredRoute
from connects.api.deps import CtxDep
from connects.api.schemas import Health

router = APIRouter(tags=["system"], route_class=AnsweredRoute)


@router.get(
    "/healthz",
    response_model=Health,
    responses={503: {"model": Health, "description": "The database does not answer."}},
)
def healthz(ctx: CtxDep) -> Response:
    """Liveness: the process answers and the database too."""
    clock = "simulated" if ctx.clock.simulated else "system"
    try:
        with ctx.db.read() as conn:
            conn.execute(text("SELECT 1"))
    except Exception:
        body = Health(status="unavailable", database="unreachable", clock=clock)
        return JSONResponse(body.model_dump(), status_code=503)
    return JSONResponse(Health(status="ok", database="ok", clock=clock).model_dump())


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def metrics() -> Response:
    """Prometheus metrics: requests and latency by route, Connects spent, top-ups."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # several workers: add them all up
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
