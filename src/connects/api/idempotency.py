"""``Idempotency-Key`` on every POST, PUT, PATCH and DELETE (R31).

The key is kept per principal in the ``idempotency_keys`` table with the method, the
path, the SHA-256 of the body, and (once answered) the status and body of the answer:

- the first request with a key inserts the row (``ON CONFLICT DO NOTHING``); the
  database's primary key decides which of two racing requests is first, in one process
  or many;
- the same key and body again replays the first status and body, byte for byte, 4xx
  answers included;
- the same key with another method, path or body: 409 ``idempotency_key_reused``;
- while the first request is still running: 409 ``idempotency_key_in_flight``;
- a 5xx (or a crash) releases the key, so the request may be retried;
- an answer that carries a secret shown once (sign-up's bearer token, a webhook's
  generated signing secret; the route says so, :func:`~connects.api.deps.secret_shown_once`)
  is never stored: its key keeps 409 ``secret_shown_once`` instead, so a replay tells
  the secret to nobody (R51). Stored answers are deleted after their retention
  (:mod:`connects.services.retention`).

Every POST, PUT, PATCH and DELETE body, with a key or without, is bounded by
:data:`MAX_BODY`: past it the answer is 413 ``request_too_large`` and nothing runs.

A request with no token is kept under ``anonymous`` (``POST /users``): the key itself,
random and known only to the client, is what tells one such client from another.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import anyio
from anyio import to_thread
from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from connects.api.deps import PRINCIPAL_STATE, SECRET_SHOWN_STATE, look_up_principal
from connects.api.errors import SecretShownOnce, error_body
from connects.config import Settings
from connects.db.schema import idempotency_keys
from connects.db.sql import insert_ignore
from connects.services.context import Context

log = logging.getLogger(__name__)
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
HEADER = "idempotency-key"
KEY_PATTERN = re.compile(r"^[!-~]{1,200}$")  # visible ASCII, as the column holds 200
MAX_BODY = 1_000_000
# A key left in flight this long (its process died mid-request) may be taken again.
STALE_AFTER = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class Claim:
    """What the first look at a key decided: ``go``, ``replay``, ``reused`` or ``in_flight``."""

    outcome: str
    status: int = 0
    body: bytes = b""
    content_type: str | None = None


class KeyStore:
    """The ``idempotency_keys`` table (synchronous; called from a worker thread)."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    def claim(self, principal: str, key: str, method: str, path: str, body_hash: str) -> Claim:
        for _ in range(2):
            now = self.ctx.now()
            with self.ctx.db.statements() as conn:
                inserted = insert_ignore(
                    conn,
                    idempotency_keys,
                    {
                        "principal": principal,
                        "key": key,
                        "method": method,
                        "path": path,
                        "body_hash": body_hash,
                        "status_code": None,
                        "response_body": None,
                        "content_type": None,
                        "created_at": now,
                    },
                )
                if inserted:
                    return Claim("go")
                row = conn.execute(
                    select(idempotency_keys).where(
                        idempotency_keys.c.principal == principal, idempotency_keys.c.key == key
                    )
                ).one_or_none()
                if row is None:  # released between our insert and our read: try again
                    continue
                if (row.method, row.path, row.body_hash) != (method, path, body_hash):
                    return Claim("reused")
                if row.status_code is not None:
                    return Claim(
                        "replay",
                        row.status_code,
                        (row.response_body or "").encode(),
                        row.content_type,
                    )
                if row.created_at > now - STALE_AFTER:
                    return Claim("in_flight")
                conn.execute(self._unanswered(principal, key))  # abandoned: take it over
        return Claim("in_flight")

    @staticmethod
    def _unanswered(principal: str, key: str) -> Any:
        return delete(idempotency_keys).where(
            idempotency_keys.c.principal == principal,
            idempotency_keys.c.key == key,
            idempotency_keys.c.status_code.is_(None),
        )

    def finish(
        self, principal: str, key: str, status: int, body: bytes, content_type: str | None
    ) -> None:
        with self.ctx.db.statements() as conn:
            conn.execute(
                update(idempotency_keys)
                .where(idempotency_keys.c.principal == principal, idempotency_keys.c.key == key)
                .values(
                    status_code=status,
                    response_body=body.decode("utf-8", errors="replace"),
                    content_type=content_type,
                )
            )

    def release(self, principal: str, key: str) -> None:
        with self.ctx.db.statements() as conn:
            conn.execute(self._unanswered(principal, key))


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
    """Pure ASGI middleware: claims the key before the route runs, records the answer."""

    def __init__(self, app: ASGIApp, ctx: Context, settings: Settings) -> None:
        self.app = app
        self.ctx = ctx
        self.settings = settings
        self.store = KeyStore(ctx)

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
        principal = "anonymous"
        auth = headers.get("authorization")
        if auth is not None:
            scheme, _, token = auth.partition(" ")
            found = None
            if scheme.lower() == "bearer":
                found = await look_up_principal(self.ctx, self.settings, token.strip())
            if found is None:  # the route answers 401; nothing to remember
                await self.app(scope, receive, send)
                return
            principal = found.key
            scope.setdefault("state", {})[PRINCIPAL_STATE] = (token.strip(), found)
        body = await _read_body(receive)
        if body is None:
            await _too_large(send)
            return
        method = scope["method"]
        path = scope["path"]
        if scope.get("query_string"):
            path += "?" + scope["query_string"].decode("latin-1")
        # PostgreSQL text holds no NUL (a ``%00`` in the path, decoded): escape it, and
        # ``%`` with it so that two paths never share one stored form.
        path = path.replace("%", "%25").replace("\x00", "%00")[:500]
        digest = hashlib.sha256(body).hexdigest()
        claim = await to_thread.run_sync(self.store.claim, principal, key, method, path, digest)
        if claim.outcome == "replay":
            await send(
                {
                    "type": "http.response.start",
                    "status": claim.status,
                    "headers": [
                        (b"content-type", (claim.content_type or "application/json").encode()),
                        (b"content-length", str(len(claim.body)).encode()),
                        (b"idempotent-replayed", b"true"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": claim.body})
            return
        if claim.outcome == "reused":
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
        if claim.outcome == "in_flight":
            await _send_json(
                send,
                409,
                _error(
                    "idempotency_key_in_flight",
                    "the first request with this Idempotency-Key is still running",
                    {"idempotency_key": key},
                ),
                [(b"retry-after", b"1")],
            )
            return
        await self._run(scope, body, receive, send, principal, key)

    async def _run(
        self, scope: Scope, body: bytes, receive: Receive, send: Send, principal: str, key: str
    ) -> None:
        replay_receive = _replaying(body, receive)
        scope.setdefault("state", {})  # shared with the route (SECRET_SHOWN_STATE)

        status = 500
        content_type: str | None = None
        chunks: list[bytes] = []
        recorded = False

        async def record() -> None:
            nonlocal recorded
            recorded = True
            if status >= 500:
                await _persist(self.store.release, principal, key)
            elif scope["state"].get(SECRET_SHOWN_STATE):
                refusal = _error(
                    SecretShownOnce.code,
                    "the first answer to this Idempotency-Key carried a secret, shown only once",
                    {"idempotency_key": key},
                )
                await _persist(
                    self.store.finish,
                    principal,
                    key,
                    SecretShownOnce.status,
                    refusal,
                    "application/json",
                )
            else:
                await _persist(
                    self.store.finish, principal, key, status, b"".join(chunks), content_type
                )

        async def capture(message: Message) -> None:
            nonlocal status, content_type
            if message["type"] == "http.response.start":
                status = int(message["status"])
                content_type = Headers(raw=message.get("headers", [])).get("content-type")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    # Stored before the client sees the end of the answer: a retry that
                    # follows it always finds the answer to replay.
                    await record()
            await send(message)

        try:
            await self.app(scope, replay_receive, capture)
        except BaseException:
            if not recorded:
                await to_thread.run_sync(self.store.release, principal, key)
            raise
        if not recorded:
            await record()


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


# The change is committed by the time its answer is stored: a dropped connection here
# must not leave the key in flight (it would run again once stale), so try a few times.
PERSIST_DELAYS = (0.05, 0.2, 1.0, 3.0)


async def _persist(write: Any, *args: Any) -> None:
    for delay in (*PERSIST_DELAYS, None):
        try:
            await to_thread.run_sync(write, *args)
            return
        except DBAPIError:
            if delay is None:
                raise
            log.warning("storing an idempotent answer failed; retrying", exc_info=True)
            await anyio.sleep(delay)


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
