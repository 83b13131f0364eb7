"""Keyed writes answered in the commit that makes them (R31).

The idempotency middleware (:mod:`connects.api.idempotency`) looks the key up before
the route runs: a stored answer is replayed there. Otherwise it leaves the request's
:class:`~connects.db.request.KeySlot` in :data:`KEYED`, and the route, an
:class:`AnsweredRoute` like every API route, runs its endpoint inside the request's
one transaction (:mod:`connects.db.request`), renders the answer as FastAPI would,
and stores it in that transaction just before the commit:

- a success commits the change and its answer together;
- a refusal (a :class:`~connects.domain.errors.ConnectsError`, 4xx) is stored too, with
  whatever the request committed before it was refused; a 429 is not (it passes);
- an answer that shows a secret once (``secret_shown_once``) stores the refusal
  ``secret_shown_once`` instead (R51);
- anything else (a 5xx, a crash) rolls everything back and stores nothing: a retry
  runs afresh;
- another request with the key committed first: everything is rolled back and its
  answer replayed;
- the database was lost (a PostgreSQL failover): the request runs again once a new
  primary answers, for up to ``CONNECTS_DB_FAILOVER_SECONDS`` (:func:`answer_keyed`).

Every API router is built with ``route_class=AnsweredRoute``;
``tests/e2e/test_api_idempotency.py`` checks that every mutating route is answered.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from fastapi.datastructures import DefaultPlaceholder
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import ResponseValidationError
from fastapi.routing import APIRoute
from starlette.responses import JSONResponse, Response

from connects.api.errors import IdempotencyKeyReused, SecretShownOnce, connects_error_response
from connects.api.errors import error_body as _error_body
from connects.db.engine import Database
from connects.db.failover import Retry
from connects.db.request import Answer, KeySlot, KeyTaken, as_answer, stored
from connects.domain.errors import ConnectsError

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
REPLAYED = "Idempotent-Replayed"

# Set by the idempotency middleware for a keyed request it did not answer itself.
KEYED: ContextVar[tuple[Database, KeySlot] | None] = ContextVar("connects_keyed", default=None)


def respond(answer: Answer, *, replayed: bool = False) -> Response:
    headers = {REPLAYED: "true"} if replayed else None
    return Response(answer.body, answer.status, headers, answer.content_type)


def replay(db: Database, slot: KeySlot) -> Response:
    """The answer another request with this key committed (its own, or 409 reused)."""
    with db.lookup() as conn:
        row = stored(conn, slot.principal, slot.key)
    if row is None:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used with another request", idempotency_key=slot.key
        )
    return _replayed(slot, row)


def error_answer(exc: ConnectsError) -> Answer:
    rendered = connects_error_response(exc)
    return Answer(rendered.status_code, bytes(rendered.body), "application/json")


def _secret_refusal(slot: KeySlot) -> Answer:
    body = _error_body(
        SecretShownOnce.code,
        "the first answer to this Idempotency-Key carried a secret, shown only once",
        {"idempotency_key": slot.key},
    )
    return Answer(SecretShownOnce.status, bytes(JSONResponse(body).body), "application/json")


def answer_keyed(
    db: Database, slot: KeySlot, call: Callable[[], Any], render: Callable[[Any], Answer]
) -> Any:
    """Run ``call`` as the keyed request ``slot`` (see the module's docstring).

    When the database is lost mid-request (a PostgreSQL failover: the primary died or
    became a standby), the request is run again on a fresh connection for up to
    ``db.failover_seconds`` (:class:`~connects.db.failover.Retry`). That is safe only
    because the request is keyed: its one transaction either committed with its answer
    (the retry finds it and replays it) or left nothing behind. A card purchase's own
    commits (the pending row, the gateway's charge) are named by the key, so the re-run
    finishes that purchase and charge instead of making another.
    """
    slot.render = render
    retry = Retry(db.failover_seconds)
    while True:
        try:
            if retry.tries:
                # The lost run may have committed, its answer lost on the way back.
                with db.lookup() as conn:
                    row = stored(conn, slot.principal, slot.key)
                if row is not None:
                    return _replayed(slot, row)
            return _answer_once(db, slot, call, render)
        except Exception as error:
            if not retry.again(error):
                raise


def _replayed(slot: KeySlot, row: Any) -> Response:
    if not slot.asks_as(row):
        raise IdempotencyKeyReused(
            "this Idempotency-Key was used with another request", idempotency_key=slot.key
        )
    return respond(as_answer(row), replayed=True)


def _answer_once(
    db: Database, slot: KeySlot, call: Callable[[], Any], render: Callable[[Any], Answer]
) -> Any:
    with db.request(slot) as write:
        try:
            raw = call()
        except KeyTaken:
            write.abort()
            return replay(db, slot)
        except ConnectsError as refusal:
            if refusal.status == 429:
                write.abort()
                raise
            try:
                write.finish(slot.answer or error_answer(refusal))
            except KeyTaken:
                return replay(db, slot)
            raise
        except BaseException:
            write.abort()
            raise
        try:
            answer = slot.answer or render(raw)  # a group commit may have stored it
        except BaseException:
            write.abort()
            raise
        try:
            write.finish(_secret_refusal(slot) if slot.secret else answer)
        except KeyTaken:
            return replay(db, slot)
        return respond(answer)


class AnsweredRoute(APIRoute):
    """An API route whose keyed writes store their answer in their own commit."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        methods = {m.upper() for m in kwargs.get("methods") or ()}
        self.answered = bool(methods & MUTATING) and not inspect.iscoroutinefunction(endpoint)
        if self.answered:
            endpoint = self._answering(endpoint)
        super().__init__(path, endpoint, **kwargs)

    def _answering(self, endpoint: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(endpoint)
        def answered(*args: Any, **kwargs: Any) -> Any:
            keyed = KEYED.get()
            if keyed is None or keyed[1].render is not None:
                return endpoint(*args, **kwargs)
            db, slot = keyed
            return answer_keyed(db, slot, lambda: endpoint(*args, **kwargs), self.render)

        return answered

    def render(self, raw: Any) -> Answer:
        """What the endpoint returned, as FastAPI would send it."""
        if isinstance(raw, Response):
            return Answer(raw.status_code, bytes(raw.body), raw.headers.get("content-type"))
        status = self.status_code or 200
        field = self.response_field
        if field is None:
            return Answer(status, bytes(JSONResponse(jsonable_encoder(raw)).body))
        value, errors = field.validate(raw, {}, loc=("response",))
        if errors:
            raise ResponseValidationError(errors=errors, body=raw)
        options: dict[str, Any] = {
            "include": self.response_model_include,
            "exclude": self.response_model_exclude,
            "by_alias": self.response_model_by_alias,
            "exclude_unset": self.response_model_exclude_unset,
            "exclude_defaults": self.response_model_exclude_defaults,
            "exclude_none": self.response_model_exclude_none,
        }
        if isinstance(self.response_class, DefaultPlaceholder):
            return Answer(status, bytes(field.serialize_json(value, **options)))
        rendered = self.response_class(field.serialize(value, **options), status_code=status)
        return Answer(status, bytes(rendered.body), rendered.headers.get("content-type"))
