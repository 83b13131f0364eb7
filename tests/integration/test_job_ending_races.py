"""Withdrawals racing the job's cancellation, on real PostgreSQL connections (R15).

A withdrawn proposal gets nothing back; a cancelled job's live proposals get their
Connects back. When both happen at once, each proposal ends exactly one way: every
withdrawal that answered ok stays withdrawn with no refund, every refunded proposal
has its one refund entry, and the ledger holds.
"""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from connects.db.schema import entries, proposals
from connects.domain.commands import EndJob, WithdrawProposal
from connects.domain.errors import ConnectsError
from connects.domain.vocabulary import EntryKind, ProposalStatus
from connects.services.verify import verify
from tests.world import World

BIDDERS = 24


@pytest.mark.postgres
def test_withdrawals_racing_a_cancel_are_never_refunded(make_ctx, pg_url):  # R15
    ctx = make_ctx(pg_url, db_pool_size=BIDDERS + 2)
    w = World(ctx)
    people = [f"f{i}" for i in range(BIDDERS)]
    accounts = {name: w.freelancer(name, "freelancer-plus") for name in people}
    job = w.job(2)
    props = {name: str(w.submit(name, job, accounts[name])["id"]) for name in people}
    client = w.actor("client")
    barrier = threading.Barrier(BIDDERS + 1)
    withdrew: list[str] = []
    lock = threading.Lock()

    def withdraw(name: str) -> None:
        barrier.wait()
        try:
            ctx.handle(WithdrawProposal(w.actor(name), props[name]))
        except ConnectsError:
            return  # refused: the job ended first
        with lock:
            withdrew.append(props[name])

    def cancel() -> None:
        barrier.wait()
        ctx.handle(EndJob(client, job, "cancelled"))

    threads = [threading.Thread(target=withdraw, args=(n,)) for n in people]
    threads.append(threading.Thread(target=cancel))
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    with ctx.db.read() as conn:
        status = dict(conn.execute(select(proposals.c.id, proposals.c.status)).all())
        refunded = set(
            conn.execute(
                select(entries.c.proposal_id).where(entries.c.kind == EntryKind.REFUND.value)
            ).scalars()
        )
    for prop_id in withdrew:
        assert status[prop_id] == ProposalStatus.WITHDRAWN, prop_id
        assert prop_id not in refunded, prop_id
    for prop_id, now in status.items():
        assert now in (ProposalStatus.WITHDRAWN, ProposalStatus.REFUNDED)
        assert (prop_id in refunded) == (now == ProposalStatus.REFUNDED)
    assert verify(ctx) == []
