"""Idempotency-Key on every mutating request (R31), kept in the database."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from connects.api.app import create_app
from connects.db import schema
from connects.domain.commands import BuyConnects
from connects.services.verify import verify
from tests.conftest import MakeCtx
from tests.e2e.conftest import Api, settings_for


def count(api: Api, table: Any) -> int:
    with api.ctx.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def stored_keys(api: Api, key: str) -> list[Any]:
    with api.ctx.db.read() as conn:
        table = schema.idempotency_keys
        return list(conn.execute(select(table).where(table.c.key == key)).all())


def snapshot(api: Api) -> dict[str, Any]:
    """Everything a replayed request must leave as it was (R30, R31)."""
    with api.ctx.db.read() as conn:
        accounts = conn.execute(
            select(
                schema.accounts.c.id,
                schema.accounts.c.balance,
                schema.accounts.c.seq,
                schema.accounts.c.earnings_cents,
                schema.accounts.c.low_balance_threshold,
            ).order_by(schema.accounts.c.id)
        ).all()
        jobs = conn.execute(
            select(schema.jobs.c.id, schema.jobs.c.status, schema.jobs.c.connects_required)
        ).all()
        props = conn.execute(select(schema.proposals.c.id, schema.proposals.c.status)).all()
        members = conn.execute(
            select(
                schema.memberships.c.account_id,
                schema.memberships.c.user_id,
                schema.memberships.c.role,
                schema.memberships.c.monthly_budget,
            )
        ).all()
    tables = (
        schema.entries,
        schema.lots,
        schema.purchases,
        schema.gateway_charges,
        schema.grants,
        schema.billing_methods,
        schema.users,
        schema.events,
    )
    return {
        "accounts": [tuple(r) for r in accounts],
        "jobs": sorted(tuple(r) for r in jobs),
        "proposals": sorted(tuple(r) for r in props),
        "members": sorted(tuple(map(str, r)) for r in members),
        "counts": {t.name: count(api, t) for t in tables},
        "breaches": [str(b) for b in verify(api.ctx)],
        "now": api.ctx.now(),
    }


def test_same_key_and_body_replays_the_first_answer(api: Api) -> None:
    agency = api.agency("olga")
    api.earnings(agency, 5_000)
    body = {"quantity": 3, "pay_with": "earnings"}
    url = f"/v1/accounts/{agency}/purchases"
    first = api.call("POST", url, "olga", body, key="buy-1")
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    before = snapshot(api)
    again = api.call("POST", url, "olga", body, key="buy-1")  # R31
    assert again.status_code == 201 and again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert snapshot(api) == before and count(api, schema.purchases) == 1
    # Another key is another purchase.
    assert api.call("POST", url, "olga", body, key="buy-2").json()["id"] != first.json()["id"]


def test_same_key_other_body_or_path_is_refused(api: Api) -> None:
    agency = api.agency("olga")
    api.earnings(agency, 5_000)
    url = f"/v1/accounts/{agency}/purchases"
    api.ok("POST", url, "olga", {"quantity": 1, "pay_with": "earnings"}, key="k")
    for method, path, body in [
        ("POST", url, {"quantity": 2, "pay_with": "earnings"}),
        ("POST", "/v1/jobs", {"title": "T", "connects_required": 1}),
        ("PATCH", f"/v1/accounts/{agency}", {"low_balance_threshold": 1}),
    ]:
        r = api.call(method, path, "olga", body, key="k")
        assert r.status_code == 409, r.text
        assert r.json()["error"]["code"] == "idempotency_key_reused"
    assert count(api, schema.purchases) == 1 and count(api, schema.jobs) == 0


def test_refusals_are_replayed_too(api: Api) -> None:
    solo = api.freelancer("fred")  # 10 Connects
    job = api.job(12)
    body = {
        "job_id": job,
        "account_id": solo,
        "freelancer_id": api.ids["fred"],
        "expected_connects": 12,
    }
    first = api.call("POST", "/v1/proposals", "fred", body, key="p")
    assert first.status_code == 409 and first.json()["error"]["code"] == "insufficient_connects"
    api.earnings(solo, 1_000)
    api.ok(
        "POST", f"/v1/accounts/{solo}/purchases", "fred", {"quantity": 5, "pay_with": "earnings"}
    )
    again = api.call("POST", "/v1/proposals", "fred", body, key="p")
    assert (again.status_code, again.content) == (409, first.content)
    assert api.call("POST", "/v1/proposals", "fred", body, key="p2").status_code == 201


def test_keys_belong_to_one_principal(api: Api) -> None:
    api.person("ann")
    api.person("bob")
    body = {"title": "Same", "connects_required": 1}
    a = api.ok("POST", "/v1/jobs", "ann", body, key="shared")
    b = api.ok("POST", "/v1/jobs", "bob", body, key="shared")
    assert a["id"] != b["id"] and a["client_id"] != b["client_id"]


def test_no_key_is_ever_in_flight(api: Api) -> None:
    """R31: the key's row is written in the commit that makes the change, with its
    answer: no row without an answer is ever committed, so a retry never waits."""
    agency = api.agency("olga")
    api.earnings(agency, 5_000)
    url = f"/v1/accounts/{agency}/purchases"
    api.ok("POST", url, "olga", {"quantity": 3, "pay_with": "earnings"}, key="k1")
    api.call("POST", url, "olga", {"quantity": 10**9, "pay_with": "earnings"}, key="k2")
    with api.ctx.db.read() as conn:
        rows = conn.execute(select(schema.idempotency_keys)).all()
    assert rows and all(r.status_code is not None for r in rows)


def test_a_persons_replay_is_one_statement(api: Api) -> None:
    """R31: who holds the token and their key's stored answer come from one statement
    (a join on the person's label), so a replay reads once; a token nobody holds is
    still 401 with a key."""
    # R31
    from sqlalchemy import Engine, event

    agency = api.agency("olga")
    api.earnings(agency, 5_000)
    url = f"/v1/accounts/{agency}/purchases"
    body = {"quantity": 1, "pay_with": "earnings"}
    first = api.call("POST", url, "olga", body, key="once")
    sent: list[str] = []
    listener = lambda conn, cur, sql, *rest: sent.append(sql)  # noqa: E731
    event.listen(Engine, "before_cursor_execute", listener)  # every engine, once
    try:
        again = api.call("POST", url, "olga", body, key="once")
    finally:
        event.remove(Engine, "before_cursor_execute", listener)
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    assert len(sent) == 1 and "idempotency_keys" in sent[0], sent
    headers = {"Authorization": "Bearer nobody-holds-this", "Idempotency-Key": "once"}
    assert api.client.post(url, json=body, headers=headers).status_code == 401


def test_a_keyed_write_commits_once(api: Api) -> None:
    """R31: with a key, the change and its stored answer are one commit, as many as
    the same write without a key; a read stores nothing."""
    from sqlalchemy import event

    agency = api.agency("olga")
    api.earnings(agency, 5_000)
    commits: list[int] = []
    engine = api.ctx.db.engine
    listener = lambda conn: commits.append(1)  # noqa: E731
    event.listen(engine, "commit", listener)
    try:
        url = f"/v1/accounts/{agency}/purchases"
        body = {"quantity": 1, "pay_with": "earnings"}
        api.ok("POST", url, "olga", body)
        unkeyed, commits[:] = len(commits), []
        api.ok("POST", url, "olga", body, key="one-commit")
        keyed, commits[:] = len(commits), []
        api.ok("GET", f"/v1/accounts/{agency}/connects", "olga", key="a-read")
        read, commits[:] = len(commits), []
        # A proposal goes through group commit: its batch stores the answer.
        jobs = [api.job(2), api.job(2)]
        commits[:] = []
        body = {"account_id": agency, "freelancer_id": api.ids["olga"], "expected_connects": 2}
        api.ok("POST", "/v1/proposals", "olga", {**body, "job_id": jobs[0]})
        proposal, commits[:] = len(commits), []
        api.ok("POST", "/v1/proposals", "olga", {**body, "job_id": jobs[1]}, key="a-proposal")
        keyed_proposal = len(commits)
    finally:
        event.remove(engine, "commit", listener)
    assert (unkeyed, keyed, read) == (1, 1, 0)
    assert (proposal, keyed_proposal) == (1, 1)


def test_a_card_declined_is_stored_with_the_failed_purchase(api: Api) -> None:
    """R31, R18: the failed purchase and the 402 answering it commit together; the
    retry replays it and no second charge is tried."""
    agency = api.agency("olga")
    bad = api.ok(
        "POST", f"/v1/accounts/{agency}/billing-methods", "olga", {"token": "tok_chargeDeclined"}
    )
    url = f"/v1/accounts/{agency}/purchases"
    body = {"quantity": 5, "pay_with": bad["id"]}
    first = api.call("POST", url, "olga", body, key="declined")
    again = api.call("POST", url, "olga", body, key="declined")
    assert first.status_code == 402 and (again.status_code, again.content) == (402, first.content)
    assert again.headers["idempotent-replayed"] == "true"
    assert count(api, schema.purchases) == 1 and count(api, schema.gateway_charges) == 1


def test_bad_key_is_refused(api: Api) -> None:
    api.person("olga")
    body = {"title": "T", "connects_required": 1}
    r = api.call("POST", "/v1/jobs", "olga", body, key="x" * 201)
    assert r.status_code == 422 and r.json()["error"]["details"]["fields"] == ["Idempotency-Key"]


def test_a_server_error_leaves_nothing_and_the_retry_runs_afresh(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R31: a request that fails after it wrote (a 5xx) rolls back whole and stores
    no answer: the retry with its key runs as if it were the first."""
    agency = api.agency("olga")
    api.earnings(agency, 5_000)
    assert api.ctx.bus is not None
    handlers = api.ctx.bus.commands  # type: ignore[attr-defined]
    real = handlers[BuyConnects]

    def broken(cmd: Any, uow: Any) -> Any:
        real(cmd, uow)  # the purchase is written, then the process fails
        raise RuntimeError("the disk is on fire")

    monkeypatch.setitem(handlers, BuyConnects, broken)
    url = f"/v1/accounts/{agency}/purchases"
    body = {"quantity": 1, "pay_with": "earnings"}
    with TestClient(api.client.app, raise_server_exceptions=False) as client:
        h = {**api.headers("olga", "retry-me")}
        r = client.post(url, json=body, headers=h)
        assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
    assert count(api, schema.purchases) == 0 and not stored_keys(api, "retry-me")
    monkeypatch.setitem(handlers, BuyConnects, real)
    r = api.call("POST", url, "olga", body, key="retry-me")
    assert r.status_code == 201 and count(api, schema.purchases) == 1


def test_storing_the_answer_fails_and_nothing_is_committed(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R31: the answer is stored in the change's own commit: when storing it fails (the
    connection drops), the change is rolled back with it, never committed alone."""
    from sqlalchemy.exc import OperationalError

    from connects.db import request

    agency = api.agency("olga")
    api.earnings(agency, 5_000)
    real = request.store_answers
    failures = [OperationalError("INSERT idempotency_keys", {}, Exception("connection lost"))]

    def flaky(*args: Any) -> Any:
        if failures:
            raise failures.pop()
        return real(*args)

    monkeypatch.setattr(request, "store_answers", flaky)
    # A lost connection is otherwise run again on PostgreSQL (test_api_failover.py).
    monkeypatch.setattr(api.ctx.db, "failover_seconds", 0.0)
    before = api.available(agency, "olga")
    url = f"/v1/accounts/{agency}/purchases"
    body = {"quantity": 2, "pay_with": "earnings"}
    with TestClient(api.client.app, raise_server_exceptions=False) as client:
        lost = client.post(url, json=body, headers=api.headers("olga", "flaky"))
    assert lost.status_code >= 500 and not failures
    assert count(api, schema.purchases) == 0 and not stored_keys(api, "flaky")
    first = api.call("POST", url, "olga", body, key="flaky")
    again = api.call("POST", url, "olga", body, key="flaky")
    assert first.status_code == 201 and again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert count(api, schema.purchases) == 1 and api.available(agency, "olga") == before + 2


def test_keys_survive_a_restart(make_ctx: MakeCtx, sqlite_url: str) -> None:
    """The keys live in the database: a new process replays what the old one answered."""
    settings = settings_for(sqlite_url)

    def client() -> TestClient:
        ctx = make_ctx(sqlite_url, operator_token=settings.operator_token)
        return TestClient(create_app(ctx, settings))

    body = {"title": "Once", "connects_required": 1}
    with client() as one:
        token = one.post("/v1/users", json={"name": "Once", "email": "once@x.io"}).json()["token"]
        h = {"Idempotency-Key": "job", "Authorization": f"Bearer {token}"}
        first = one.post("/v1/jobs", json=body, headers=h)
    with client() as two:
        again = two.post("/v1/jobs", json=body, headers=h)
    assert first.status_code == 201 and (again.status_code, again.content) == (201, first.content)


def test_concurrent_requests_with_one_key_buy_once(api: Api) -> None:
    """R31, R23: racing duplicates: one purchase; every other one replays its answer."""
    agency = api.agency("olga")
    api.earnings(agency, 100_000)
    url = f"/v1/accounts/{agency}/purchases"
    body = {"quantity": 7, "pay_with": "earnings"}
    answers: list[tuple[int, bytes]] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def one() -> None:
        start.wait()
        r = api.call("POST", url, "olga", body, key="race")
        with lock:
            answers.append((r.status_code, r.content))

    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert count(api, schema.purchases) == 1
    # Every twin waits for the first to commit, then replays its answer.
    assert {status for status, _ in answers} == {201}
    assert len({content for _, content in answers}) == 1
    assert api.available(agency, "olga") == 87


# -- 100 random mutating requests, replayed --------------------------------------------


class Traffic:
    """Random mutating requests over a small agency, each with its own key."""

    def __init__(self, api: Api, seed: int) -> None:
        self.api = api
        self.rng = random.Random(seed)
        self.agency = api.agency("olga", ada="admin", max="manager", mia="member")
        self.solo = api.freelancer("fred")
        api.person("client")
        api.earnings(self.agency, 20_000)
        card = {"token": "tok_visa"}
        self.card = api.ok("POST", f"/v1/accounts/{self.agency}/billing-methods", "olga", card)
        bad = {"token": "tok_chargeDeclined"}
        self.bad = api.ok("POST", f"/v1/accounts/{self.agency}/billing-methods", "olga", bad)
        self.jobs = [api.job(self.rng.randint(1, 9)) for _ in range(4)]
        self.proposals: list[str] = []
        self.sent: list[tuple[str, str, str | None, bytes, str, int, bytes]] = []

    def request(self, i: int) -> None:
        rng, a = self.rng, self.agency
        members = ["olga", "ada", "max", "mia"]
        kind = rng.choice(
            ["propose"] * 5
            + ["buy"] * 3
            + ["price", "end", "withdraw", "budget", "job", "member", "patch", "topup", "clock"]
        )
        who: str | None = rng.choice(members)
        method = "POST"
        body: Any
        if kind == "propose":
            who = rng.choice([*members, "fred"])
            job = rng.choice(self.jobs)
            price = self.api.ok("GET", f"/v1/jobs/{job}", "olga")["connects_required"]
            account = self.solo if who == "fred" else a
            path = "/v1/proposals"
            body = {
                "job_id": job,
                "account_id": account,
                "freelancer_id": self.api.ids[who],
                "expected_connects": price if rng.random() < 0.85 else price + 1,
            }
        elif kind == "buy":
            pay = rng.choice(["earnings", self.card["id"], self.bad["id"], "default"])
            path, body = (
                f"/v1/accounts/{a}/purchases",
                {"quantity": rng.randint(1, 30), "pay_with": pay},
            )
        elif kind == "price":
            who, method = "client", "PATCH"
            path, body = (
                f"/v1/jobs/{rng.choice(self.jobs)}",
                {"connects_required": rng.randint(1, 9)},
            )
        elif kind == "end":
            who = "client"
            job = rng.choice(self.jobs)
            path, body = f"/v1/jobs/{job}/{rng.choice(['cancel', 'close'])}", None
            self.jobs.append(self.api.job(rng.randint(1, 9)))
        elif kind == "withdraw" and self.proposals:
            who = rng.choice(["mia", "olga"])
            path, body = f"/v1/proposals/{rng.choice(self.proposals)}/withdraw", None
        elif kind == "budget":
            member = rng.choice(["mia", "max"])
            method, path = "PUT", f"/v1/accounts/{a}/members/{self.api.ids[member]}/budget"
            body = {"monthly_connects": rng.choice([None, 5, 20, 100])}
        elif kind == "member":
            role = rng.choice(["admin", "manager", "member"])
            method, path = "PATCH", f"/v1/accounts/{a}/members/{self.api.ids['max']}"
            body = {"role": role}
        elif kind == "patch":
            method, path, body = (
                "PATCH",
                f"/v1/accounts/{a}",
                {"low_balance_threshold": rng.randint(0, 9)},
            )
        elif kind == "topup":
            method, path, body = (
                "PUT",
                f"/v1/accounts/{a}/auto-topup",
                {"per_month": rng.randint(0, 500)},
            )
        elif kind == "clock":
            who, path, body = "operator", "/v1/admin/clock", {"advance": f"PT{rng.randint(1, 48)}H"}
        else:
            path, body = "/v1/jobs", {"title": f"Job {i}", "connects_required": rng.randint(1, 9)}
            who = "client"
        key = f"key-{i}"
        content = b"" if body is None else json.dumps(body).encode()
        r = self._send(method, path, who, content, key)
        if kind == "propose" and r.status_code == 201:
            self.proposals.append(r.json()["id"])
        if path == "/v1/jobs" and r.status_code == 201:
            self.jobs.append(r.json()["id"])
        self.sent.append((method, path, who, content, key, r.status_code, r.content))

    def _send(self, method: str, path: str, who: str | None, content: bytes, key: str) -> Any:
        headers = self.api.headers(who, key)
        if content:
            headers["Content-Type"] = "application/json"
        return self.api.client.request(method, path, content=content or None, headers=headers)


@pytest.fixture
def traffic(api: Api) -> Iterator[Traffic]:
    # The traffic moves the clock by days; every answer is kept past those moves, so
    # each one is there to replay (the retention itself: test_idempotency_secrets).
    api.ctx.idempotency_retention_hours = 24 * 3650
    yield Traffic(api, seed=31)


def test_replaying_100_random_requests_changes_nothing(api: Api, traffic: Traffic) -> None:
    """R31: 100 random mutating requests, then all again with their keys: same answers,
    and the ledger, the balances and the entry counts exactly as they were (R30)."""
    for i in range(100):
        traffic.request(i)
    statuses = {s for *_, s, _ in traffic.sent}
    assert 201 in statuses and 409 in statuses  # a real mix of successes and refusals
    before = snapshot(api)
    assert before["breaches"] == []
    replay = list(traffic.sent)
    random.Random(7).shuffle(replay)
    for method, path, who, content, key, status, body in replay:
        r = traffic._send(method, path, who, content, key)
        assert (r.status_code, r.content) == (status, body), (method, path, key)
        assert r.headers["idempotent-replayed"] == "true"
    assert snapshot(api) == before


def test_every_mutating_route_is_answered_in_its_commit(api: Api) -> None:
    """R31: every POST, PUT, PATCH and DELETE of the API stores its keyed answer in the
    transaction of its change (connects.api.answers), none the old way."""
    from fastapi.routing import APIRoute

    from connects.api.answers import MUTATING, AnsweredRoute

    def walk(routes: list[Any]) -> Iterator[Any]:
        for r in routes:
            included = getattr(r, "original_router", None)  # FastAPI's included router
            yield from walk(included.routes) if included is not None else (r,)

    app: Any = api.client.app
    mutating = [
        r for r in walk(app.routes) if isinstance(r, APIRoute) and set(r.methods) & MUTATING
    ]
    api_routes = [r for r in mutating if r.path.startswith("/v1")]
    assert len(api_routes) > 20
    unanswered = [
        f"{sorted(r.methods)} {r.path}"
        for r in api_routes
        if not (isinstance(r, AnsweredRoute) and r.answered)
    ]
    assert unanswered == []
