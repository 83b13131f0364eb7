"""Secrets never enter stored idempotent answers, and stored answers end (R51, R31)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from connects.db import schema
from connects.services.due import run_due
from tests.e2e.conftest import Api, error


def stored(api: Api) -> list[str]:
    with api.ctx.db.read() as conn:
        rows = conn.execute(select(schema.idempotency_keys.c.response_body)).scalars()
        return [r or "" for r in rows]


def keys(api: Api) -> set[str]:
    with api.ctx.db.read() as conn:
        return set(conn.execute(select(schema.idempotency_keys.c.key)).scalars())


def test_a_sign_up_replay_does_not_show_the_token_again(api: Api) -> None:
    # R51: the first answer has the token; its replay is refused, and no row holds it
    body = {"name": "Vic", "email": "vic@r51.io"}
    first = api.call("POST", "/v1/users", None, body, key="signup-r51")
    assert first.status_code == 201, first.text
    token = first.json()["token"]
    again = api.call("POST", "/v1/users", None, body, key="signup-r51")
    assert again.status_code == 409 and error(again)["code"] == "secret_shown_once"
    assert token not in again.text and "vic@r51.io" not in again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert not any(token in answer for answer in stored(api))
    # The refusal is stable, and the person was made once.
    assert api.call("POST", "/v1/users", None, body, key="signup-r51").content == again.content
    with api.ctx.db.read() as conn:
        made = conn.execute(select(schema.users.c.id).where(schema.users.c.email == "vic@r51.io"))
        assert len(made.all()) == 1


def test_a_webhook_secret_is_never_stored_in_an_answer(api: Api) -> None:
    # R51: a generated signing secret is shown once; other answers replay as before
    agency = api.agency("olga")
    url = f"/v1/accounts/{agency}/channels"
    hook = {"kind": "webhook", "target": "https://hooks.example.com/connects"}
    first = api.call("POST", url, "olga", hook, key="hook-1")
    assert first.status_code == 201, first.text
    secret = first.json()["secret"]
    assert secret.startswith("whsec_")
    again = api.call("POST", url, "olga", hook, key="hook-1")
    assert again.status_code == 409 and error(again)["code"] == "secret_shown_once"
    assert not any(secret in answer for answer in stored(api))
    # A refusal carries no secret: replayed as it was (R31).
    bad = {"kind": "webhook", "target": "https://hooks.example.com/x", "events": []}
    refused = api.call("POST", url, "olga", bad, key="hook-2")
    assert refused.status_code == 422
    assert api.call("POST", url, "olga", bad, key="hook-2").content == refused.content


def test_stored_answers_are_deleted_after_their_retention(api: Api) -> None:
    # R51: the due work deletes keys older than CONNECTS_IDEMPOTENCY_RETENTION_HOURS
    assert api.ctx.idempotency_retention_hours == 24  # the default
    api.person("ann")
    job = {"title": "Old", "connects_required": 1}
    first = api.ok("POST", "/v1/jobs", "ann", job, key="old")
    api.ctx.clock.advance(timedelta(hours=23))  # type: ignore[attr-defined]
    api.ok("POST", "/v1/jobs", "ann", {"title": "New", "connects_required": 1}, key="new")
    kept = keys(api)
    assert run_due(api.ctx)["idempotency_purged"] == 0
    api.ctx.clock.advance(timedelta(hours=2))  # type: ignore[attr-defined]
    assert run_due(api.ctx)["idempotency_purged"] == len(kept) - 1
    assert keys(api) == {"new"}
    # The old key is free again: the same request runs anew (a retry past the retention).
    assert api.ok("POST", "/v1/jobs", "ann", job, key="old")["id"] != first["id"]
