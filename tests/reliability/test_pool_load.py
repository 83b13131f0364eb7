"""200 concurrent requests through a pool of 2 + 2 connections on PostgreSQL.

Half are proposals that need a just-in-time top-up (R22), half are card purchases
(R17), all over HTTP with an ``Idempotency-Key`` and on the simulated clock kept in the
database, so every clock read is a checkout of its own. A request that held one pooled
connection while it waited for another would starve the pool: four such requests and
none of the others can go on until the pool's wait times out with a 500. So every
thread is watched as it checks connections out, and it never holds two; no answer is a
5xx; every committed change got its answer; nothing is charged twice (R23, R31).
"""

from __future__ import annotations

import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select

from connects.api.app import create_app
from connects.bootstrap import build
from connects.db.schema import gateway_charges, proposals, purchases, topups
from connects.services.context import Context
from connects.services.verify import verify
from tests.conftest import PG_SKIP_REASON, PG_URL
from tests.e2e.conftest import Api, settings_for

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason=PG_SKIP_REASON),
]

REQUESTS = 200  # half proposals, half purchases
AGENCIES = 4
PRICE = 30  # 80 granted at opening: the third proposal of an agency needs a top-up
DEADLINE = 150.0  # seconds; a starved pool answers 500 after its 30 s wait
REFUSALS = {"insufficient_connects"}  # a top-up that could not buy in time


class CheckoutWatch:
    """Records every checkout made by a thread that already holds a connection."""

    def __init__(self) -> None:
        self._held = threading.local()
        self.nested: list[str] = []
        self.most = 0

    def install(self, ctx: Context) -> None:
        @event.listens_for(ctx.db.engine, "checkout")
        def _out(*_: Any) -> None:
            held = getattr(self._held, "n", 0) + 1
            self._held.n = held
            self.most = max(self.most, held)
            if held > 1:
                self.nested.append("".join(traceback.format_stack(limit=12)))

        @event.listens_for(ctx.db.engine, "checkin")
        def _in(*_: Any) -> None:
            self._held.n = getattr(self._held, "n", 1) - 1


@pytest.fixture
def api(pg_url: str) -> Iterator[tuple[Api, CheckoutWatch]]:
    settings = settings_for(pg_url, clock="simulated", db_pool_size=2, db_pool_overflow=2)
    ctx = build(settings, migrate=True)
    watch = CheckoutWatch()
    watch.install(ctx)
    try:
        with TestClient(create_app(ctx, settings)) as client:
            yield Api(client, ctx, settings), watch
    finally:
        ctx.db.dispose()


def _agency(api: Api, i: int) -> tuple[str, str, str]:
    """An agency with a card, the top-up manager's grant and just-in-time top-up on."""
    owner = f"owner{i}"
    account_id = api.agency(owner)
    card = api.ok(
        "POST", f"/v1/accounts/{account_id}/billing-methods", owner, {"token": "tok_visa"}
    )
    grant = {"grantee": "topup-manager", "permissions": ["connects:purchase"]}
    api.ok("POST", f"/v1/accounts/{account_id}/grants", owner, grant)
    limits = {"enabled": True, "just_in_time": True, "per_topup": 40, "per_month": 100_000}
    api.ok("PUT", f"/v1/accounts/{account_id}/auto-topup", owner, limits)
    return owner, account_id, str(card["id"])


def _load(api: Api, work: list[tuple[str, str, str, Any]]) -> list[tuple[str, int, Any]]:
    """Every request at once (released together); ``(what, status, body)`` each."""
    gate = threading.Barrier(len(work))
    out: list[tuple[str, int, Any]] = [("", 0, None)] * len(work)

    def run(i: int) -> None:
        what, owner, path, body = work[i]
        gate.wait(timeout=60)
        r = api.call("POST", path, owner, body, key=uuid.uuid4().hex)
        try:
            answer = r.json()
        except ValueError:  # cut off mid-body
            answer = {"unreadable": r.text}
        out[i] = (what, r.status_code, answer)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(work))]
    for t in threads:
        t.start()
    deadline = time.monotonic() + DEADLINE
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
    if any(t.is_alive() for t in threads):
        pytest.fail(f"requests still waiting after {DEADLINE} s: the pool is deadlocked")
    return out


def test_two_hundred_requests_through_a_pool_of_four(api: tuple[Api, CheckoutWatch]) -> None:
    # R17, R22, R23, R31: no request holds two connections, none answers 5xx, every
    # committed proposal and purchase got its answer, and nothing is charged twice.
    http, watch = api
    agencies = [_agency(http, i) for i in range(AGENCIES)]
    jobs = [http.job(PRICE) for _ in range(REQUESTS // 2)]
    work: list[tuple[str, str, str, Any]] = []
    for i, job_id in enumerate(jobs):
        owner, account_id, card = agencies[i % AGENCIES]
        proposal = {
            "job_id": job_id,
            "account_id": account_id,
            "freelancer_id": http.ids[owner],
            "expected_connects": PRICE,
        }
        work.append(("proposal", owner, "/v1/proposals", proposal))
        purchase = {"quantity": 5, "pay_with": card}
        work.append(("purchase", owner, f"/v1/accounts/{account_id}/purchases", purchase))
    watch.nested.clear()
    watch.most = 0

    answers = _load(http, work)

    failures = [a for a in answers if a[1] >= 500 or "unreadable" in a[2]]
    assert failures == []
    refused = Counter(a[2]["error"]["code"] for a in answers if a[1] >= 300)
    assert set(refused) <= REFUSALS, refused
    assert watch.nested == [], f"{len(watch.nested)} nested checkouts; first:\n{watch.nested[0]}"
    assert watch.most == 1

    ctx = http.ctx
    told = {
        what: {a[2]["id"] for a in answers if a[0] == what and a[1] < 300}
        for what in ("proposal", "purchase")
    }
    with ctx.db.read() as conn:
        committed = set(conn.execute(select(proposals.c.id)).scalars())
        bought = set(
            conn.execute(select(purchases.c.id).where(purchases.c.topup_id.is_(None))).scalars()
        )
        card_paid = set(
            conn.execute(
                select(purchases.c.id).where(
                    purchases.c.pay_with == "card", purchases.c.status == "succeeded"
                )
            ).scalars()
        )
        charged = Counter(conn.execute(select(gateway_charges.c.idempotency_key)).scalars())
        in_time = conn.execute(
            select(topups.c.id).where(
                topups.c.trigger == "just_in_time", topups.c.status == "succeeded"
            )
        ).all()
        left = {
            "purchases": conn.execute(
                select(purchases.c.id).where(purchases.c.status == "pending")
            ).all(),
            "topups": conn.execute(select(topups.c.id).where(topups.c.status == "pending")).all(),
        }
    assert committed == told["proposal"]
    assert len(in_time) >= AGENCIES, "the proposals did not need just-in-time top-ups"
    assert bought == told["purchase"]
    assert len(told["purchase"]) == REQUESTS // 2
    assert set(charged) == card_paid
    assert set(charged.values()) == {1}
    assert left == {"purchases": [], "topups": []}
    assert verify(ctx) == []
