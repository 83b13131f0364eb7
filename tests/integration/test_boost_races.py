"""64 bidders on one job's boost auction while the client views proposals and the
auction closes, on real PostgreSQL connections (R34, R35).

Bids are placed and raised side by side (the job ``FOR SHARE``); a view judges the top
4 and the close captures it with the job ``FOR UPDATE``, so neither sees a bid move
under it. Afterwards exactly the right bids are captured: every bid of the final top
4, and beyond it only bids a view captured; everything else released; every hold
ended once, and ``verify`` finds nothing.
"""

from __future__ import annotations

import contextlib
import random
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from connects.db.schema import holds, proposal_outcomes
from connects.domain import boosts as rules
from connects.domain.clock import SimulatedClock
from connects.domain.commands import RaiseBoost, RecordOutcome, SubmitProposal
from connects.domain.errors import ConnectsError
from connects.services import boosts
from connects.services.verify import verify
from tests.world import World

BIDDERS = 64


@pytest.mark.postgres
def test_bidders_racing_views_and_the_close_capture_exactly_the_right_bids(
    make_ctx, pg_url, clock: SimulatedClock
):  # R34 R35
    ctx = make_ctx(pg_url, db_pool_size=BIDDERS + 4)
    w = World(ctx)
    people = [f"f{i}" for i in range(BIDDERS)]
    accounts = {name: w.freelancer(name, "freelancer-plus") for name in people}  # 100 each
    job = w.job(2)
    client = w.people["client"]
    placed: list[str] = []
    lock = threading.Lock()
    rng = random.Random(64)
    pause = threading.Event().wait
    # Two waves: the first bids low while the client looks (a view captures its
    # leaders), the second bids higher, raises, and meets the close, so captured
    # leaders are pushed out of the top 4 and late bidders find the auction closed.
    first, second = people[: BIDDERS // 2], people[BIDDERS // 2 :]
    bids = {n: rng.randint(1, 12) for n in first} | {n: rng.randint(15, 40) for n in second}
    raises = {name: rng.randint(0, 10) for name in people}
    delays = {name: rng.random() * 0.1 for name in people}

    def bid(name: str, barrier: threading.Barrier) -> None:
        barrier.wait()
        pause(delays[name])
        try:
            out = ctx.handle(
                SubmitProposal(
                    w.actor(name),
                    job_id=job,
                    account_id=accounts[name],
                    freelancer_id=w.people[name],
                    expected_connects=2,
                    boost=bids[name],
                )
            )
        except ConnectsError:
            return  # the auction closed first
        with lock:
            placed.append(str(out["id"]))
        if raises[name]:
            with contextlib.suppress(ConnectsError):  # closed, or captured by a view
                ctx.handle(RaiseBoost(w.actor(name), str(out["id"]), bids[name] + raises[name]))

    def _leader() -> str | None:
        """Half the time, a proposal in the top 4 right now: a view captures it."""
        if rng.random() < 0.5:
            return None
        with ctx.db.read() as conn:
            now = conn.execute(
                select(holds.c.id, holds.c.amount, holds.c.bid_at, holds.c.proposal_id).where(
                    holds.c.job_id == job, holds.c.status != "released"
                )
            ).all()
        ranked = rules.top(rules.Bid(r.id, r.amount, r.bid_at) for r in now)
        of = {r.id: r.proposal_id for r in now}
        return str(of[rng.choice(ranked).hold_id]) if ranked else None

    def look(barrier: threading.Barrier, views: int) -> None:
        barrier.wait()
        for _ in range(views):
            pause(0.003)
            with lock:
                seen = list(placed)
            if seen:
                ctx.handle(RecordOutcome(client, _leader() or rng.choice(seen), "viewed"))

    def close(barrier: threading.Barrier) -> None:
        barrier.wait()
        pause(0.06)  # the bidders who wait longer find the auction closed
        clock.advance(timedelta(days=rules.DEFAULT_AUCTION_DAYS))
        boosts.close_due(ctx)

    for wave, views in ((first, 30), (second, 30)):
        last = wave is second
        barrier = threading.Barrier(len(wave) + 1 + last)
        threads = [threading.Thread(target=bid, args=(n, barrier)) for n in wave]
        threads.append(threading.Thread(target=look, args=(barrier, views)))
        if last:
            threads.append(threading.Thread(target=close, args=(barrier,)))
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not any(t.is_alive() for t in threads)
        if not last:  # the client looks at two of the first wave's leaders: captured
            for _ in range(2):
                lead = None
                while lead is None:
                    lead = _leader()
                ctx.handle(RecordOutcome(client, lead, "viewed"))
    boosts.close_due(ctx)
    with ctx.db.read() as conn:
        rows = conn.execute(select(holds).where(holds.c.job_id == job)).all()
        viewed = set(
            conn.execute(
                select(proposal_outcomes.c.proposal_id).where(proposal_outcomes.c.kind == "viewed")
            ).scalars()
        )
    assert len(rows) == len(placed) >= BIDDERS // 2
    assert all(r.status in ("captured", "released") for r in rows)  # every hold ended
    bidding = [rules.Bid(r.id, r.amount, r.bid_at) for r in rows if r.status != "released"]
    top = {b.hold_id for b in rules.top(bidding)}
    by_id = {r.id: r for r in rows}
    for r in rows:
        if r.id in top:  # the close captured what was still held of the top 4
            assert r.status == "captured", r
        elif r.status == "captured":  # beyond it, only a view captures
            assert r.proposal_id in viewed, r
        assert r.captured == (r.amount if r.status == "captured" else 0)
    fourth = rules.top(bidding)[-1]
    for r in rows:  # a released bid never ranked above the last of the top 4
        if r.status == "released":
            key = rules.ranking_key(rules.Bid(r.id, r.amount, r.bid_at))
            assert key > rules.ranking_key(fourth), by_id[r.id]
    captured_by_views = [r for r in rows if r.status == "captured" and r.id not in top]
    assert captured_by_views  # the first wave's leaders, pushed out after their capture
    assert verify(ctx) == []
