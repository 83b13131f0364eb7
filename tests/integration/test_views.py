"""The read side's month: "this month" starts in the account's time zone (R26), and
what the views count as used is what the budget check counts (R4)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event

from connects.domain.clock import SimulatedClock
from connects.domain.commands import EndJob, OpenAccount, SetBudget, UpdateAccount
from connects.domain.errors import MemberBudgetExceeded
from connects.domain.policy import Actor
from connects.services import views
from connects.services.context import Context
from tests.world import World


@contextmanager
def selects(ctx: Context) -> Iterator[list[str]]:
    """The SELECT statements the read engine runs inside the block."""
    seen: list[str] = []

    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    engine = ctx.db.read_engine
    event.listen(engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", note)


def test_overview_month_follows_the_account_time_zone(
    any_ctx: Context, clock: SimulatedClock
) -> None:
    """R26: in Auckland, Jan 31 11:00 UTC is already February: a spend just after it
    is this month's, one just before is last month's. The overview reads the month in
    one query once it knows the account's zone, and a changed zone is never missed."""
    ctx = any_ctx
    w = World(ctx)
    w.person("olga")
    agency = ctx.handle(
        OpenAccount(w.people["olga"], "agency", "Kiwi", "agency-plus", timezone="Pacific/Auckland")
    )
    olga = w.actor("olga")
    late_jan, early_feb = w.job(3), w.job(5)
    clock.set(datetime(2026, 1, 31, 10, 30, tzinfo=UTC))  # Jan 31 23:30 in Auckland
    w.submit("olga", late_jan, agency)
    clock.set(datetime(2026, 1, 31, 11, 30, tzinfo=UTC))  # Feb 1 00:30 in Auckland
    w.submit("olga", early_feb, agency)
    clock.set(datetime(2026, 1, 31, 12, 0, tzinfo=UTC))

    views.accounts._ZONES.clear()  # the first read guesses UTC, finds Auckland, sums again
    with selects(ctx) as first:
        over = views.overview(ctx, olga, agency)
    assert over["used_this_month"] == 5
    assert over["month_starts_at"] == datetime(2026, 1, 31, 11, 0, tzinfo=UTC)
    assert len(first) == 2
    with selects(ctx) as second:
        again = views.overview(ctx, olga, agency)
    assert again == over
    assert len(second) == 1

    ctx.handle(UpdateAccount(olga, agency, timezone="UTC"))  # the guess is now stale
    over = views.overview(ctx, olga, agency)
    assert over["used_this_month"] == 8
    assert over["month_starts_at"] == datetime(2026, 1, 1, tzinfo=UTC)
    assert over["available"] == 80 - 8


# R4 # R26
def test_a_refund_of_last_months_proposal_leaves_this_months_use_as_enforced(
    any_ctx: Context, clock: SimulatedClock
) -> None:
    """R4, R26: Mia's budget is 10. She spends 10 in January and 10 in February; in
    February the January job is cancelled and refunded. February's use stays 10 on the
    members list and the overview (the refund belongs to January, and is never taken
    off February), and her next proposal is refused as over budget."""
    ctx = any_ctx
    w = World(ctx)
    agency = w.agency("olga", mia="member")
    olga, mia = w.actor("olga"), w.people["mia"]
    ctx.handle(SetBudget(olga, agency, mia, 10))
    january = w.job(10)
    w.submit("mia", january, agency)  # Jan 15
    clock.set(datetime(2026, 2, 3, 9, 0, tzinfo=UTC))
    w.submit("mia", w.job(10), agency)
    ended = ctx.handle(EndJob(Actor("user", w.people["client"]), january, "cancelled"))
    assert ended["refunded_connects"] == 10

    assert views.member(ctx, olga, agency, mia)["spent_this_month"] == 10
    over = views.overview(ctx, olga, agency)
    assert over["used_this_month"] == 10
    assert over["available"] == 80 - 10
    with pytest.raises(MemberBudgetExceeded) as refused:
        w.submit("mia", w.job(1), agency)
    assert refused.value.details["spent_this_month"] == 10

    clock.set(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))  # a new month: a fresh budget
    assert views.member(ctx, olga, agency, mia)["spent_this_month"] == 0
    assert views.overview(ctx, olga, agency)["used_this_month"] == 0
    w.submit("mia", w.job(10), agency)
