"""``Idempotency-Key`` on every POST, PUT, PATCH and DELETE (R31).

The key is kept per principal in the ``idempotency_keys`` table with the method, the
path, the SHA-256 of the body, and the status and body of the answer. This middleware
looks the key up before the route runs:

- the same key and body again replays the stored status and body, byte for byte, 4xx
  answers included, with ``Idempotent-Replayed: true``;
- the same key with another method, path or body: 409 ``idempotency_key_reused``;
- a key not seen yet: the route runs as the keyed request (:mod:`connects.api.answers`),
  whose change and answer are committed in one transaction (:mod:`connects.db.request`).
  A twin running at the same moment waits on the key's primary key and replays the
  answer of whichever commits first. A crash or a 5xx stores nothing, so nothing is
  ever "in flight": the retry runs afresh.

An answer that carries a secret shown once (sign-up's bearer token, a webhook's
generated signing secret; the route says so, :func:`~connects.api.deps.secret_shown_once`)
is never stored: its key keeps 409 ``secret_shown_once`` instead, so a replay tells the
secret to nobody (R51). Stored answers are deleted after their retention
(:mod:`connects.services.retention`).

Every POST, PUT, PATCH and DELETE body, with a key or without, is bounded by
:data:`MAX_BODY`: past it the answer is 413 ``request_too_large`` and nothing runs.

A request with no token is kept under ``anonymous`` (``POST /users``): the key itself,
random and known only to the client, is what tells one such client from another.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Any

from anyio import to_thread
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connects.api.answers import KEYED, MUTATING, respond
from connects.api.deps import (
    PRINCIPAL_STATE,
    Principal,
    fixed_principal,
    person,
    usable_token,
)
from connects.api.errors import error_body
from connects.config import Settings
from connects.db.failover import Retry
from connects.db.request import KeySlot, as_answer, person_and_stored, stored
from connects.domain.policy import Actor
from connects.services.accounts import hash_token
from connects.services.context import Context

HEADER = "idempotency-key"
KEY_PATTERN = re.compile(r"^[!-~]{1,200}$")  # visible ASCII, as the column holds 200
MAX_BODY = 1_000_000
ANONYMOUS = Principal("anonymous", Actor("anonymous", None), "anonymous")  # POST /users


def _look_up(
    ctx: Context, settings: Settings, token: str | None, key: str
) -> tuple[Principal | None, Any, datetime]:
    """The caller (``ANONYMOUS`` without a token; None for a token nobody holds), the
    key's stored row (or None), and the time the request arrived."""
    if token is not None and not usable_token(token):
        return None, None, ctx.now()
    found = ANONYMOUS if token is None else fixed_principal(settings, token)
    with ctx.db.lookup() as conn:
        if found is not None:
            row = stored(conn, found.key, key)
        else:  # a person: who holds the token and their key's row, one statement
            holder, row = person_and_stored(conn, hash_token(str(token)), key)
            found = None if holder is None else person(holder.person_id, holder.person_name)
    return found, row, ctx.now()


async def _send_json(send: Send, status: int, payload: bytes, extra: list[Any]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def _error(code: str, message: str, details: dict[str, Any] | None = None) -> bytes:
    return json.dumps(error_body(code, message, details), separators=(",", ":")).encode()


class IdempotencyMiddleware:
    """Pure ASGI middleware: replays a stored answer, or hands the key to the route."""

    def __init__(self, app: ASGIApp, ctx: Context, settings: Settings) -> None:
        self.app = app
        self.ctx = ctx
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in MUTATING:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY:
            await _too_large(send)
            return
        key = headers.get(HEADER)
        if key is None:
            # No key to keep, but the body is bounded all the same (read once, at most
            # MAX_BODY, then handed on).
            body = await _read_body(receive)
            if body is None:
                await _too_large(send)
                return
            await self.app(scope, _replaying(body, receive), send)
            return
        if not KEY_PATTERN.match(key):
            await _send_json(
                send,
                422,
                _error(
                    "invalid_request",
                    "Idempotency-Key must be 1 to 200 visible ASCII characters",
                    {"fields": ["Idempotency-Key"]},
                ),
                [],
            )
            return
        body = await _read_body(receive)
        if body is None:
            await _too_large(send)
            return
        token: str | None = None
        auth = headers.get("authorization")
        if auth is not None:
            scheme, _, given = auth.partition(" ")
            token = given.strip() if scheme.lower() == "bearer" else ""
        # The caller and the key's stored answer in one go (one hop to a worker thread
        # on PostgreSQL, none on SQLite: Database.inline_lookups).
        if self.ctx.db.inline_lookups:
            found, row, now = _look_up(self.ctx, self.settings, token, key)
        else:  # a read: safe to run again while PostgreSQL fails over
            retry = Retry(self.ctx.db.failover_seconds)
            found, row, now = await to_thread.run_sync(
                retry.run, lambda: _look_up(self.ctx, self.settings, token, key)
            )
        if found is None:  # the route answers 401; nothing to remember
            await self.app(scope, _replaying(body, receive), send)
            return
        if token is not None:
            scope.setdefault("state", {})[PRINCIPAL_STATE] = (token, found)
        principal = "anonymous" if token is None else found.key
        method = scope["method"]
        path = scope["path"]
        if scope.get("query_string"):
            path += "?" + scope["query_string"].decode("latin-1")
        # PostgreSQL text holds no NUL (a ``%00`` in the path, decoded): escape it, and
        # ``%`` with it so that two paths never share one stored form.
        path = path.replace("%", "%25").replace("\x00", "%00")[:500]
        digest = hashlib.sha256(body).hexdigest()
        slot = KeySlot(principal, key, method, path, digest, now)
        if row is not None and not slot.asks_as(row):
            await _send_json(
                send,
                409,
                _error(
                    "idempotency_key_reused",
                    "this Idempotency-Key was used with another request",
                    {"idempotency_key": key},
                ),
                [],
            )
            return
        if row is not None:
            answer = as_answer(row)
            await respond(answer, replayed=True)(scope, receive, send)
            return
        keyed = KEYED.set((self.ctx.db, slot))
        try:
            await self.app(scope, _replaying(body, receive), send)
        finally:
            KEYED.reset(keyed)


async def _too_large(send: Send) -> None:
    message = f"the request body is larger than {MAX_BODY} bytes"
    await _send_json(send, 413, _error("request_too_large", message), [(b"connection", b"close")])


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the app the body read already, then the real channel."""
    sent_body = False

    async def replay_receive() -> Message:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay_receive


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when it passes :data:`MAX_BODY`."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            return None
        parts.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(parts)
