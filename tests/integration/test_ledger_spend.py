"""Spending through the services, on SQLite and PostgreSQL: the shared pool and member
budgets (R4), who submits (R5), price changes (R13) and the pool paid from (R14).
"""

from __future__ import annotations

from datetime import UTC, datetime

from connects.domain.clock import SimulatedClock
from connects.domain.commands import ChangeJobPrice, EndJob, SetBudget, UpdateAccount
from connects.domain.errors import (
    AlreadyApplied,
    CannotSubmitOnBehalf,
    Forbidden,
    InsufficientConnects,
    InvalidRequest,
    JobNotOpen,
    MemberBudgetExceeded,
    NotAMember,
    NotFound,
    PriceChanged,
)
from tests.integration.ledger_support import (
    available,
    entries_of,
    proposal,
    refused,
    stored_balance,
    world_fixture,  # noqa: F401 (the world fixture)
)
from tests.world import World

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
    ctx.handle(SetBudget(world.actor("olga"), agency, mo, 15))
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
    refused(lambda: ctx.handle(SetBudget(world.actor("max"), agency, mo, 100)), ctx, Forbidden)
    refused(lambda: ctx.handle(SetBudget(world.actor("olga"), agency, mo, -1)), ctx, InvalidRequest)


def test_member_budget_is_net_of_refunds(world: World) -> None:
    # R4 + R15: a refunded proposal gives the budget back
    ctx = world.ctx
    agency = world.agency("olga", mo="member")
    ctx.handle(SetBudget(world.actor("olga"), agency, world.people["mo"], 12))
    cancelled = world.job(10, title="to be cancelled")
    world.submit("mo", cancelled, agency)
    job = world.job(8)
    refused(lambda: world.submit("mo", job, agency), ctx, MemberBudgetExceeded)
    ctx.handle(EndJob(world.actor("client"), cancelled, "cancelled"))
    world.submit("mo", job, agency)
    assert available(ctx, agency) == 80 - 8


def test_refund_of_last_months_proposal_does_not_widen_this_months_budget(
    world: World, clock: SimulatedClock
) -> None:
    # R4: the budget counts this month's proposals net of their refunds; a refund of a
    # January proposal in February gives back Connects, not February budget
    ctx = world.ctx
    agency = world.agency("olga", mo="member")
    ctx.handle(SetBudget(world.actor("olga"), agency, world.people["mo"], 10))
    january = world.job(10, title="january")
    world.submit("mo", january, agency)
    clock.set(datetime(2026, 2, 1, 9, tzinfo=UTC))
    world.submit("mo", world.job(10, title="february"), agency)
    clock.set(datetime(2026, 2, 2, 9, tzinfo=UTC))
    ctx.handle(EndJob(world.actor("client"), january, "cancelled"))
    assert available(ctx, agency) == 70
    job = world.job(1)
    exc = refused(lambda: world.submit("mo", job, agency), ctx, MemberBudgetExceeded)
    assert exc.details == {"budget": 10, "spent_this_month": 10, "required": 1}


def test_member_budget_is_per_calendar_month(world: World, clock: SimulatedClock) -> None:
    # R4: the budget is monthly, by calendar month in the account's time zone
    ctx = world.ctx
    agency = world.agency("olga", mo="member")
    ctx.handle(SetBudget(world.actor("olga"), agency, world.people["mo"], 10))
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
    ctx.handle(UpdateAccount(world.actor("olga"), agency, timezone="America/New_York"))
    ctx.handle(SetBudget(world.actor("olga"), agency, world.people["mo"], 10))
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


# -- price changes (R13) and the pool paid from (R14) ---------------------------------


def test_price_changed_then_resubmitted(world: World) -> None:
    # R13: the live price is in the refusal; the price is fixed for the proposal
    ctx = world.ctx
    agency = world.agency("olga")
    job = world.job(10)
    ctx.handle(ChangeJobPrice(world.people["client"], job, 12))
    exc = refused(lambda: world.submit("olga", job, agency, expected=10), ctx, PriceChanged)
    assert exc.code == "price_changed"
    assert exc.details == {"connects_required": 12, "expected_connects": 10}
    out = world.submit("olga", job, agency, expected=12)
    assert out["connects_spent"] == 12
    ctx.handle(ChangeJobPrice(world.people["client"], job, 20))
    assert proposal(ctx, str(out["id"])).connects_spent == 12
    assert ctx.handle(EndJob(world.actor("client"), job, "cancelled"))["refunded_connects"] == 12
    assert available(ctx, agency) == 80


def test_only_the_client_changes_an_open_jobs_price(world: World) -> None:
    # R13
    ctx = world.ctx
    job = world.job(10)
    world.person("mallory")
    refused(lambda: ctx.handle(ChangeJobPrice(world.people["mallory"], job, 1)), ctx, Forbidden)
    refused(
        lambda: ctx.handle(ChangeJobPrice(world.people["client"], job, 1001)), ctx, InvalidRequest
    )
    ctx.handle(EndJob(world.actor("client"), job, "cancelled"))
    refused(lambda: ctx.handle(ChangeJobPrice(world.people["client"], job, 3)), ctx, JobNotOpen)


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
