"""The ledger core through the services, on SQLite and PostgreSQL (R1-R18, R30, R32, R33)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, text

from connects.db.schema import grants
from connects.db.schema import purchases as purchase_rows
from connects.domain.clock import SimulatedClock
from connects.domain.errors import (
    AgencyOnly,
    AlreadyApplied,
    AlreadyHasFreelancerAccount,
    AlreadyMember,
    AlreadyOwnsAgency,
    CannotSubmitOnBehalf,
    ConnectsError,
    Forbidden,
    InsufficientConnects,
    InsufficientEarnings,
    InvalidRequest,
    JobNotOpen,
    MemberBudgetExceeded,
    NoBillingMethod,
    NotAMember,
    NotFound,
    OwnerIsPermanent,
    PaymentDeclined,
    PlanCannotPurchase,
    PlanNotAllowed,
    PriceChanged,
    ProposalNotActive,
)
from connects.domain.plans import DEFAULT_PLANS, Catalog
from connects.domain.policy import OPERATOR, SYSTEM, Actor
from connects.gateway import ChargeResult, GatewayUnavailable, SimulatedGateway
from connects.services import accounts as acc
from connects.services import cycles, proposals, purchases, views
from connects.services.context import Context
from connects.services.verify import verify
from tests.conftest import START
from tests.integration.ledger_support import (
    available,
    earnings,
    entries_of,
    events_of,
    lots_of,
    proposal,
    snapshot,
    stored_balance,
)
from tests.world import World

FEB_15 = datetime(2026, 2, 15, tzinfo=UTC)
MAR_15 = datetime(2026, 3, 15, tzinfo=UTC)
APR_15 = datetime(2026, 4, 15, tzinfo=UTC)


@pytest.fixture
def world(any_ctx: Context) -> World:
    return World(any_ctx)


def with_reward(ctx: Context, reward: int) -> Context:
    """The same engine with an interview reward on every plan (R16)."""
    raw = {k: {**v, "interview_reward": reward} for k, v in DEFAULT_PLANS.items()}
    return dataclasses.replace(ctx, catalog=Catalog.from_mapping(raw))


def refused(fn: Callable[[], Any], ctx: Context, exc: type[ConnectsError]) -> ConnectsError:
    """Run ``fn``, expect ``exc``, and prove nothing changed (R32)."""
    before = snapshot(ctx)
    with pytest.raises(exc) as info:
        fn()
    assert snapshot(ctx) == before  # R32
    return info.value


# -- accounts (R1, R2) ---------------------------------------------------------------


def test_freelancer_and_agency_accounts_have_separate_balances(world: World) -> None:
    # R1: one person, two accounts, two balances
    ctx = world.ctx
    agency = world.agency("mia", "agency-plus")
    own = world.freelancer("mia", "freelancer-basic")
    assert (available(ctx, agency), available(ctx, own)) == (80, 10)
    world.submit("mia", world.job(7), agency)
    assert (available(ctx, agency), available(ctx, own)) == (73, 10)
    world.submit("mia", world.job(4), own)
    assert (available(ctx, agency), available(ctx, own)) == (73, 6)
    assert verify(ctx) == []


def test_one_agency_and_one_freelancer_account_per_person(world: World) -> None:
    # R2
    ctx = world.ctx
    olga = world.person("olga")
    world.agency("olga")
    world.freelancer("olga")
    refused(lambda: acc.create_account(ctx, olga, "agency", "Second"), ctx, AlreadyOwnsAgency)
    refused(
        lambda: acc.create_account(ctx, olga, "freelancer", "Again"),
        ctx,
        AlreadyHasFreelancerAccount,
    )


def test_owner_of_one_agency_may_be_member_of_others(world: World) -> None:
    # R2: a person owns at most one agency and may be a member of others
    ctx = world.ctx
    first = world.agency("olga", bob="member")
    second = world.agency("bob", olga="admin")
    assert views.account(ctx, world.actor("bob"), first)["role"] == "member"
    assert views.account(ctx, world.actor("bob"), second)["role"] == "owner"
    assert views.account(ctx, world.actor("olga"), second)["role"] == "admin"


def test_plan_must_fit_the_account_kind(world: World) -> None:
    # R7: agency and freelancer plans are separate
    ctx = world.ctx
    olga = world.person("olga")
    refused(
        lambda: acc.create_account(ctx, olga, "agency", "A", "freelancer-plus"),
        ctx,
        PlanNotAllowed,
    )
    refused(lambda: acc.create_account(ctx, olga, "robot", "A"), ctx, InvalidRequest)


# -- memberships and roles (R3) ------------------------------------------------------


def test_only_owner_and_admins_manage_members(world: World) -> None:
    # R3
    ctx = world.ctx
    agency = world.agency("olga", ada="admin", max="manager", mo="member")
    newcomer = world.person("newcomer")
    for who in ("max", "mo"):
        refused(
            lambda who=who: acc.add_member(ctx, world.actor(who), agency, newcomer, "member"),
            ctx,
            Forbidden,
        )
    acc.add_member(ctx, world.actor("ada"), agency, newcomer, "member")
    refused(
        lambda: acc.add_member(ctx, world.actor("olga"), agency, newcomer, "admin"),
        ctx,
        AlreadyMember,
    )
    outsider = world.person("outsider")
    refused(
        lambda: acc.add_member(ctx, world.actor("outsider"), agency, outsider, "member"),
        ctx,
        NotFound,
    )
    refused(
        lambda: acc.add_member(ctx, world.actor("olga"), agency, outsider, "owner"),
        ctx,
        InvalidRequest,
    )


def test_owner_is_permanent(world: World) -> None:
    # R3: exactly one owner
    ctx = world.ctx
    agency = world.agency("olga", ada="admin")
    olga = world.people["olga"]
    refused(
        lambda: acc.change_role(ctx, world.actor("ada"), agency, olga, "member"),
        ctx,
        OwnerIsPermanent,
    )
    refused(lambda: acc.remove_member(ctx, world.actor("ada"), agency, olga), ctx, OwnerIsPermanent)


def test_only_owner_and_admins_change_the_plan(world: World) -> None:
    # R3
    ctx = world.ctx
    agency = world.agency("olga", ada="admin", max="manager")
    refused(
        lambda: acc.update_account(ctx, world.actor("max"), agency, plan="agency-basic"),
        ctx,
        Forbidden,
    )
    acc.update_account(ctx, world.actor("ada"), agency, plan="agency-basic")
    assert views.account(ctx, world.actor("max"), agency)["plan"] == "agency-basic"


def test_role_change_and_removal_take_effect(world: World) -> None:
    # R3: a demoted admin can no longer buy; a removed member can no longer submit
    ctx = world.ctx
    agency = world.agency("olga", ada="admin", mo="member")
    acc.credit_earnings(ctx, agency, 10_000)
    purchases.buy(ctx, world.actor("ada"), agency, 1, "earnings")
    acc.change_role(ctx, world.actor("olga"), agency, world.people["ada"], "member")
    refused(lambda: purchases.buy(ctx, world.actor("ada"), agency, 1, "earnings"), ctx, Forbidden)
    acc.remove_member(ctx, world.actor("olga"), agency, world.people["mo"])
    job = world.job(3)
    refused(lambda: world.submit("mo", job, agency), ctx, NotFound)


def test_members_and_budgets_exist_only_on_agencies(world: World) -> None:
    ctx = world.ctx
    own = world.freelancer("fay")
    other = world.person("other")
    refused(lambda: acc.add_member(ctx, world.actor("fay"), own, other, "member"), ctx, AgencyOnly)
    refused(
        lambda: acc.set_budget(ctx, world.actor("fay"), own, world.people["fay"], 5),
        ctx,
        AgencyOnly,
    )


# -- shared pool and member budgets (R4) ---------------------------------------------


def test_all_members_draw_from_one_pool(world: World) -> None:
    # R4
    ctx = world.ctx
    agency = world.agency("olga", ada="admin", max="manager", mo="member")
    for who, price in (("olga", 5), ("ada", 10), ("max", 15), ("mo", 20)):
        world.submit(who, world.job(price), agency)
    assert available(ctx, agency) == 80 - 50
    spends = entries_of(ctx, agency, "spend")
    assert [(e.member_id, e.amount) for e in spends] == [
        (world.people["olga"], -5),
        (world.people["ada"], -10),
        (world.people["max"], -15),
        (world.people["mo"], -20),
    ]
    assert [e.balance_after for e in spends] == [75, 65, 50, 30]  # R30
    refused(lambda: world.submit("mo", world.job(31), agency), ctx, InsufficientConnects)


def test_member_budget(world: World, clock: SimulatedClock) -> None:
    # R4: a proposal that would take a member past the monthly budget is refused
    ctx = world.ctx
    agency = world.agency("olga", mo="member", max="manager")
    mo = world.people["mo"]
    acc.set_budget(ctx, world.actor("olga"), agency, mo, 15)
    world.submit("mo", world.job(10), agency)
    job = world.job(6)
    exc = refused(lambda: world.submit("mo", job, agency), ctx, MemberBudgetExceeded)
    assert exc.details == {"budget": 15, "spent_this_month": 10, "required": 6}
    # on behalf of mo counts against mo's budget too (R4, R5)
    refused(lambda: world.submit("max", job, agency, freelancer="mo"), ctx, MemberBudgetExceeded)
    # others are not limited by mo's budget
    world.submit("max", world.job(30), agency)
    world.submit("mo", world.job(5), agency)  # exactly the budget
    assert available(ctx, agency) == 80 - 10 - 30 - 5
    # only owner/admin set budgets (R3)
    refused(lambda: acc.set_budget(ctx, world.actor("max"), agency, mo, 100), ctx, Forbidden)
    refused(lambda: acc.set_budget(ctx, world.actor("olga"), agency, mo, -1), ctx, InvalidRequest)


def test_member_budget_is_net_of_refunds(world: World) -> None:
    # R4 + R15: a refunded proposal gives the budget back
    ctx = world.ctx
    agency = world.agency("olga", mo="member")
    acc.set_budget(ctx, world.actor("olga"), agency, world.people["mo"], 12)
    cancelled = world.job(10, title="to be cancelled")
    world.submit("mo", cancelled, agency)
    job = world.job(8)
    refused(lambda: world.submit("mo", job, agency), ctx, MemberBudgetExceeded)
    proposals.end_job(ctx, world.actor("client"), cancelled, "cancelled")
    world.submit("mo", job, agency)
    assert available(ctx, agency) == 80 - 8


def test_refund_of_last_months_proposal_does_not_widen_this_months_budget(
    world: World, clock: SimulatedClock
) -> None:
    # R4: the budget counts this month's proposals net of their refunds; a refund of a
    # January proposal in February gives back Connects, not February budget
    ctx = world.ctx
    agency = world.agency("olga", mo="member")
    acc.set_budget(ctx, world.actor("olga"), agency, world.people["mo"], 10)
    january = world.job(10, title="january")
    world.submit("mo", january, agency)
    clock.set(datetime(2026, 2, 1, 9, tzinfo=UTC))
    world.submit("mo", world.job(10, title="february"), agency)
    clock.set(datetime(2026, 2, 2, 9, tzinfo=UTC))
    proposals.end_job(ctx, world.actor("client"), january, "cancelled")
    assert available(ctx, agency) == 70
    job = world.job(1)
    exc = refused(lambda: world.submit("mo", job, agency), ctx, MemberBudgetExceeded)
    assert exc.details == {"budget": 10, "spent_this_month": 10, "required": 1}


def test_member_budget_is_per_calendar_month(world: World, clock: SimulatedClock) -> None:
    # R4: the budget is monthly, by calendar month in the account's time zone
    ctx = world.ctx
    agency = world.agency("olga", mo="member")
    acc.set_budget(ctx, world.actor("olga"), agency, world.people["mo"], 10)
    world.submit("mo", world.job(10), agency)
    job = world.job(1)
    clock.set(datetime(2026, 1, 31, 23, 59, tzinfo=UTC))
    refused(lambda: world.submit("mo", job, agency), ctx, MemberBudgetExceeded)
    clock.set(datetime(2026, 2, 1, 0, 0, tzinfo=UTC))
    world.submit("mo", job, agency)
    assert available(ctx, agency) == 69


def test_member_budget_month_follows_the_account_time_zone(
    world: World, clock: SimulatedClock
) -> None:
    # R4: in New York, 2026-02-01 03:00 UTC is still January
    ctx = world.ctx
    agency = world.agency("olga", mo="member")
    acc.update_account(ctx, world.actor("olga"), agency, timezone="America/New_York")
    acc.set_budget(ctx, world.actor("olga"), agency, world.people["mo"], 10)
    world.submit("mo", world.job(10), agency)
    job = world.job(1)
    clock.set(datetime(2026, 2, 1, 3, 0, tzinfo=UTC))
    refused(lambda: world.submit("mo", job, agency), ctx, MemberBudgetExceeded)
    clock.set(datetime(2026, 2, 1, 5, 0, tzinfo=UTC))
    world.submit("mo", job, agency)


# -- who submits (R5) ------------------------------------------------------------------


def test_proposal_must_be_assigned_to_a_member(world: World) -> None:
    # R5
    ctx = world.ctx
    agency = world.agency("olga")
    world.person("stranger")
    job = world.job(3)
    exc = refused(lambda: world.submit("olga", job, agency, freelancer="stranger"), ctx, NotAMember)
    assert exc.code == "not_a_member"
    # a stranger submitting under the agency does not learn it exists
    refused(lambda: world.submit("stranger", job, agency), ctx, NotFound)


def test_no_submit_on_behalf_on_agency_basic(world: World) -> None:
    # R5: agency-basic has no submit_on_behalf, even for the owner
    ctx = world.ctx
    agency = world.agency("olga", "agency-basic", ada="admin", max="manager", mo="member")
    job = world.job(0)
    for boss in ("olga", "ada", "max"):
        exc = refused(
            lambda boss=boss: world.submit(boss, job, agency, freelancer="mo"),
            ctx,
            CannotSubmitOnBehalf,
        )
        assert exc.code == "cannot_submit_on_behalf"
    # members submit for themselves (a free job: agency-basic grants nothing)
    assert world.submit("mo", job, agency)["connects_spent"] == 0


def test_submit_on_behalf_on_agency_plus(world: World) -> None:
    # R5: owner, admins and managers submit for any member; members do not
    ctx = world.ctx
    agency = world.agency("olga", ada="admin", max="manager", mo="member", pia="member")
    for boss, price in (("olga", 2), ("ada", 3), ("max", 4)):
        out = world.submit(boss, world.job(price), agency, freelancer="pia")
        prop = proposal(ctx, str(out["id"]))
        assert (prop.freelancer_id, prop.submitted_by) == (
            world.people["pia"],
            world.people[boss],
        )
    refused(
        lambda: world.submit("mo", world.job(5), agency, freelancer="pia"),
        ctx,
        CannotSubmitOnBehalf,
    )
    assert available(ctx, agency) == 80 - 9
    spends = entries_of(ctx, agency, "spend")
    assert {e.member_id for e in spends} == {world.people["pia"]}
    assert [e.actor_id for e in spends] == [world.people[b] for b in ("olga", "ada", "max")]


def test_one_proposal_per_freelancer_per_job(world: World) -> None:
    ctx = world.ctx
    agency = world.agency("olga")
    job = world.job(5)
    world.submit("olga", job, agency)
    refused(lambda: world.submit("olga", job, agency), ctx, AlreadyApplied)
    assert available(ctx, agency) == 75


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
    acc.credit_earnings(ctx, agency, 100_00)
    clock.set(FEB_15)
    cycles.run_due_cycles(ctx)
    assert available(ctx, agency) == 160
    purchases.buy(ctx, world.actor("olga"), agency, 30, "earnings")
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
    proposals.end_job(ctx, world.actor("client"), job, "cancelled")
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
    acc.credit_earnings(ctx, agency, 100_00)
    purchases.buy(ctx, world.actor("olga"), agency, 10, "earnings")  # same day, later issue
    clock.set(FEB_15)
    cycles.run_due_cycles(ctx)
    world.submit("olga", world.job(85), agency)
    remaining = [(lot.source, lot.remaining) for lot in lots_of(ctx, agency)]
    assert remaining == [("grant", 0), ("purchase", 5), ("grant", 80)]


# -- price changes (R13) and the pool paid from (R14) ---------------------------------


def test_price_changed_then_resubmitted(world: World) -> None:
    # R13: the live price is in the refusal; the price is fixed for the proposal
    ctx = world.ctx
    agency = world.agency("olga")
    job = world.job(10)
    proposals.change_price(ctx, world.people["client"], job, 12)
    exc = refused(lambda: world.submit("olga", job, agency, expected=10), ctx, PriceChanged)
    assert exc.code == "price_changed"
    assert exc.details == {"connects_required": 12, "expected_connects": 10}
    out = world.submit("olga", job, agency, expected=12)
    assert out["connects_spent"] == 12
    proposals.change_price(ctx, world.people["client"], job, 20)
    assert proposal(ctx, str(out["id"])).connects_spent == 12
    assert (
        proposals.end_job(ctx, world.actor("client"), job, "cancelled")["refunded_connects"] == 12
    )
    assert available(ctx, agency) == 80


def test_only_the_client_changes_an_open_jobs_price(world: World) -> None:
    # R13
    ctx = world.ctx
    job = world.job(10)
    world.person("mallory")
    refused(lambda: proposals.change_price(ctx, world.people["mallory"], job, 1), ctx, Forbidden)
    refused(
        lambda: proposals.change_price(ctx, world.people["client"], job, 1001), ctx, InvalidRequest
    )
    proposals.end_job(ctx, world.actor("client"), job, "cancelled")
    refused(lambda: proposals.change_price(ctx, world.people["client"], job, 3), ctx, JobNotOpen)


def test_spend_comes_from_the_account_submitted_under(world: World) -> None:
    # R14: the agency pool under an agency, the freelancer's own balance otherwise (001)
    ctx = world.ctx
    agency = world.agency("olga", mia="member")
    own = world.freelancer("mia")
    world.submit("mia", world.job(6), agency)
    assert (available(ctx, agency), available(ctx, own)) == (74, 10)
    world.submit("mia", world.job(3), own)
    assert (available(ctx, agency), available(ctx, own)) == (74, 7)
    assert [e.kind for e in entries_of(ctx, own)] == ["grant", "spend"]
    # the agency's pool cannot pay for a proposal under the freelancer account
    refused(lambda: world.submit("mia", world.job(8), own), ctx, InsufficientConnects)


def test_insufficient_connects_changes_nothing(world: World) -> None:
    # R14, R32
    ctx = world.ctx
    own = world.freelancer("fay")
    job = world.job(11)
    exc = refused(lambda: world.submit("fay", job, own), ctx, InsufficientConnects)
    assert exc.details == {"required": 11, "available": 10}
    assert available(ctx, own) == 10
    world.submit("fay", world.job(10), own)  # exactly everything
    assert available(ctx, own) == 0
    assert stored_balance(ctx, own) == 0


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
    ended = proposals.end_job(ctx, actor or world.actor("client"), job, outcome)
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
    assert proposals.end_job(ctx, world.actor("client"), job, "closed")["refunded_connects"] == 10
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
    proposals.withdraw(ctx, world.actor("olga"), str(gone["id"]))
    refused(
        lambda: proposals.withdraw(ctx, world.actor("olga"), str(gone["id"])),
        ctx,
        ProposalNotActive,
    )
    out = proposals.end_job(
        ctx, world.actor("client"), hired_job, "closed", hired_proposal_id=str(hired["id"])
    )
    assert out == {"id": hired_job, "status": "filled", "refunded_connects": 0}
    assert proposals.end_job(ctx, SYSTEM, expiring_job, "expired")["refunded_connects"] == 0
    # cancelling the withdrawn proposal's job gives nothing back for it
    assert (
        proposals.end_job(ctx, world.actor("client"), withdrawn_job, "cancelled")[
            "refunded_connects"
        ]
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
    assert proposals.end_job(ctx, world.actor("client"), job, "cancelled")["refunded_connects"] == 4
    assert [e.kind for e in entries_of(ctx, own)] == ["grant", "spend", "refund", "expire"]
    assert [e.amount for e in entries_of(ctx, own)] == [10, -4, 4, -10]
    assert available(ctx, own) == 0
    assert verify(ctx) == []


def test_ended_job_takes_no_proposals(world: World) -> None:
    ctx = world.ctx
    agency = world.agency("olga")
    job = world.job(5)
    proposals.end_job(ctx, world.actor("client"), job, "cancelled")
    refused(lambda: world.submit("olga", job, agency), ctx, JobNotOpen)
    refused(lambda: proposals.end_job(ctx, world.actor("client"), job, "closed"), ctx, JobNotOpen)


# -- interview rewards (R16) --------------------------------------------------------------


def test_interview_reward_goes_to_the_account_submitted_under(world: World) -> None:
    # R16: the agency gets the reward when the proposal was under the agency (003)
    ctx = with_reward(world.ctx, 2)
    world.ctx = ctx
    agency = world.agency("olga", mia="member")
    own = world.freelancer("mia")
    out = world.submit("mia", world.job(6), agency)
    assert proposals.interview(ctx, world.people["client"], str(out["id"])) == 2
    assert (available(ctx, agency), available(ctx, own)) == (76, 10)
    [reward] = entries_of(ctx, agency, "reward")
    assert (reward.amount, reward.member_id, reward.proposal_id) == (
        2,
        world.people["mia"],
        out["id"],
    )
    assert [lot.source for lot in lots_of(ctx, agency)] == ["grant", "reward"]
    # a second interview on the same proposal earns nothing more
    assert proposals.interview(ctx, world.people["client"], str(out["id"])) == 0
    assert available(ctx, agency) == 76
    # a freelancer-account proposal rewards the freelancer account
    mine = world.submit("mia", world.job(3), own)
    assert proposals.interview(ctx, world.people["client"], str(mine["id"])) == 2
    assert (available(ctx, agency), available(ctx, own)) == (76, 9)
    assert proposal(ctx, str(mine["id"])).status == "interviewing"
    assert verify(ctx) == []


def test_interview_reward_defaults_to_zero(world: World) -> None:
    # R16: default 0
    ctx = world.ctx
    agency = world.agency("olga")
    out = world.submit("olga", world.job(6), agency)
    assert proposals.interview(ctx, world.people["client"], str(out["id"])) == 0
    assert entries_of(ctx, agency, "reward") == []
    assert available(ctx, agency) == 74
    # only the job's client interviews
    world.person("mallory")
    refused(
        lambda: proposals.interview(ctx, world.people["mallory"], str(out["id"])), ctx, NotFound
    )


def test_interview_reward_from_a_plans_file(
    any_ctx: Context, make_ctx: Callable[..., Context], tmp_path: Path
) -> None:
    # R16 + R7: the reward is a plan setting read from configuration
    plans = tmp_path / "plans.toml"
    plans.write_text(
        '[plans.freelancer-basic]\nkind = "freelancer"\nmonthly_connects = 10\n'
        "interview_reward = 5\n"
    )
    ctx = make_ctx(any_ctx.db.url, plans_file=plans)
    world = World(ctx)
    own = world.freelancer("fay")
    out = world.submit("fay", world.job(4), own)
    assert proposals.interview(ctx, world.people["client"], str(out["id"])) == 5
    assert available(ctx, own) == 11


def test_rewards_are_never_forfeited_by_rollover(world: World, clock: SimulatedClock) -> None:
    # R9: rewarded Connects only expire
    ctx = with_reward(world.ctx, 50)
    world.ctx = ctx
    agency = world.agency("olga")
    out = world.submit("olga", world.job(0), agency)
    proposals.interview(ctx, world.people["client"], str(out["id"]))
    clock.set(APR_15)
    cycles.run_due_cycles(ctx)
    rewards = [lot.remaining for lot in lots_of(ctx, agency) if lot.source == "reward"]
    assert rewards == [50]
    assert available(ctx, agency) == 160 + 80 + 50


# -- purchases (R17, R18) ------------------------------------------------------------------


def test_buy_with_earnings_whole_or_not_at_all(world: World) -> None:
    # R17: earnings pay the whole price or the purchase is refused, never split
    ctx = world.ctx
    agency = world.agency("olga")
    acc.credit_earnings(ctx, agency, 5000)
    out = purchases.buy(ctx, world.actor("olga"), agency, 40, "earnings")
    assert (out["status"], out["amount_cents"], out["quantity"]) == ("succeeded", 4000, 40)
    assert (available(ctx, agency), earnings(ctx, agency)) == (120, 1000)
    exc = refused(
        lambda: purchases.buy(ctx, world.actor("olga"), agency, 11, "earnings"),
        ctx,
        InsufficientEarnings,
    )
    assert exc.details == {"earnings_cents": 1000, "amount_cents": 1100}
    assert earnings(ctx, agency) == 1000
    [entry] = entries_of(ctx, agency, "purchase")
    assert (entry.amount, entry.purchase_id, entry.actor_id) == (
        40,
        out["id"],
        world.people["olga"],
    )
    assert [lot.source for lot in lots_of(ctx, agency)] == ["grant", "purchase"]
    assert lots_of(ctx, agency)[1].expires_at == datetime(2027, 1, 15, 9, tzinfo=UTC)  # R10
    assert len(events_of(ctx, agency, "connects_purchased")) == 1


def test_buy_by_card(world: World) -> None:
    # R17: tok_visa succeeds; 15 cents a Connect on freelancer plans (R7)
    ctx = world.ctx
    own = world.freelancer("fay")
    method = purchases.add_billing_method(ctx, world.actor("fay"), own, "tok_visa")
    assert (method["brand"], method["last4"], method["default"]) == ("visa", "4242", True)
    out = purchases.buy(ctx, world.actor("fay"), own, 7, "default")
    assert (out["status"], out["amount_cents"], out["pay_with"]) == ("succeeded", 105, "card")
    assert available(ctx, own) == 17
    out = purchases.buy(ctx, world.actor("fay"), own, 1, str(method["id"]))
    assert available(ctx, own) == 18
    assert isinstance(ctx.gateway, SimulatedGateway)
    assert ctx.gateway.charges_for(str(out["id"])) == 1
    assert verify(ctx) == []


def test_declined_card_credits_nothing(world: World) -> None:
    # R17: payment_declined, nothing credited
    ctx = world.ctx
    agency = world.agency("olga")
    purchases.add_billing_method(ctx, world.actor("olga"), agency, "tok_chargeDeclined")
    exc = refused(
        lambda: purchases.buy(ctx, world.actor("olga"), agency, 20, "default"),
        ctx,
        PaymentDeclined,
    )
    assert exc.code == "payment_declined"
    assert exc.details["decline_code"] == "card_declined"
    with ctx.db.read() as conn:
        row = conn.execute(select(purchase_rows.c.status, purchase_rows.c.failure_code)).one()
    assert tuple(row) == ("failed", "card_declined")
    assert available(ctx, agency) == 80


def test_purchase_refusals(world: World) -> None:
    # R18: at least 1 Connect; only who may buy; the plan must sell Connects
    ctx = world.ctx
    agency = world.agency("olga", ada="admin", max="manager", mo="member")
    basic = world.agency("bob", "agency-basic")
    acc.credit_earnings(ctx, agency, 100_00)
    acc.credit_earnings(ctx, basic, 100_00)
    boss = world.actor("olga")
    for q in (0, -3):
        refused(lambda q=q: purchases.buy(ctx, boss, agency, q, "earnings"), ctx, InvalidRequest)
    for who in ("max", "mo"):
        refused(
            lambda who=who: purchases.buy(ctx, world.actor(who), agency, 1, "earnings"),
            ctx,
            Forbidden,
        )
    refused(lambda: purchases.buy(ctx, world.actor("bob"), agency, 1, "earnings"), ctx, NotFound)
    exc = refused(
        lambda: purchases.buy(ctx, world.actor("bob"), basic, 10, "earnings"),
        ctx,
        PlanCannotPurchase,
    )
    assert exc.code == "plan_cannot_purchase"
    refused(lambda: purchases.buy(ctx, boss, agency, 1, "default"), ctx, NoBillingMethod)
    refused(lambda: purchases.buy(ctx, boss, agency, 1, "bm_nope"), ctx, NoBillingMethod)
    purchases.buy(ctx, world.actor("ada"), agency, 1, "earnings")  # admins buy (R3)
    assert available(ctx, agency) == 81


def test_business_manager_buys_only_with_a_live_grant(world: World, clock: SimulatedClock) -> None:
    # R6, R18: connects:purchase lets the business manager buy; revoking stops it at once
    ctx = world.ctx
    agency = world.agency("olga")
    purchases.add_billing_method(ctx, world.actor("olga"), agency, "tok_visa")
    bm = Actor("business_manager", "topup-service")
    refused(lambda: purchases.buy(ctx, bm, agency, 40, "default"), ctx, Forbidden)
    with ctx.db.begin() as conn:
        conn.execute(
            insert(grants),
            {
                "id": "grt_1",
                "account_id": agency,
                "grantee": "topup-service",
                "permissions": "connects:purchase",
                "created_at": ctx.now(),
                "active_at": ctx.now() + timedelta(minutes=5),
                "revoked_at": None,
                "created_by": world.people["olga"],
            },
        )
    refused(lambda: purchases.buy(ctx, bm, agency, 40, "default"), ctx, Forbidden)  # not synced
    clock.advance(timedelta(minutes=5))
    out = purchases.buy(ctx, bm, agency, 40, "default")
    assert out["status"] == "succeeded"
    [entry] = entries_of(ctx, agency, "purchase")
    assert (entry.actor_kind, entry.actor_id) == ("business_manager", "topup-service")  # R30
    with ctx.db.begin() as conn:
        conn.execute(grants.update().values(revoked_at=ctx.now()))
    refused(lambda: purchases.buy(ctx, bm, agency, 40, "default"), ctx, Forbidden)
    assert available(ctx, agency) == 120


class FlakyGateway:
    """The simulated gateway that first times out ``fail`` times (R17 crash safety).

    With ``after_charge`` the charge is taken and then the answer is lost.
    """

    def __init__(self, inner: SimulatedGateway, fail: int, *, after_charge: bool) -> None:
        self.inner = inner
        self.fail = fail
        self.after_charge = after_charge
        self.calls = 0

    def attach(self, token: str) -> Any:
        return self.inner.attach(token)

    def charge(self, **kw: Any) -> ChargeResult:
        self.calls += 1
        if self.fail > 0:
            self.fail -= 1
            if self.after_charge:
                self.inner.charge(**kw)
            raise GatewayUnavailable("timed out")
        return self.inner.charge(**kw)


@pytest.mark.parametrize("after_charge", [False, True])
def test_gateway_outage_leaves_purchase_pending_then_resumed_once(
    world: World, clock: SimulatedClock, after_charge: bool
) -> None:
    # R17: a gateway that does not answer leaves the purchase pending; resume_pending
    # finishes it exactly once with the same idempotency key
    inner = world.ctx.gateway
    assert isinstance(inner, SimulatedGateway)
    gateway = FlakyGateway(inner, 2, after_charge=after_charge)
    ctx = dataclasses.replace(world.ctx, gateway=gateway)
    world.ctx = ctx
    agency = world.agency("olga")
    purchases.add_billing_method(ctx, world.actor("olga"), agency, "tok_visa")
    out = purchases.buy(ctx, world.actor("olga"), agency, 20, "default")
    assert out["status"] == "pending"
    assert available(ctx, agency) == 80
    assert purchases.resume_pending(ctx) == 0  # too recent
    clock.advance(timedelta(minutes=1))
    assert purchases.resume_pending(ctx) == 0  # the gateway is still down
    assert available(ctx, agency) == 80
    clock.advance(timedelta(minutes=1))
    assert purchases.resume_pending(ctx) == 1
    assert purchases.resume_pending(ctx) == 0
    assert available(ctx, agency) == 100
    assert len(entries_of(ctx, agency, "purchase")) == 1
    assert inner.charges_for(str(out["id"])) == 1
    assert gateway.calls == 3
    with ctx.db.read() as conn:
        status = conn.execute(
            select(purchase_rows.c.status).where(purchase_rows.c.id == out["id"])
        ).scalar_one()
    assert status == "succeeded"
    # completing again (a second worker) credits nothing more
    again = purchases.complete(ctx, str(out["id"]), ChargeResult(ok=True, charge_id="x"))
    assert again["status"] == "succeeded"
    assert available(ctx, agency) == 100
    assert verify(ctx) == []


# -- verify (R30) ---------------------------------------------------------------------------


def busy_world(world: World, clock: SimulatedClock) -> tuple[str, str]:
    ctx = world.ctx
    agency = world.agency("olga", mo="member")
    own = world.freelancer("fay")
    acc.credit_earnings(ctx, agency, 10_000)
    purchases.buy(ctx, world.actor("olga"), agency, 15, "earnings")
    job = world.job(30)
    world.submit("mo", job, agency)
    world.submit("fay", world.job(3), own)
    clock.set(FEB_15)
    cycles.run_due_cycles(ctx)
    proposals.end_job(ctx, world.actor("client"), job, "cancelled")
    return agency, own


def test_verify_finds_nothing_on_a_sound_ledger(world: World, clock: SimulatedClock) -> None:
    # R30: balance = sum of entries = left in lots
    busy_world(world, clock)
    assert verify(world.ctx) == []


@pytest.mark.parametrize(
    ("sql", "expect"),
    [
        ("UPDATE accounts SET balance = balance + 5 WHERE id = :a", "sum of entries"),
        (
            "UPDATE lots SET remaining = remaining - 1 WHERE account_id = :a AND remaining > 0",
            "left in lots",
        ),
        (
            "UPDATE entries SET amount = amount + 1 WHERE account_id = :a AND kind = 'spend'",
            "through lots",
        ),
        ("UPDATE accounts SET seq = seq + 1 WHERE id = :a", "numbered badly"),
        # no foreign key holds allocations to their entry and lot: verify does (0006)
        ("UPDATE allocations SET lot_id = lot_id || 'x' WHERE account_id = :a", "names an"),
        ("UPDATE allocations SET entry_id = entry_id || 'x' WHERE account_id = :a", "names an"),
        (
            "UPDATE entries SET balance_after = balance_after + 2 WHERE account_id = :a "
            "AND seq = (SELECT seq FROM accounts WHERE id = :a)",
            "last balance_after",
        ),
    ],
)
def test_verify_names_a_corrupted_account(
    world: World, clock: SimulatedClock, sql: str, expect: str
) -> None:
    # R30: a corrupted ledger is found and the breach names the account
    agency, _ = busy_world(world, clock)
    with world.ctx.db.begin() as conn:
        conn.execute(text(sql), {"a": agency})
    breaches = verify(world.ctx)
    assert breaches
    assert {b.account_id for b in breaches} == {agency}
    assert any(expect in b.what for b in breaches), [str(b) for b in breaches]
    assert all(str(b).startswith(f"{agency}: ") for b in breaches)


# -- every refusal changes nothing (R32) ---------------------------------------------------


def test_every_refusal_changes_nothing(world: World, clock: SimulatedClock) -> None:
    # R32: balances, entries, lots, proposals and events stay as they were
    ctx = world.ctx
    agency = world.agency("olga", mo="member", max="manager")
    basic = world.agency("bob", "agency-basic", mo="member")
    own = world.freelancer("fay")
    acc.set_budget(ctx, world.actor("olga"), agency, world.people["mo"], 5)
    acc.credit_earnings(ctx, agency, 500)
    purchases.add_billing_method(ctx, world.actor("olga"), agency, "tok_chargeDeclined")
    job = world.job(6)
    applied = world.job(1)
    world.submit("olga", applied, agency)
    closed = world.job(1)
    proposals.end_job(ctx, world.actor("client"), closed, "cancelled")
    clock.set(datetime(2027, 1, 15, 9, 0, tzinfo=UTC))  # everything from Jan 2026 expired
    olga, mo = world.actor("olga"), world.actor("mo")
    attempts: list[tuple[Callable[[], Any], type[ConnectsError]]] = [
        (lambda: world.submit("olga", job, agency), InsufficientConnects),
        (lambda: world.submit("olga", job, agency, expected=5), PriceChanged),
        (lambda: world.submit("mo", job, agency), MemberBudgetExceeded),
        (lambda: world.submit("mo", job, agency, freelancer="max"), CannotSubmitOnBehalf),
        (lambda: world.submit("olga", job, basic, freelancer="mo"), NotFound),
        (lambda: world.submit("bob", job, basic, freelancer="mo"), CannotSubmitOnBehalf),
        (lambda: world.submit("olga", applied, agency), AlreadyApplied),
        (lambda: world.submit("olga", closed, agency), JobNotOpen),
        (lambda: world.submit("fay", job, own), InsufficientConnects),
        (lambda: world.submit("fay", job, own, expected=-1), InvalidRequest),
        (lambda: purchases.buy(ctx, olga, agency, 6, "earnings"), InsufficientEarnings),
        (lambda: purchases.buy(ctx, olga, agency, 6, "default"), PaymentDeclined),
        (lambda: purchases.buy(ctx, mo, agency, 6, "earnings"), Forbidden),
        (lambda: purchases.buy(ctx, olga, agency, 0, "earnings"), InvalidRequest),
        (lambda: purchases.buy(ctx, world.actor("bob"), basic, 6, "earnings"), PlanCannotPurchase),
        (lambda: purchases.buy(ctx, world.actor("fay"), own, 6, "default"), NoBillingMethod),
        (lambda: acc.update_account(ctx, mo, agency, plan="agency-basic"), Forbidden),
        (lambda: acc.update_account(ctx, olga, agency, plan="freelancer-plus"), PlanNotAllowed),
        (lambda: acc.update_account(ctx, olga, agency, timezone="Nowhere/Land"), InvalidRequest),
        (lambda: proposals.end_job(ctx, olga, job, "cancelled"), Forbidden),
        (lambda: proposals.end_job(ctx, world.actor("client"), job, "won"), InvalidRequest),
    ]
    for fn, exc in attempts:
        refused(fn, ctx, exc)
    assert stored_balance(ctx, agency) == 79  # the sweep inside the refusals rolled back
    assert available(ctx, agency) == 0


# -- one clock (R33) --------------------------------------------------------------------------


def test_every_entry_is_dated_by_the_one_clock(world: World, clock: SimulatedClock) -> None:
    # R33: time comes from the simulated clock, which only moves forward
    ctx = world.ctx
    own = world.freelancer("fay")
    later = START + timedelta(days=3, hours=2)
    clock.set(later)
    world.submit("fay", world.job(2), own)
    assert [e.at for e in entries_of(ctx, own)] == [START, later]
    with pytest.raises(ValueError, match="only moves forward"):
        clock.set(START)
    assert ctx.now() == later
