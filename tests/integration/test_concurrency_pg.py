"""Concurrent spenders on one agency pool, on real PostgreSQL connections (R14, R30).

Many threads, each with its own pooled connection, submit proposals against one shared
agency pool at the same moment. The pool is smaller than the demand: exactly as many
proposals go through as there are Connects, the rest are refused, the balance ends at
zero, and the ledger's invariants hold. Nothing is overdrawn and no update is lost.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter

import pytest
from sqlalchemy import func, select

from connects.db.schema import entries, proposals
from connects.domain.commands import BuyConnects, CreditEarnings
from connects.domain.errors import ConnectsError
from connects.services import views
from connects.services.verify import verify
from tests.world import World

THREADS = 32
PER_THREAD = 12
POOL = 200  # 80 granted + 120 bought; demand is 32 * 12 * 1 = 384


@pytest.mark.postgres
def test_32_threads_spend_one_pool_exactly(make_ctx, pg_url):  # R14 R30
    ctx = make_ctx(pg_url, db_pool_size=THREADS)
    w = World(ctx)
    members = {f"m{i}": "member" for i in range(THREADS)}
    agency = w.agency("owner", "agency-plus", **members)
    ctx.handle(CreditEarnings(agency, 120 * 100))
    ctx.handle(BuyConnects(w.actor("owner"), agency, 120, "earnings"))
    assert views.overview(ctx, w.actor("owner"), agency)["available"] == POOL
    jobs = [w.job(1, title=f"job {i}") for i in range(PER_THREAD)]

    barrier = threading.Barrier(THREADS)
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def spender(name: str) -> None:
        barrier.wait()
        for job_id in jobs:
            try:
                w.submit(name, job_id, agency, expected=1)
                code = "ok"
            except ConnectsError as exc:
                code = exc.code
            with lock:
                outcomes[code] += 1

    threads = [threading.Thread(target=spender, args=(name,)) for name in members]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)

    assert outcomes == {"ok": POOL, "insufficient_connects": THREADS * PER_THREAD - POOL}
    assert views.overview(ctx, w.actor("owner"), agency)["available"] == 0
    with ctx.db.read() as conn:
        spent = conn.execute(
            select(func.sum(entries.c.amount)).where(
                entries.c.account_id == agency, entries.c.kind == "spend"
            )
        ).scalar_one()
        n_props = conn.execute(
            select(func.count()).select_from(proposals).where(proposals.c.account_id == agency)
        ).scalar_one()
    assert spent == -POOL
    assert n_props == POOL
    assert verify(ctx) == []


@pytest.mark.postgres
def test_concurrent_spends_and_purchases_never_lose_an_update(make_ctx, pg_url):  # R30
    """Spenders and buyers interleave on one pool: every Connect is accounted for."""
    ctx = make_ctx(pg_url, db_pool_size=16)
    w = World(ctx)
    agency = w.agency(
        "owner", "agency-plus", admin="admin", **{f"m{i}": "member" for i in range(8)}
    )
    ctx.handle(CreditEarnings(agency, 10_000_00))
    jobs = [w.job(2, title=f"job {i}") for i in range(10)]
    barrier = threading.Barrier(10)
    bought = Counter[str]()

    def member(i: int) -> None:
        barrier.wait()
        for job_id in jobs:
            with contextlib.suppress(ConnectsError):
                w.submit(f"m{i}", job_id, agency, expected=2)

    def buyer(who: str) -> None:
        barrier.wait()
        for _ in range(10):
            ctx.handle(BuyConnects(w.actor(who), agency, 3, "earnings"))
            bought[who] += 3

    threads = [threading.Thread(target=member, args=(i,)) for i in range(8)]
    threads += [threading.Thread(target=buyer, args=(who,)) for who in ("owner", "admin")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    with ctx.db.read() as conn:
        spent = -conn.execute(
            select(func.coalesce(func.sum(entries.c.amount), 0)).where(
                entries.c.account_id == agency, entries.c.kind == "spend"
            )
        ).scalar_one()
    available = views.overview(ctx, w.actor("owner"), agency)["available"]
    assert available == 80 + sum(bought.values()) - spent
    assert sum(bought.values()) == 60
    assert verify(ctx) == []
