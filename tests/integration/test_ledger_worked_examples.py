"""Worked examples: whole stories from the seeds, told through the services.

Each story asserts the exact numbers at every step, so a change to any rule shows up
as a wrong number in a story a reader can follow.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from connects.domain.clock import SimulatedClock
from connects.domain.commands import (
    AddBillingMethod,
    BuyConnects,
    ChangeJobPrice,
    CreditEarnings,
    EndJob,
    StartInterview,
)
from connects.domain.errors import (
    Forbidden,
    InsufficientEarnings,
    NoBillingMethod,
    PriceChanged,
)
from connects.domain.plans import DEFAULT_PLANS, Catalog
from connects.services import cycles, views
from connects.services.context import Context
from connects.services.verify import verify
from tests.conftest import START
from tests.integration.ledger_support import (
    available,
    earnings,
    entries_of,
    lots_of,
    snapshot,
    stored_balance,
)
from tests.world import World


def day(month: int, d: int, hour: int = 0, year: int = 2026) -> datetime:
    return datetime(year, month, d, hour, tzinfo=UTC)


@pytest.fixture
def plus_with_reward(any_ctx: Context) -> Context:
    """The default catalog, with a 2-Connect interview reward on agency-plus (R16)."""
    raw = {k: dict(v) for k, v in DEFAULT_PLANS.items()}
    raw["agency-plus"]["interview_reward"] = 2
    return dataclasses.replace(any_ctx, catalog=Catalog.from_mapping(raw))


def test_an_agency_year_on_agency_plus(plus_with_reward: Context, clock: SimulatedClock) -> None:
    """Northwind Studio on agency-plus (seeds 002, 003): a month, three cycles, a year."""
    ctx = plus_with_reward
    w = World(ctx)
    agency = w.agency(
        "olga", "agency-plus", ada="admin", max="manager", mia="member", noah="member"
    )
    olga = w.actor("olga")
    client = w.people.setdefault("client", w.person("client"))
    ctx.handle(AddBillingMethod(w.actor("ada"), agency, "tok_visa"))

    # Jan 15: the cycle starts; 80 Connects shared by the whole team (R7, R8, R4)
    assert available(ctx, agency) == 80
    [g1] = lots_of(ctx, agency)
    assert (g1.issued_at, g1.expires_at) == (START, day(1, 15, 9, year=2027))  # R10

    # Jan 16: three proposals from the pool, one submitted by the manager for Mia (R5, R14)
    clock.set(day(1, 16, 10))
    job_a = w.job(10, title="Shopify store")
    job_b = w.job(6, title="Logo")
    job_c = w.job(12, title="React dashboard")
    w.submit("mia", job_a, agency)
    prop_b = w.submit("noah", job_b, agency)
    w.submit("max", job_c, agency, freelancer="mia")
    assert available(ctx, agency) == 52

    # Jan 17: the client raises job D's price while Noah writes; refused, then resubmitted (R13)
    clock.set(day(1, 17, 10))
    job_d = w.job(8, title="Data pipeline")
    ctx.handle(ChangeJobPrice(client, job_d, 14))
    before = snapshot(ctx)
    with pytest.raises(PriceChanged) as info:
        w.submit("noah", job_d, agency, expected=8)
    assert info.value.details["connects_required"] == 14
    assert snapshot(ctx) == before  # R32
    w.submit("noah", job_d, agency, expected=14)
    assert available(ctx, agency) == 38

    # Jan 18: the client cancels job A: Mia's 10 go back into the January grant (R15)
    clock.set(day(1, 18, 10))
    assert ctx.handle(EndJob(w.actor("client"), job_a, "cancelled"))["refunded_connects"] == 10
    assert available(ctx, agency) == 48
    assert [lot.remaining for lot in lots_of(ctx, agency)] == [48]

    # Jan 20: an interview on Noah's proposal: the reward goes to the agency (R16)
    clock.set(day(1, 20, 12))
    assert ctx.handle(StartInterview(client, str(prop_b["id"]))) == 2
    assert available(ctx, agency) == 50

    # Jan 25: the admin buys 40 Connects by card at $1 each (R7, R17, R18)
    clock.set(day(1, 25, 12))
    bought = ctx.handle(BuyConnects(w.actor("ada"), agency, 40, "default"))
    assert (bought["status"], bought["amount_cents"]) == ("succeeded", 4000)
    assert available(ctx, agency) == 90
    over = views.overview(ctx, olga, agency)
    assert (over["used_this_month"], over["purchased_this_month"]) == (32, 40)  # R26

    # Feb 15 and Mar 15: grants roll over; the grants held stay at or under 160 (R9)
    clock.set(day(2, 15))
    assert cycles.run_due_cycles(ctx) == 1
    assert available(ctx, agency) == 170
    clock.set(day(3, 15))
    assert cycles.run_due_cycles(ctx) == 1
    assert available(ctx, agency) == 250
    assert entries_of(ctx, agency, "rollover_forfeit") == []

    # Apr 15: 208 granted Connects held; Mia's 10 refunded into the January grant do not
    # count, so 198 are, 38 above the cap: cut from the January grant (R9, R15); the
    # refunded 10, the bought 40 and the rewarded 2 are never forfeited
    clock.set(day(4, 15))
    assert cycles.run_due_cycles(ctx) == 1
    [forfeit] = entries_of(ctx, agency, "rollover_forfeit")
    assert (forfeit.amount, forfeit.balance_after) == (-38, 212)
    assert available(ctx, agency) == 292
    left = [(lot.source, lot.remaining) for lot in lots_of(ctx, agency)]
    assert left == [
        ("grant", 10),
        ("reward", 2),
        ("purchase", 40),
        ("grant", 80),
        ("grant", 80),
        ("grant", 80),
    ]

    # A year on (Jan 26, 2027): what is left of the January grant, the reward and the
    # purchase have expired (R10); they are not available even before the sweep (R12)
    clock.set(day(1, 26, year=2027))
    assert stored_balance(ctx, agency) == 292
    assert available(ctx, agency) == 240
    over = views.overview(ctx, olga, agency)
    assert (over["available"], over["expiring_30d"]) == (240, 80)  # the Feb 15 grant
    assert cycles.sweep_expired(ctx) == 52
    assert [(e.amount, e.balance_after) for e in entries_of(ctx, agency, "expire")] == [
        (-10, 282),
        (-2, 280),
        (-40, 240),
    ]
    # the missed cycles May..Jan are applied late, each capped (R8, R9)
    assert cycles.run_due_cycles(ctx) == 9
    assert [e.amount for e in entries_of(ctx, agency, "rollover_forfeit")] == [-38] + [-80] * 9
    assert available(ctx, agency) == 240
    assert stored_balance(ctx, agency) == 240

    # every entry names who did it and the balance after (R30)
    ledger = entries_of(ctx, agency)
    assert [e.seq for e in ledger] == list(range(1, len(ledger) + 1))
    assert ledger[-1].balance_after == 240
    assert sum(e.amount for e in ledger) == 240
    assert {e.actor_kind for e in ledger} == {"system", "user"}
    assert verify(ctx) == []


def test_one_person_two_accounts_never_mix(any_ctx: Context) -> None:
    """Seed 001: a freelancer in an agency; agency and freelancer Connects never mix (R1)."""
    ctx = any_ctx
    w = World(ctx)
    agency = w.agency("rado", "agency-plus", nick="member")
    nick_own = w.freelancer("nick", "freelancer-plus")
    rado_own = w.freelancer("rado", "freelancer-basic")
    assert (available(ctx, agency), available(ctx, nick_own), available(ctx, rado_own)) == (
        80,
        100,
        10,
    )

    # Under the agency the agency's pool pays; under his own profile his own balance pays
    job = w.job(16, title="Mobile app")
    w.submit("nick", job, agency)
    assert (available(ctx, agency), available(ctx, nick_own)) == (64, 100)
    other = w.job(8, title="API")
    w.submit("nick", other, nick_own)
    assert (available(ctx, agency), available(ctx, nick_own)) == (64, 92)
    [agency_spend] = entries_of(ctx, agency, "spend")
    assert agency_spend.member_id == w.people["nick"]
    assert [e.kind for e in entries_of(ctx, nick_own)] == ["grant", "spend"]

    # "Can I buy Connects for the agency from my freelancer balance?" No (001, R1, R17):
    # the agency's own earnings are 0, and the freelancer's card is not the agency's
    ctx.handle(CreditEarnings(rado_own, 50_000))
    card = ctx.handle(AddBillingMethod(w.actor("rado"), rado_own, "tok_visa"))
    before = snapshot(ctx)
    with pytest.raises(InsufficientEarnings):
        ctx.handle(BuyConnects(w.actor("rado"), agency, 10, "earnings"))
    with pytest.raises(NoBillingMethod):
        ctx.handle(BuyConnects(w.actor("rado"), agency, 10, str(card["id"])))
    with pytest.raises(Forbidden):  # a member never buys for the agency (R3)
        ctx.handle(BuyConnects(w.actor("nick"), agency, 10, "earnings"))
    assert snapshot(ctx) == before  # R32
    assert earnings(ctx, rado_own) == 50_000

    # "Add a billing method under the Agency profile, then you can purchase" (001)
    ctx.handle(AddBillingMethod(w.actor("rado"), agency, "tok_visa"))
    ctx.handle(BuyConnects(w.actor("rado"), agency, 10, "default"))
    assert (available(ctx, agency), available(ctx, nick_own), available(ctx, rado_own)) == (
        74,
        92,
        10,
    )

    # Both jobs cancelled: each account gets back exactly what it paid (R15)
    ctx.handle(EndJob(w.actor("client"), job, "cancelled"))
    ctx.handle(EndJob(w.actor("client"), other, "cancelled"))
    assert (available(ctx, agency), available(ctx, nick_own), available(ctx, rado_own)) == (
        90,
        100,
        10,
    )
    assert earnings(ctx, rado_own) == 50_000
    assert earnings(ctx, agency) == 0
    assert verify(ctx) == []
