"""Every error answer, in one place: ``{"error": {"code", "message", "details"}}``.

A :class:`~connects.domain.errors.ConnectsError` answers with its own ``status`` and
``code``. Validation errors (bad types, missing fields, malformed JSON) answer 422
``invalid_request`` with ``details.fields`` naming the fields (R32). Bad input never
gets a 500: values the database cannot hold are refused as ``invalid_request`` too.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from connects.db.failover import lost_primary
from connects.domain.errors import ConnectsError

log = logging.getLogger("connects.api")

_HTTP_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


class Unauthorized(ConnectsError):
    """No bearer token, or one nobody holds."""

    code, status = "unauthorized", 401


class IdempotencyKeyReused(ConnectsError):
    """The key was first used with another method, path or body (R31)."""

    code, status = "idempotency_key_reused", 409


class SecretShownOnce(ConnectsError):
    """A replay of a request whose answer carried a secret, shown only once (R51)."""

    code, status = "secret_shown_once", 409


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(
        jsonable_encoder(error_body(code, message, details)), status_code=status, headers=headers
    )


def connects_error_response(exc: ConnectsError) -> JSONResponse:
    details = dict(exc.details)
    if "field" in details and "fields" not in details:
        details["fields"] = [details["field"]]
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    if exc.status == 429 and "retry_after" in details:
        headers = {"Retry-After": str(details["retry_after"])}
    return error_response(exc.status, exc.code, exc.message, details, headers)


def _field_name(loc: tuple[Any, ...]) -> str:
    """``("body", "quantity")`` -> ``quantity``; ``("query", "limit")`` -> ``limit``."""
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie") and len(parts) > 1:
        parts = parts[1:]
    return ".".join(parts)


def validation_response(exc: RequestValidationError) -> JSONResponse:
    errors = []
    for e in exc.errors():
        loc = tuple(e.get("loc", ()))
        name = "body" if e.get("type") == "json_invalid" else _field_name(loc)
        errors.append(
            {
                "field": name,
                "location": str(loc[0]) if loc else "body",
                "message": str(e.get("msg", "invalid")),
                "type": str(e.get("type", "invalid")),
            }
        )
    fields = sorted({e["field"] for e in errors})
    message = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5]) or "invalid request"
    return error_response(422, "invalid_request", message, {"fields": fields, "errors": errors})


async def _on_connects_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ConnectsError)
    return connects_error_response(exc)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return validation_response(exc)


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:  # FastAPI could not parse the body: bad input, 422 (R32)
        return error_response(
            422, "invalid_request", "the request body is not valid JSON", {"fields": ["body"]}
        )
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
    return error_response(exc.status_code, code, message, None, dict(exc.headers or {}) or None)


async def _on_data_error(request: Request, exc: Exception) -> JSONResponse:
    # A value the database cannot hold (NUL in text, a number out of range) came from
    # the request: that is bad input, not a server fault.
    log.warning("database refused a value: %s", exc)
    return error_response(
        422, "invalid_request", "a value in the request cannot be stored", {"fields": []}
    )


async def _on_unicode_error(request: Request, exc: Exception) -> JSONResponse:
    # Text that is not Unicode (a lone surrogate from JSON's "\ud800") reached a place
    # that encodes it: bad input, not a server fault (R32).
    log.warning("refused text that is not valid Unicode: %s", type(exc).__name__)
    return error_response(
        422, "invalid_request", "a text in the request is not valid Unicode", {"fields": []}
    )


async def _on_database_error(request: Request, exc: Exception) -> JSONResponse:
    # The database was lost (a PostgreSQL failover under way) and the request could not
    # be run again safely, or ran out of time: 503, the client may retry (with its key).
    if lost_primary(exc):
        log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
        return error_response(
            503,
            "database_unavailable",
            "the database is unavailable; try again in a moment",
            None,
            {"Retry-After": "1"},
        )
    return await _on_unexpected(request, exc)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "something went wrong on our side")


def install(app: FastAPI) -> None:
    """Register the one mapping from exceptions to error answers."""
    app.add_exception_handler(ConnectsError, _on_connects_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(DataError, _on_data_error)
    app.add_exception_handler(DBAPIError, _on_database_error)
    app.add_exception_handler(UnicodeError, _on_unicode_error)
    app.add_exception_handler(Exception, _on_unexpected)
