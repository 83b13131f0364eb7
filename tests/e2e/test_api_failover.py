"""Following a PostgreSQL failover inside one request (connects.db.failover, R31).

The faults are real where the test can make them: the request's own backend is
terminated (``pg_terminate_backend``) just as it runs a given statement, or the
connection it got refuses writes as a standby does (``25006``). A keyed request runs
again on a fresh connection and commits once; a card purchase is charged once; an
unkeyed write is never repeated (503 ``database_unavailable``). The whole failover,
with two servers and a promotion, is tests/reliability/test_failover.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.exc import OperationalError

from connects.db import engine as engine_module
from connects.db import schema
from connects.db.engine import Database
from connects.db.urls import sqlalchemy_url
from tests.conftest import PG_URL, MakeCtx, requires_pg
from tests.e2e.conftest import Api, _api

pytestmark = [pytest.mark.postgres, requires_pg]


@pytest.fixture
def pg_api(make_ctx: MakeCtx, pg_url: str) -> Iterator[Api]:
    yield from _api(make_ctx, pg_url)


def count(api: Api, table: Any, *where: Any) -> int:
    with api.ctx.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


class KillAt:
    """Terminates the backend of the connection that runs the first statement starting
    with ``prefix`` (``times`` times), just before it runs: the server is gone."""

    def __init__(self, api: Api, prefix: str, times: int = 1) -> None:
        self.prefix, self.left, self.killed = prefix.lower(), times, 0
        self.engine = api.ctx.db.engine
        assert PG_URL
        self.admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT", pool_size=1)

    def __enter__(self) -> KillAt:
        event.listen(self.engine, "before_cursor_execute", self._hook)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._hook)
        self.admin.dispose()

    def _hook(self, conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if self.left <= 0 or not statement.lstrip().lower().startswith(self.prefix):
            return
        self.left -= 1
        pid = conn.connection.dbapi_connection.info.backend_pid
        with self.admin.connect() as admin:
            admin.execute(text("SELECT pg_terminate_backend(:p, 5000)"), {"p": pid})
        self.killed += 1


def test_a_keyed_proposal_whose_server_died_runs_again_once(pg_api: Api) -> None:
    # R31, R14: the backend dies as the proposal is inserted; the request runs again on
    # a new connection: one proposal, one spend, the key answered once.
    api = pg_api
    acct = api.freelancer("fred", plan="freelancer-plus")
    api.earnings(acct, 10_000)
    api.ok(
        "POST", f"/v1/accounts/{acct}/purchases", "fred", {"quantity": 20, "pay_with": "earnings"}
    )
    job = api.job(3)
    body = {
        "job_id": job,
        "account_id": acct,
        "freelancer_id": api.ids["fred"],
        "expected_connects": 3,
    }
    with KillAt(api, "insert into proposals") as fault:
        r = api.call("POST", "/v1/proposals", "fred", body, key="dies-once")
    assert fault.killed == 1
    assert r.status_code == 201, r.text
    assert count(api, schema.proposals) == 1
    assert count(api, schema.entries, schema.entries.c.kind == "spend") == 1
    again = api.call("POST", "/v1/proposals", "fred", body, key="dies-once")
    assert again.content == r.content and again.headers["idempotent-replayed"] == "true"


def test_a_keyed_card_purchase_is_charged_once_across_a_lost_server(pg_api: Api) -> None:
    # R17, R23, R31: the server dies after the gateway took the charge, as the purchase
    # is completed. The re-run finds the purchase its key names and finishes it with
    # the same gateway key: one purchase, one charge, one credit.
    api = pg_api
    agency = api.agency("olga")
    card = api.ok("POST", f"/v1/accounts/{agency}/billing-methods", "olga", {"token": "tok_visa"})
    before = api.available(agency, "olga")
    url = f"/v1/accounts/{agency}/purchases"
    body = {"quantity": 7, "pay_with": card["id"]}
    with KillAt(api, "update purchases") as fault:
        r = api.call("POST", url, "olga", body, key="card-once")
    assert fault.killed == 1
    assert r.status_code == 201 and r.json()["status"] == "succeeded", r.text
    assert count(api, schema.purchases) == 1
    assert count(api, schema.gateway_charges) == 1
    assert count(api, schema.entries, schema.entries.c.kind == "purchase") == 1
    assert api.available(agency, "olga") == before + 7


def test_an_unkeyed_write_is_not_repeated(pg_api: Api) -> None:
    # R31: without a key nothing says a second run is the same request: 503, nothing
    # written, and the next request gets a working connection.
    api = pg_api
    agency = api.agency("olga")
    api.earnings(agency, 5_000)
    url = f"/v1/accounts/{agency}/purchases"
    body = {"quantity": 2, "pay_with": "earnings"}
    with (
        KillAt(api, "insert into purchases") as fault,
        TestClient(api.client.app, raise_server_exceptions=False) as client,
    ):
        r = client.post(url, json=body, headers=api.headers("olga"))
    assert fault.killed == 1
    assert r.status_code == 503 and r.json()["error"]["code"] == "database_unavailable"
    assert r.headers["retry-after"] == "1"
    assert count(api, schema.purchases) == 0
    assert api.ok("POST", url, "olga", body)["status"] == "succeeded"


def test_a_connection_to_a_standby_is_dropped_and_the_keyed_write_goes_on(pg_api: Api) -> None:
    # A server that became a standby refuses writes (25006): the connection and the
    # pool's older ones are dropped, the keyed request runs again on a new connection.
    api = pg_api
    agency = api.agency("olga")
    api.earnings(agency, 5_000)
    api.ctx.db.engine.pool.dispose()  # the next connection is the "standby"'s
    made: list[int] = []

    def read_only_first(dbapi_conn: Any, _record: Any) -> None:
        made.append(1)
        if len(made) == 1:
            with dbapi_conn.cursor() as cur:
                cur.execute("SET default_transaction_read_only = on")
            dbapi_conn.commit()

    engine = api.ctx.db.engine
    event.listen(engine, "connect", read_only_first)
    try:
        url = f"/v1/accounts/{agency}/purchases"
        r = api.call("POST", url, "olga", {"quantity": 3, "pay_with": "earnings"}, key="standby")
    finally:
        event.remove(engine, "connect", read_only_first)
    assert r.status_code == 201, r.text
    assert len(made) >= 2  # the read-only connection was not used again
    assert count(api, schema.purchases) == 1


def test_a_keyed_write_whose_commit_answer_was_lost_replays(
    pg_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # R31: the commit reached the server, then the connection broke before the answer
    # came back. The re-run finds the key's stored answer and replays it: nothing twice.
    api = pg_api
    agency = api.agency("olga")
    api.earnings(agency, 5_000)
    before = api.available(agency, "olga")
    real = engine_module.Write.commit
    lost = [1]

    def commit_then_lose(self: Any) -> None:
        real(self)
        if lost and self.conn is not None:
            lost.pop()
            raise OperationalError("COMMIT", {}, Exception("server closed the connection"))

    monkeypatch.setattr(engine_module.Write, "commit", commit_then_lose)
    url = f"/v1/accounts/{agency}/purchases"
    r = api.call("POST", url, "olga", {"quantity": 4, "pay_with": "earnings"}, key="lost-answer")
    assert not lost and r.status_code == 201, r.text
    assert r.headers.get("idempotent-replayed") == "true"
    assert count(api, schema.purchases) == 1 and api.available(agency, "olga") == before + 4


def test_a_multi_host_url_reaches_the_server_that_answers() -> None:
    # libpq's multi-host URL (the first host is down): a connection is made to the next.
    assert PG_URL
    url = sqlalchemy_url(PG_URL)
    start = url.index("@") + 1
    end = url.index("/", start)
    dead = "127.0.0.1:1"  # nothing listens on port 1
    multi = f"{url[:start]}{dead},{url[start:end]}{url[end:]}"
    multi += ("&" if "?" in multi else "?") + "target_session_attrs=read-write"
    db = Database(multi, failover_seconds=5)
    try:
        began = time.monotonic()
        with db.read() as conn:
            assert conn.execute(text("SELECT pg_is_in_recovery()")).scalar_one() is False
        assert time.monotonic() - began < 5
        args = db.engine.dialect.create_connect_args(db.engine.url)[1]
        assert args["host"].startswith("127.0.0.1,") and args["port"].startswith("1,")
    finally:
        db.dispose()
