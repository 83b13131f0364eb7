"""The ledger's invariants, on SQLite and PostgreSQL: verify (R30), every refusal
changes nothing (R32), one clock (R33).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from connects.domain.clock import SimulatedClock
from connects.domain.commands import (
    AddBillingMethod,
    BuyConnects,
    CreditEarnings,
    EndJob,
    SetBudget,
    UpdateAccount,
)
from connects.domain.errors import (
    AlreadyApplied,
    CannotSubmitOnBehalf,
    ConnectsError,
    Forbidden,
    InsufficientConnects,
    InsufficientEarnings,
    InvalidRequest,
    JobNotOpen,
    MemberBudgetExceeded,
    NoBillingMethod,
    NotFound,
    PaymentDeclined,
    PlanCannotPurchase,
    PlanNotAllowed,
    PriceChanged,
)
from connects.services import cycles
from connects.services.verify import verify
from tests.conftest import START
from tests.integration.ledger_support import (
    FEB_15,
    available,
    entries_of,
    refused,
    stored_balance,
    world_fixture,  # noqa: F401 (the world fixture)
)
from tests.world import World

# -- verify (R30) ---------------------------------------------------------------------------


def busy_world(world: World, clock: SimulatedClock) -> tuple[str, str]:
    ctx = world.ctx
    agency = world.agency("olga", mo="member")
    own = world.freelancer("fay")
    ctx.handle(CreditEarnings(agency, 10_000))
    ctx.handle(BuyConnects(world.actor("olga"), agency, 15, "earnings"))
    job = world.job(30)
    world.submit("mo", job, agency)
    world.submit("fay", world.job(3), own)
    clock.set(FEB_15)
    cycles.run_due_cycles(ctx)
    ctx.handle(EndJob(world.actor("client"), job, "cancelled"))
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
        # R39: cost is neither lost nor made up
        (
            "UPDATE lots SET cost_left_cents = cost_left_cents - 1 "
            "WHERE account_id = :a AND cost_left_cents > 0",
            "by its allocations",
        ),
        ("UPDATE allocations SET cost_cents = cost_cents + 1 WHERE account_id = :a", "credited"),
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
    ctx.handle(SetBudget(world.actor("olga"), agency, world.people["mo"], 5))
    ctx.handle(CreditEarnings(agency, 500))
    ctx.handle(AddBillingMethod(world.actor("olga"), agency, "tok_chargeDeclined"))
    job = world.job(6)
    applied = world.job(1)
    world.submit("olga", applied, agency)
    closed = world.job(1)
    ctx.handle(EndJob(world.actor("client"), closed, "cancelled"))
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
        (lambda: ctx.handle(BuyConnects(olga, agency, 6, "earnings")), InsufficientEarnings),
        (lambda: ctx.handle(BuyConnects(olga, agency, 6, "default")), PaymentDeclined),
        (lambda: ctx.handle(BuyConnects(mo, agency, 6, "earnings")), Forbidden),
        (lambda: ctx.handle(BuyConnects(olga, agency, 0, "earnings")), InvalidRequest),
        (
            lambda: ctx.handle(BuyConnects(world.actor("bob"), basic, 6, "earnings")),
            PlanCannotPurchase,
        ),
        (lambda: ctx.handle(BuyConnects(world.actor("fay"), own, 6, "default")), NoBillingMethod),
        (lambda: ctx.handle(UpdateAccount(mo, agency, plan="agency-basic")), Forbidden),
        (lambda: ctx.handle(UpdateAccount(olga, agency, plan="freelancer-plus")), PlanNotAllowed),
        (lambda: ctx.handle(UpdateAccount(olga, agency, timezone="Nowhere/Land")), InvalidRequest),
        (lambda: ctx.handle(EndJob(olga, job, "cancelled")), Forbidden),
        (lambda: ctx.handle(EndJob(world.actor("client"), job, "won")), InvalidRequest),
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


# -- holds (R34) ----------------------------------------------------------------------


def _boosted_world(world: World) -> str:
    """An agency with one held bid, one captured bid and one released bid."""
    from connects.domain.commands import RecordOutcome, SubmitProposal, WithdrawProposal

    ctx = world.ctx
    agency = world.agency("hana", kim="member", lee="member")
    job = world.job(2)
    made = {}
    for who, bid in (("hana", 3), ("kim", 4), ("lee", 5)):
        made[who] = ctx.handle(
            SubmitProposal(world.actor(who), job, agency, world.people[who], 2, bid)
        )["id"]
    ctx.handle(RecordOutcome(world.people["client"], made["kim"], "viewed"))  # captured
    ctx.handle(WithdrawProposal(world.actor("lee"), made["lee"]))  # released
    return agency


def test_verify_finds_nothing_with_holds(world: World) -> None:
    # R34: held, captured and released holds on a sound ledger
    _boosted_world(world)
    assert verify(world.ctx) == []


@pytest.mark.parametrize(
    ("sql", "expect"),
    [
        ("UPDATE accounts SET held = held + 1 WHERE id = :a", "sum of open holds"),
        ("UPDATE accounts SET held = balance + 1 WHERE id = :a", "> balance"),
        # a hold ended twice: a second release entry of the captured hold
        (
            "INSERT INTO entries (id, account_id, seq, at, kind, amount, balance_after, "
            "actor_kind, hold_id) SELECT 'ent_twice', e.account_id, e.seq + 1, e.at, "
            "'release', 0, e.balance_after, 'system', h.id FROM entries e JOIN holds h "
            "ON h.account_id = e.account_id AND h.status = 'captured' JOIN accounts a "
            "ON a.id = e.account_id AND a.seq = e.seq WHERE e.account_id = :a",
            "ended 2 times",
        ),
        (
            "UPDATE holds SET status = 'held' WHERE account_id = :a AND status = 'released'",
            "ended 1 times",
        ),
        (
            "UPDATE holds SET captured = captured - 1 WHERE account_id = :a AND captured > 0",
            "captured",
        ),
    ],
)
def test_verify_names_a_hold_that_breaks_r34(world: World, sql: str, expect: str) -> None:
    # R34: held <= balance, held = the open holds, each hold ended once
    agency = _boosted_world(world)
    with world.ctx.db.begin() as conn:
        conn.execute(text(sql), {"a": agency})
    breaches = verify(world.ctx)
    assert {b.account_id for b in breaches} == {agency}
    assert any(expect in b.what for b in breaches), [str(b) for b in breaches]
