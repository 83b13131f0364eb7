"""A time-zone change never makes one billing cycle grant twice (R8), on both databases
and both cycle paths (per account, and set-based on PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from connects.domain.clock import SimulatedClock
from connects.domain.commands import OpenAccount, UpdateAccount
from connects.services import cycles, views
from connects.services.context import Context
from connects.services.verify import verify
from tests.integration.ledger_support import available, entries_of, lots_of
from tests.world import World

Runner = Callable[[Context], int]
RUNNERS: dict[str, Runner] = {
    "due": cycles.run_cycles_bulk,  # set-based on PostgreSQL, per account on SQLite
    "per_account": cycles.run_due_cycles,
}


@pytest.fixture(params=sorted(RUNNERS))
def run(request: pytest.FixtureRequest) -> Runner:
    return RUNNERS[request.param]


def _agency(ctx: Context, timezone: str) -> tuple[World, str]:
    """An agency-plus account (80 a cycle) opened on 2026-01-15 09:00 UTC in ``timezone``."""
    world = World(ctx)
    owner = world.person("olga")
    account = ctx.handle(OpenAccount(owner, "agency", "Olga Agency", "agency-plus", timezone))
    return world, account


def _grants(ctx: Context, account: str) -> list[tuple[int, datetime]]:
    """Each grant's amount and cycle start (its lot's issue date)."""
    return [(lot.amount, lot.issued_at) for lot in lots_of(ctx, account) if lot.source == "grant"]


def _next_cycle(ctx: Context, world: World, account: str) -> datetime:
    at: datetime = views.account(ctx, world.actor("olga"), account)["next_cycle_at"]
    return at


def test_a_zone_change_westwards_between_cycle_days_grants_once(
    any_ctx: Context, clock: SimulatedClock, run: Runner
) -> None:
    # R8: Tokyo's cycle day (Feb 15 00:00 JST = Feb 14 15:00 UTC) was scheduled before
    # the account moved to Los Angeles, whose Feb 15 starts 17 hours later: one billing
    # day, one grant of 80, at midnight in the account's zone now.
    world, account = _agency(any_ctx, "Asia/Tokyo")
    clock.set(datetime(2026, 1, 20, tzinfo=UTC))
    any_ctx.handle(UpdateAccount(world.actor("olga"), account, timezone="America/Los_Angeles"))
    clock.set(datetime(2026, 2, 20, tzinfo=UTC))  # one late run catches up
    run(any_ctx)
    assert [amount for amount, _ in _grants(any_ctx, account)] == [80, 80]
    assert _grants(any_ctx, account)[-1][1] == datetime(2026, 2, 15, 8, tzinfo=UTC)
    assert available(any_ctx, account) == 160
    assert len(entries_of(any_ctx, account, "grant")) == 2
    assert _next_cycle(any_ctx, world, account) == datetime(2026, 3, 15, 7, tzinfo=UTC)  # PDT
    assert run(any_ctx) == 0
    assert verify(any_ctx) == []


def test_a_zone_change_just_after_a_cycle_day_grants_once(
    any_ctx: Context, clock: SimulatedClock, run: Runner
) -> None:
    # R8: the Feb cycle ran at Tokyo's midnight; an hour later, still Feb 14 in Los
    # Angeles, the zone changes: Los Angeles's Feb 15 is the same billing day, already
    # granted, and the next grant is on Mar 15 there.
    world, account = _agency(any_ctx, "Asia/Tokyo")
    clock.set(datetime(2026, 2, 14, 15, 30, tzinfo=UTC))
    assert run(any_ctx) == 1
    clock.set(datetime(2026, 2, 14, 16, 30, tzinfo=UTC))
    any_ctx.handle(UpdateAccount(world.actor("olga"), account, timezone="America/Los_Angeles"))
    for moment in (datetime(2026, 2, 15, 9), datetime(2026, 3, 1), datetime(2026, 3, 15, 8)):
        clock.set(moment.replace(tzinfo=UTC))
        run(any_ctx)
    assert [amount for amount, _ in _grants(any_ctx, account)] == [80, 80, 80]
    assert _grants(any_ctx, account)[-1][1] == datetime(2026, 3, 15, 7, tzinfo=UTC)
    assert verify(any_ctx) == []


def test_a_zone_change_eastwards_moves_the_cycle_earlier_and_grants_once(
    any_ctx: Context, clock: SimulatedClock, run: Runner
) -> None:
    # R8: from Los Angeles to Tokyo the pending cycle day starts 17 hours earlier; each
    # month still grants once, at Tokyo's midnight.
    world, account = _agency(any_ctx, "America/Los_Angeles")
    clock.set(datetime(2026, 1, 20, tzinfo=UTC))
    any_ctx.handle(UpdateAccount(world.actor("olga"), account, timezone="Asia/Tokyo"))
    assert _next_cycle(any_ctx, world, account) == datetime(2026, 2, 14, 15, tzinfo=UTC)
    for moment in (datetime(2026, 2, 14, 16), datetime(2026, 2, 15, 9), datetime(2026, 4, 20)):
        clock.set(moment.replace(tzinfo=UTC))
        run(any_ctx)
    assert [issued for _, issued in _grants(any_ctx, account)][1:] == [
        datetime(2026, 2, 14, 15, tzinfo=UTC),
        datetime(2026, 3, 14, 15, tzinfo=UTC),
        datetime(2026, 4, 14, 15, tzinfo=UTC),
    ]
    assert verify(any_ctx) == []
