"""Fixtures for the HTTP tests: the app on SQLite and PostgreSQL, and a small HTTP cast.

``api`` runs each test on both databases (like ``any_ctx``), with the simulated clock
of ``tests/conftest.py``; ``api_sqlite`` only on SQLite (slow or process-level tests).
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from connects.api.app import create_app
from connects.config import Settings
from connects.services.context import Context
from tests.conftest import MakeCtx

OPERATOR_TOKEN = "operator-token-for-tests"
BM_TOKEN = "business-manager-token-for-tests"
_emails = itertools.count(1)
# CONNECTS_TEST_KEY_EVERY_WRITE=1 sends an Idempotency-Key with every write the API
# tests make, so the whole e2e suite runs through the keyed path (R31).
KEY_EVERY_WRITE = os.environ.get("CONNECTS_TEST_KEY_EVERY_WRITE") == "1"
_auto_keys = itertools.count(1)


def error(r: object) -> dict[str, object]:
    body = r.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]  # type: ignore[no-any-return]


@dataclass
class Api:
    """A test client on the app, and helpers that build a cast through HTTP."""

    client: TestClient
    ctx: Context
    settings: Settings
    tokens: dict[str, str] = field(default_factory=dict)  # name -> bearer token
    ids: dict[str, str] = field(default_factory=dict)  # name -> user id

    # -- requests -------------------------------------------------------------------

    def headers(self, who: str | None, key: str | None = None) -> dict[str, str]:
        """Headers for ``who`` (a cast name, ``operator``, ``bm``, or None: no token)."""
        out: dict[str, str] = {}
        if who == "operator":
            out["Authorization"] = f"Bearer {OPERATOR_TOKEN}"
        elif who == "bm":
            out["Authorization"] = f"Bearer {BM_TOKEN}"
        elif who is not None:
            out["Authorization"] = f"Bearer {self.tokens[who]}"
        if key is not None:
            out["Idempotency-Key"] = key
        return out

    def call(
        self,
        method: str,
        path: str,
        who: str | None,
        body: Any = None,
        *,
        key: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> Any:
        content = None if body is None else json.dumps(body).encode()
        if key is None and KEY_EVERY_WRITE and method != "GET":
            key = f"auto-{next(_auto_keys)}"  # the whole suite through keyed writes (R31)
        headers = self.headers(who, key)
        if content is not None:
            headers["Content-Type"] = "application/json"
        return self.client.request(method, path, content=content, headers=headers, params=params)

    def ok(self, method: str, path: str, who: str | None, body: Any = None, **kw: Any) -> Any:
        """The JSON of a 2xx answer (fails the test otherwise)."""
        r = self.call(method, path, who, body, **kw)
        assert r.status_code < 300, (r.status_code, r.text)
        return r.json() if r.content else None

    # -- the cast ---------------------------------------------------------------------

    def person(self, name: str) -> str:
        email = f"{name}.{next(_emails)}@test.connects"
        user = self.ok("POST", "/v1/users", None, {"name": name.title(), "email": email})
        self.tokens[name] = user["token"]
        self.ids[name] = user["id"]
        return str(user["id"])

    def agency(self, owner: str, plan: str = "agency-plus", **members: str) -> str:
        """An agency of ``owner`` with ``name=role`` members (people made as needed)."""
        if owner not in self.tokens:
            self.person(owner)
        account = self.ok(
            "POST", "/v1/accounts", owner, {"kind": "agency", "name": f"{owner} co", "plan": plan}
        )
        for name, role in members.items():
            if name not in self.tokens:
                self.person(name)
            self.join(owner, str(account["id"]), name, role)
        return str(account["id"])

    def join(self, inviter: str, account_id: str, name: str, role: str) -> None:
        """``name`` joins the agency the only way there is: invited, then accepting (R49)."""
        body = {"user_id": self.ids[name], "role": role}
        invitation = self.ok("POST", f"/v1/accounts/{account_id}/members", inviter, body)
        self.ok("POST", f"/v1/invitations/{invitation['id']}/accept", name)

    def freelancer(self, name: str, plan: str = "freelancer-basic") -> str:
        if name not in self.tokens:
            self.person(name)
        body = {"kind": "freelancer", "name": f"{name} solo", "plan": plan}
        return str(self.ok("POST", "/v1/accounts", name, body)["id"])

    def job(self, price: int, client: str = "client") -> str:
        if client not in self.tokens:
            self.person(client)
        body = {"title": "A job", "connects_required": price}
        return str(self.ok("POST", "/v1/jobs", client, body)["id"])

    def propose(
        self, who: str, job_id: str, account_id: str, *, freelancer: str | None = None
    ) -> Any:
        price = self.ok("GET", f"/v1/jobs/{job_id}", who)["connects_required"]
        body = {
            "job_id": job_id,
            "account_id": account_id,
            "freelancer_id": self.ids[freelancer or who],
            "expected_connects": price,
        }
        return self.call("POST", "/v1/proposals", who, body)

    def earnings(self, account_id: str, cents: int) -> None:
        self.ok("POST", f"/v1/admin/accounts/{account_id}/earnings", "operator", {"amount": cents})

    def available(self, account_id: str, who: str) -> int:
        return int(self.ok("GET", f"/v1/accounts/{account_id}/connects", who)["available"])


def settings_for(url: str, **extra: Any) -> Settings:
    return Settings(
        database_url=url,
        operator_token=OPERATOR_TOKEN,
        business_manager_token=BM_TOKEN,
        **{"allow_private_webhooks": True, **extra},  # receivers on this machine (R50)
    )


def _api(make_ctx: MakeCtx, url: str) -> Iterator[Api]:
    settings = settings_for(url)
    ctx = make_ctx(url, operator_token=OPERATOR_TOKEN, business_manager_token=BM_TOKEN)
    with TestClient(create_app(ctx, settings)) as client:
        yield Api(client, ctx, settings)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def api(request: pytest.FixtureRequest, make_ctx: MakeCtx, tmp_path: Path) -> Iterator[Api]:
    """The app over HTTP, on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'connects.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    yield from _api(make_ctx, url)


@pytest.fixture
def api_sqlite(make_ctx: MakeCtx, sqlite_url: str) -> Iterator[Api]:
    """The app over HTTP on SQLite only."""
    yield from _api(make_ctx, sqlite_url)
