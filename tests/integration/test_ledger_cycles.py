"""Monthly cycles, rollover and expiry through the services, on SQLite and PostgreSQL (R8-R12)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connects.domain.clock import SimulatedClock
from connects.domain.commands import BuyConnects, CreditEarnings, EndJob
from connects.domain.errors import InsufficientConnects
from connects.services import cycles, views
from connects.services.verify import verify
from tests.conftest import START
from tests.integration.ledger_support import (
    APR_15,
    FEB_15,
    MAR_15,
    available,
    entries_of,
    lots_of,
    refused,
    stored_balance,
    world_fixture,  # noqa: F401 (the world fixture)
)
from tests.world import World

# -- cycles (R8, R9) -------------------------------------------------------------------


def test_first_grant_at_creation_and_cycle_day(world: World) -> None:
    # R8: the first cycle starts when the account opens
    ctx = world.ctx
    agency = world.agency("olga")
    [grant] = entries_of(ctx, agency, "grant")
    assert (grant.amount, grant.at, grant.actor_kind) == (80, START, "system")
    [lot] = lots_of(ctx, agency)
    assert (lot.source, lot.issued_at, lot.expires_at) == (
        "grant",
        START,
        datetime(2027, 1, 15, 9, 0, tzinfo=UTC),
    )  # R10
    assert views.account(ctx, world.actor("olga"), agency)["next_cycle_at"] == FEB_15
    # agency-basic grants nothing (R7)
    basic = world.agency("bob", "agency-basic")
    assert entries_of(ctx, basic) == []
    assert available(ctx, basic) == 0


def test_cycle_grant_is_applied_once(world: World, clock: SimulatedClock) -> None:
    # R8: once per cycle, even when the job runs twice
    ctx = world.ctx
    agency = world.agency("olga")
    clock.set(FEB_15 - timedelta(seconds=1))
    assert cycles.run_due_cycles(ctx) == 0
    assert available(ctx, agency) == 80
    clock.set(FEB_15)
    assert cycles.run_due_cycles(ctx) == 1
    assert cycles.run_due_cycles(ctx) == 0
    clock.advance(timedelta(days=10))
    assert cycles.run_due_cycles(ctx) == 0
    assert available(ctx, agency) == 160
    assert [(e.amount, e.at) for e in entries_of(ctx, agency, "grant")] == [
        (80, START),
        (80, FEB_15),
    ]
    assert verify(ctx) == []


def test_apply_cycle_twice_grants_once(world: World) -> None:
    # R8: the cycle's dedupe key stops a second grant
    ctx = world.ctx
    agency = world.agency("olga")
    from connects.services.book import AccountBook

    for _ in range(2):
        with ctx.db.begin() as conn:
            book = AccountBook.lock(conn, agency, ctx.now())
            cycles.apply_cycle(ctx, book, START)
            book.save()
    assert available(ctx, agency) == 80
    assert len(entries_of(ctx, agency, "grant")) == 1


def test_late_run_applies_every_missed_cycle(world: World, clock: SimulatedClock) -> None:
    # R8: a late job applies each missed cycle, dated at its own start
    ctx = world.ctx
    own = world.freelancer("fay", "freelancer-basic")
    clock.set(datetime(2026, 5, 20, 12, tzinfo=UTC))
    assert cycles.run_due_cycles(ctx) == 4
    run_at = datetime(2026, 5, 20, 12, tzinfo=UTC)
    grants_ = entries_of(ctx, own, "grant")
    assert [(g.amount, g.at) for g in grants_] == [(10, START)] + [(10, run_at)] * 4
    # each missed cycle's lot is issued at its own cycle start
    assert [lot.issued_at for lot in lots_of(ctx, own)] == [
        START,
        FEB_15,
        MAR_15,
        APR_15,
        datetime(2026, 5, 15, tzinfo=UTC),
    ]
    assert [g.dedupe_key for g in grants_][1:] == [
        "grant:2026-02",
        "grant:2026-03",
        "grant:2026-04",
        "grant:2026-05",
    ]
    assert available(ctx, own) == 50
    assert [lot.expires_at for lot in lots_of(ctx, own)][1:] == [
        datetime(2027, 2, 15, tzinfo=UTC),
        datetime(2027, 3, 15, tzinfo=UTC),
        datetime(2027, 4, 15, tzinfo=UTC),
        datetime(2027, 5, 15, tzinfo=UTC),
    ]  # R10
    assert views.account(ctx, world.actor("fay"), own)["next_cycle_at"] == datetime(
        2026, 6, 15, tzinfo=UTC
    )
    assert verify(ctx) == []


def test_cycle_day_31_is_clamped(world: World, clock: SimulatedClock) -> None:
    # R8: started on Jan 31, the cycle falls on Feb 28 then Mar 31
    ctx = world.ctx
    clock.set(datetime(2026, 1, 31, 10, tzinfo=UTC))
    own = world.freelancer("fay")
    clock.set(datetime(2026, 2, 27, 23, 59, tzinfo=UTC))
    assert cycles.run_due_cycles(ctx) == 0
    clock.set(datetime(2026, 2, 28, tzinfo=UTC))
    assert cycles.run_due_cycles(ctx) == 1
    clock.set(datetime(2026, 3, 30, tzinfo=UTC))
    assert cycles.run_due_cycles(ctx) == 0
    clock.set(datetime(2026, 3, 31, tzinfo=UTC))
    assert cycles.run_due_cycles(ctx) == 1
    assert [g.at.date().isoformat() for g in entries_of(ctx, own, "grant")] == [
        "2026-01-31",
        "2026-02-28",
        "2026-03-31",
    ]
    assert available(ctx, own) == 30


def test_rollover_cap_forfeits_only_plan_grants(world: World, clock: SimulatedClock) -> None:
    # R9: agency-plus rolls over at most 160 granted Connects; purchased never forfeited
    ctx = world.ctx
    agency = world.agency("olga")
    ctx.handle(CreditEarnings(agency, 100_00))
    clock.set(FEB_15)
    cycles.run_due_cycles(ctx)
    assert available(ctx, agency) == 160
    ctx.handle(BuyConnects(world.actor("olga"), agency, 30, "earnings"))
    clock.set(MAR_15)
    cycles.run_due_cycles(ctx)  # 160 in grants: nothing above the cap
    assert entries_of(ctx, agency, "rollover_forfeit") == []
    assert available(ctx, agency) == 270
    clock.set(APR_15)
    cycles.run_due_cycles(ctx)  # 240 in grants: 80 forfeited, then +80
    [forfeit] = entries_of(ctx, agency, "rollover_forfeit")
    assert (forfeit.amount, forfeit.at, forfeit.balance_after) == (-80, APR_15, 190)
    assert available(ctx, agency) == 270
    by_source = {}
    for lot in lots_of(ctx, agency):
        by_source.setdefault(lot.source, []).append(lot.remaining)
    assert by_source == {"grant": [0, 80, 80, 80], "purchase": [30]}  # the oldest grant went
    # running again forfeits nothing more (R8, R9)
    assert cycles.run_due_cycles(ctx) == 0
    assert len(entries_of(ctx, agency, "rollover_forfeit")) == 1
    assert verify(ctx) == []


def test_rollover_after_spending(world: World, clock: SimulatedClock) -> None:
    # R9 + R11: spending takes the oldest grant first, so less is forfeited
    ctx = world.ctx
    agency = world.agency("olga")
    clock.set(MAR_15)
    cycles.run_due_cycles(ctx)  # Feb 15 and Mar 15: 160 held before each grant, no forfeit
    assert available(ctx, agency) == 240
    assert entries_of(ctx, agency, "rollover_forfeit") == []
    world.submit("olga", world.job(50), agency)  # from the Jan grant: 30 left in it
    clock.set(APR_15)
    cycles.run_due_cycles(ctx)  # 190 in grants: 30 above the cap
    [forfeit] = entries_of(ctx, agency, "rollover_forfeit")
    assert forfeit.amount == -30
    assert [lot.remaining for lot in lots_of(ctx, agency)] == [0, 80, 80, 80]
    assert available(ctx, agency) == 240


def test_refunded_connects_are_never_forfeited_by_rollover(
    world: World, clock: SimulatedClock
) -> None:
    # R9 + R15: a refund goes back into the January grant lot, and is not forfeited
    ctx = world.ctx
    agency = world.agency("olga")
    job = world.job(80)
    world.submit("olga", job, agency)
    clock.set(APR_15)
    cycles.run_due_cycles(ctx)
    assert available(ctx, agency) == 240
    ctx.handle(EndJob(world.actor("client"), job, "cancelled"))
    assert [lot.remaining for lot in lots_of(ctx, agency)] == [80, 80, 80, 80]
    clock.set(datetime(2026, 5, 15, tzinfo=UTC))
    cycles.run_due_cycles(ctx)
    [forfeit] = entries_of(ctx, agency, "rollover_forfeit")
    assert forfeit.amount == -80  # only the granted Connects above 160
    assert [lot.remaining for lot in lots_of(ctx, agency)] == [80, 0, 80, 80, 80]
    assert available(ctx, agency) == 320
    assert verify(ctx) == []


def test_no_cap_rolls_everything_over(world: World, clock: SimulatedClock) -> None:
    # R9: freelancer plans have no cap
    ctx = world.ctx
    own = world.freelancer("fay", "freelancer-plus")
    clock.set(datetime(2026, 7, 15, tzinfo=UTC))
    cycles.run_due_cycles(ctx)
    assert available(ctx, own) == 700
    assert entries_of(ctx, own, "rollover_forfeit") == []


# -- expiry (R10-R12) --------------------------------------------------------------------


def test_expired_connects_are_never_counted_before_the_sweep(
    world: World, clock: SimulatedClock
) -> None:
    # R12: the balance is right before the sweep has run
    ctx = world.ctx
    agency = world.agency("olga")
    olga = world.actor("olga")
    job = world.job(1)
    clock.set(datetime(2026, 12, 16, 8, 59, 59, tzinfo=UTC))
    assert views.overview(ctx, olga, agency)["expiring_30d"] == 0
    clock.set(datetime(2026, 12, 16, 9, 0, tzinfo=UTC))  # expiry is exactly 30 days away
    over = views.overview(ctx, olga, agency)
    assert (over["available"], over["expiring_30d"]) == (80, 80)
    assert [x["remaining"] for x in views.expiring(ctx, olga, agency)["lots"]] == [80]
    clock.set(datetime(2027, 1, 15, 9, 0, tzinfo=UTC))  # the lot's expiry
    assert stored_balance(ctx, agency) == 80  # not swept yet
    assert available(ctx, agency) == 0
    over = views.overview(ctx, olga, agency)
    assert (over["available"], over["expiring_30d"]) == (0, 0)
    assert views.account(ctx, olga, agency)["balance"] == 0
    assert [a["available"] for a in views.all_accounts(ctx) if a["id"] == agency] == [0]
    assert views.expiring(ctx, olga, agency, all_lots=True)["lots"] == []
    exc = refused(lambda: world.submit("olga", job, agency), ctx, InsufficientConnects)
    assert exc.details == {"required": 1, "available": 0}
    assert cycles.sweep_expired(ctx) == 80
    [expire] = entries_of(ctx, agency, "expire")
    assert (expire.amount, expire.balance_after, expire.actor_kind) == (-80, 0, "system")
    assert stored_balance(ctx, agency) == 0
    assert cycles.sweep_expired(ctx) == 0
    assert verify(ctx) == []


def test_spending_skips_lots_that_expired(world: World, clock: SimulatedClock) -> None:
    # R11, R12: after a year, only the newer lot pays
    ctx = world.ctx
    own = world.freelancer("fay")
    clock.set(FEB_15)
    cycles.run_due_cycles(ctx)
    clock.set(datetime(2027, 1, 20, tzinfo=UTC))  # the Jan lot has expired; Feb's has not
    assert available(ctx, own) == 10
    world.submit("fay", world.job(4), own)
    assert [(lot.remaining, lot.amount) for lot in lots_of(ctx, own)] == [(0, 10), (6, 10)]
    assert [e.amount for e in entries_of(ctx, own)] == [10, 10, -10, -4]  # swept, spent
    assert [e.kind for e in entries_of(ctx, own)] == ["grant", "grant", "expire", "spend"]
    assert verify(ctx) == []


def test_spending_takes_soonest_expiring_lot_first(world: World, clock: SimulatedClock) -> None:
    # R11
    ctx = world.ctx
    agency = world.agency("olga")
    ctx.handle(CreditEarnings(agency, 100_00))
    ctx.handle(BuyConnects(world.actor("olga"), agency, 10, "earnings"))  # same day, later issue
    clock.set(FEB_15)
    cycles.run_due_cycles(ctx)
    world.submit("olga", world.job(85), agency)
    remaining = [(lot.source, lot.remaining) for lot in lots_of(ctx, agency)]
    assert remaining == [("grant", 0), ("purchase", 5), ("grant", 80)]
