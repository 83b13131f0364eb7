"""Refunds through the services, on SQLite and PostgreSQL (R15)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connects.domain.clock import SimulatedClock
from connects.domain.commands import EndJob, WithdrawProposal
from connects.domain.errors import JobNotOpen, ProposalNotActive
from connects.domain.policy import OPERATOR, SYSTEM, Actor
from connects.services import cycles
from connects.services.verify import verify
from tests.integration.ledger_support import (
    FEB_15,
    available,
    entries_of,
    events_of,
    lots_of,
    proposal,
    refused,
    world_fixture,  # noqa: F401 (the world fixture)
)
from tests.world import World

# -- refunds (R15) ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("outcome", "actor"),
    [("cancelled", None), ("closed", None), ("removed", OPERATOR)],
)
def test_refund_into_the_original_lots(
    world: World, clock: SimulatedClock, outcome: str, actor: Actor | None
) -> None:
    # R15: back to the account that paid, into the lots it came from, same expiry
    ctx = world.ctx
    agency = world.agency("olga", mo="member")
    own = world.freelancer("fay")
    clock.set(FEB_15)
    cycles.run_due_cycles(ctx)
    job = world.job(100)
    out = world.submit("mo", job, agency)
    small = world.job(4)
    world.submit("fay", small, own)
    assert available(ctx, agency) == 60
    before_lots = [(lot.id, lot.expires_at) for lot in lots_of(ctx, agency)]
    assert [lot.remaining for lot in lots_of(ctx, agency)] == [0, 60]
    clock.advance(timedelta(days=3))
    ended = ctx.handle(EndJob(actor or world.actor("client"), job, outcome))
    assert ended == {"id": job, "status": outcome, "refunded_connects": 100}
    assert [(lot.id, lot.expires_at) for lot in lots_of(ctx, agency)] == before_lots
    assert [lot.remaining for lot in lots_of(ctx, agency)] == [80, 80]
    [refund] = entries_of(ctx, agency, "refund")
    assert (refund.amount, refund.balance_after, refund.proposal_id) == (100, 160, out["id"])
    assert refund.member_id == world.people["mo"]
    assert proposal(ctx, str(out["id"])).status == "refunded"
    [event] = events_of(ctx, agency, "connects_refunded")
    assert '"amount": 100' in event.payload
    assert available(ctx, own) == 16  # the other account is untouched (R1)
    assert verify(ctx) == []


def test_refund_to_every_account_that_paid(world: World) -> None:
    # R15: each proposal's Connects go back to its own account
    ctx = world.ctx
    agency = world.agency("olga")
    own = world.freelancer("fay")
    job = world.job(5)
    world.submit("olga", job, agency)
    world.submit("fay", job, own)
    assert ctx.handle(EndJob(world.actor("client"), job, "closed"))["refunded_connects"] == 10
    assert (available(ctx, agency), available(ctx, own)) == (80, 10)


def test_no_refund_on_withdraw_hire_or_expiry(world: World) -> None:
    # R15: withdrawn, hired, another hired, job expired: nothing comes back
    ctx = world.ctx
    agency = world.agency("olga", mo="member", pia="member")
    hired_job = world.job(10)
    hired = world.submit("mo", hired_job, agency)
    world.submit("pia", hired_job, agency)
    withdrawn_job = world.job(7)
    gone = world.submit("olga", withdrawn_job, agency)
    expiring_job = world.job(3)
    world.submit("olga", expiring_job, agency)
    assert available(ctx, agency) == 80 - 30
    ctx.handle(WithdrawProposal(world.actor("olga"), str(gone["id"])))
    refused(
        lambda: ctx.handle(WithdrawProposal(world.actor("olga"), str(gone["id"]))),
        ctx,
        ProposalNotActive,
    )
    out = ctx.handle(
        EndJob(world.actor("client"), hired_job, "closed", hired_proposal_id=str(hired["id"]))
    )
    assert out == {"id": hired_job, "status": "filled", "refunded_connects": 0}
    assert ctx.handle(EndJob(SYSTEM, expiring_job, "expired"))["refunded_connects"] == 0
    # cancelling the withdrawn proposal's job gives nothing back for it
    assert (
        ctx.handle(EndJob(world.actor("client"), withdrawn_job, "cancelled"))["refunded_connects"]
        == 0
    )
    assert available(ctx, agency) == 50
    assert entries_of(ctx, agency, "refund") == []
    assert proposal(ctx, str(hired["id"])).status == "hired"
    assert verify(ctx) == []


def test_refund_into_an_expired_lot_is_swept(world: World, clock: SimulatedClock) -> None:
    # R15 + R12: a refund keeps the lot's expiry, so Connects refunded after it are gone
    ctx = world.ctx
    own = world.freelancer("fay")
    clock.set(datetime(2027, 1, 10, tzinfo=UTC))
    job = world.job(4)
    world.submit("fay", job, own)
    clock.set(datetime(2027, 1, 20, tzinfo=UTC))
    assert ctx.handle(EndJob(world.actor("client"), job, "cancelled"))["refunded_connects"] == 4
    assert [e.kind for e in entries_of(ctx, own)] == ["grant", "spend", "refund", "expire"]
    assert [e.amount for e in entries_of(ctx, own)] == [10, -4, 4, -10]
    assert available(ctx, own) == 0
    assert verify(ctx) == []


def test_ended_job_takes_no_proposals(world: World) -> None:
    ctx = world.ctx
    agency = world.agency("olga")
    job = world.job(5)
    ctx.handle(EndJob(world.actor("client"), job, "cancelled"))
    refused(lambda: world.submit("olga", job, agency), ctx, JobNotOpen)
    refused(lambda: ctx.handle(EndJob(world.actor("client"), job, "closed")), ctx, JobNotOpen)
