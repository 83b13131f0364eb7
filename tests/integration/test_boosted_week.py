"""Worked examples of a boosted week, on SQLite and PostgreSQL (R4, R22, R34-R36).

An agency on agency-plus (80 Connects at opening, 100 cents a Connect) boosts its
proposals: just-in-time auto top-up covers price and bid, a member's budget counts
held and captured bids, and a week later the auction's close captures the top 4.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from connects.domain.clock import SimulatedClock
from connects.domain.commands import RecordOutcome, SetBudget, SubmitProposal
from connects.domain.errors import InvalidRequest, MemberBudgetExceeded
from connects.services import due
from connects.services.context import Context
from connects.services.verify import verify
from tests.integration.topup_support import agency, rows
from tests.world import add_member


def _boosted(a, who: str, job: str, price: int, bid: int) -> dict[str, object]:
    w = a.world
    return w.ctx.handle(
        SubmitProposal(
            w.actor(who),
            job_id=job,
            account_id=a.id,
            freelancer_id=w.people[who],
            expected_connects=price,
            boost=bid,
        )
    )


def _holds(ctx: Context, account_id: str) -> dict[str, int]:
    from sqlalchemy import select

    from connects.db.schema import accounts

    with ctx.db.read() as conn:
        row = conn.execute(
            select(accounts.c.balance, accounts.c.held).where(accounts.c.id == account_id)
        ).one()
    return {"balance": row.balance, "held": row.held}


def test_a_boosted_week_with_just_in_time_and_a_budget(
    any_ctx: Context, clock: SimulatedClock
) -> None:
    # R22 R35: the top-up covers price and bid together; R4: bids count in the budget
    a = agency(any_ctx, just_in_time=True, per_topup=40, per_month=400, threshold=0)
    w = a.world
    for name in ("mia", "max"):
        w.person(name)
        add_member(any_ctx, a.owner, a.id, w.people[name], "member")
    any_ctx.handle(SetBudget(a.owner, a.id, w.people["mia"], 30))
    job = w.job(10)
    # Monday: olga bids 75 on a 10-Connect job: 85 needed, 80 there: the top-up buys 40.
    first = _boosted(a, "olga", job, 10, 75)
    assert first["boost"]["status"] == "held"  # type: ignore[index]
    [topup] = rows(any_ctx, a.id)
    assert (topup.trigger, topup.status, topup.quantity) == ("just_in_time", "succeeded", 40)
    assert _holds(any_ctx, a.id) == {"balance": 110, "held": 75}
    assert a.available() == 35
    # Mia's budget of 30: a price of 10 and a bid of 25 would take her to 35.
    with pytest.raises(MemberBudgetExceeded):
        _boosted(a, "mia", job, 10, 25)
    mia = _boosted(a, "mia", job, 10, 15)  # 25 of her 30
    # Her held bid counts against the budget until it ends: 25 + 10 > 30.
    with pytest.raises(MemberBudgetExceeded):
        w.submit("mia", w.job(10), a.id)
    # A bid above the maximum (100) is refused, changing nothing.
    with pytest.raises(InvalidRequest):
        _boosted(a, "max", job, 10, 101)
    assert a.available() == 110 - 10 - 75 - 15
    # Wednesday: the client views mia's proposal: second in the top 4, captured.
    clock.advance(timedelta(days=2))
    viewed = any_ctx.handle(RecordOutcome(w.people["client"], str(mia["id"]), "viewed"))
    assert viewed["boost"]["status"] == "captured"
    # A week after posting the due work closes the auction: olga's bid is captured too.
    clock.advance(timedelta(days=5))
    assert due.run_due(any_ctx)["auctions_closed"] == 2  # this job and the second one
    assert _holds(any_ctx, a.id)["held"] == 0
    assert _holds(any_ctx, a.id) == {"balance": 10, "held": 0}  # 110 - 10 - 10 - 15 - 75
    assert verify(any_ctx) == []
