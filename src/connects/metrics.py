"""Prometheus metrics of the engine, served at ``/metrics``.

The objects live here so any module can import and update them (the API's request
middleware, proposals, auto top-up). They use prometheus-client's default registry.
Several uvicorn workers each keep their own counters unless ``PROMETHEUS_MULTIPROC_DIR``
is set (prometheus-client's multi-process mode).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

REQUESTS = Counter(
    "connects_http_requests_total",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)

LATENCY = Histogram(
    "connects_http_request_duration_seconds",
    "Time to answer an HTTP request, by method and route template.",
    ["method", "route"],
)

CONNECTS_SPENT = Counter(
    "connects_spent_total",
    "Connects taken from pools by proposals.",
)

TOPUPS = Counter(
    "connects_topups_total",
    "Auto top-ups finished, by status (succeeded, failed, skipped).",
    ["status"],
)
