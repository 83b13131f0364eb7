"""Buying Connects through the services, on SQLite and PostgreSQL (R17, R18, R6)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from connects.db.schema import grants
from connects.db.schema import purchases as purchase_rows
from connects.domain.clock import SimulatedClock
from connects.domain.commands import AddBillingMethod, BuyConnects, CreditEarnings
from connects.domain.errors import (
    Forbidden,
    InsufficientEarnings,
    InvalidRequest,
    NoBillingMethod,
    NotFound,
    PaymentDeclined,
    PlanCannotPurchase,
)
from connects.domain.policy import Actor
from connects.gateway import ChargeResult, GatewayUnavailable, SimulatedGateway
from connects.services import purchase_steps
from connects.services.uow import UnitOfWork
from connects.services.verify import verify
from tests.integration.ledger_support import (
    available,
    earnings,
    entries_of,
    events_of,
    lots_of,
    refused,
    world_fixture,  # noqa: F401 (the world fixture)
)
from tests.world import World

# -- purchases (R17, R18) ------------------------------------------------------------------


def test_buy_with_earnings_whole_or_not_at_all(world: World) -> None:
    # R17: earnings pay the whole price or the purchase is refused, never split
    ctx = world.ctx
    agency = world.agency("olga")
    ctx.handle(CreditEarnings(agency, 5000))
    out = ctx.handle(BuyConnects(world.actor("olga"), agency, 40, "earnings"))
    assert (out["status"], out["amount_cents"], out["quantity"]) == ("succeeded", 4000, 40)
    assert (available(ctx, agency), earnings(ctx, agency)) == (120, 1000)
    exc = refused(
        lambda: ctx.handle(BuyConnects(world.actor("olga"), agency, 11, "earnings")),
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
    method = ctx.handle(AddBillingMethod(world.actor("fay"), own, "tok_visa"))
    assert (method["brand"], method["last4"], method["default"]) == ("visa", "4242", True)
    out = ctx.handle(BuyConnects(world.actor("fay"), own, 7, "default"))
    assert (out["status"], out["amount_cents"], out["pay_with"]) == ("succeeded", 105, "card")
    assert available(ctx, own) == 17
    out = ctx.handle(BuyConnects(world.actor("fay"), own, 1, str(method["id"])))
    assert available(ctx, own) == 18
    assert isinstance(ctx.gateway, SimulatedGateway)
    assert ctx.gateway.charges_for(str(out["id"])) == 1
    assert verify(ctx) == []


def test_declined_card_credits_nothing(world: World) -> None:
    # R17: payment_declined, nothing credited
    ctx = world.ctx
    agency = world.agency("olga")
    ctx.handle(AddBillingMethod(world.actor("olga"), agency, "tok_chargeDeclined"))
    exc = refused(
        lambda: ctx.handle(BuyConnects(world.actor("olga"), agency, 20, "default")),
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
    ctx.handle(CreditEarnings(agency, 100_00))
    ctx.handle(CreditEarnings(basic, 100_00))
    boss = world.actor("olga")
    for q in (0, -3):
        refused(
            lambda q=q: ctx.handle(BuyConnects(boss, agency, q, "earnings")), ctx, InvalidRequest
        )
    for who in ("max", "mo"):
        refused(
            lambda who=who: ctx.handle(BuyConnects(world.actor(who), agency, 1, "earnings")),
            ctx,
            Forbidden,
        )
    refused(
        lambda: ctx.handle(BuyConnects(world.actor("bob"), agency, 1, "earnings")), ctx, NotFound
    )
    exc = refused(
        lambda: ctx.handle(BuyConnects(world.actor("bob"), basic, 10, "earnings")),
        ctx,
        PlanCannotPurchase,
    )
    assert exc.code == "plan_cannot_purchase"
    refused(lambda: ctx.handle(BuyConnects(boss, agency, 1, "default")), ctx, NoBillingMethod)
    refused(lambda: ctx.handle(BuyConnects(boss, agency, 1, "bm_nope")), ctx, NoBillingMethod)
    ctx.handle(BuyConnects(world.actor("ada"), agency, 1, "earnings"))  # admins buy (R3)
    assert available(ctx, agency) == 81


def test_business_manager_buys_only_with_a_live_grant(world: World, clock: SimulatedClock) -> None:
    # R6, R18: connects:purchase lets the business manager buy; revoking stops it at once;
    # without a live grant the account is hidden from it (not_found, like an outsider)
    ctx = world.ctx
    agency = world.agency("olga")
    ctx.handle(AddBillingMethod(world.actor("olga"), agency, "tok_visa"))
    bm = Actor("business_manager", "topup-service")
    refused(lambda: ctx.handle(BuyConnects(bm, agency, 40, "default")), ctx, NotFound)
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
    refused(lambda: ctx.handle(BuyConnects(bm, agency, 40, "default")), ctx, NotFound)  # not synced
    clock.advance(timedelta(minutes=5))
    out = ctx.handle(BuyConnects(bm, agency, 40, "default"))
    assert out["status"] == "succeeded"
    [entry] = entries_of(ctx, agency, "purchase")
    assert (entry.actor_kind, entry.actor_id) == ("business_manager", "topup-service")  # R30
    with ctx.db.begin() as conn:
        conn.execute(grants.update().values(revoked_at=ctx.now()))
    refused(lambda: ctx.handle(BuyConnects(bm, agency, 40, "default")), ctx, NotFound)
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
    ctx.handle(AddBillingMethod(world.actor("olga"), agency, "tok_visa"))
    out = ctx.handle(BuyConnects(world.actor("olga"), agency, 20, "default"))
    assert out["status"] == "pending"
    assert available(ctx, agency) == 80
    assert purchase_steps.resume_pending(ctx) == 0  # too recent
    clock.advance(timedelta(minutes=1))
    assert purchase_steps.resume_pending(ctx) == 0  # the gateway is still down
    assert available(ctx, agency) == 80
    clock.advance(timedelta(minutes=1))
    assert purchase_steps.resume_pending(ctx) == 1
    assert purchase_steps.resume_pending(ctx) == 0
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
    again = purchase_steps.complete(
        UnitOfWork(ctx), agency, str(out["id"]), ChargeResult(ok=True, charge_id="x")
    )
    assert again["status"] == "succeeded"
    assert available(ctx, agency) == 100
    assert verify(ctx) == []
