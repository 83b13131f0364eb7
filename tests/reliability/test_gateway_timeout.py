"""The simulated gateway's time-out card, and purchases that survive it (R17, R31).

``tok_chargeTimeout`` takes the money and answers with a time-out the first time a key
is charged: the purchase stays pending and is finished, once, with the same key.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from connects.db.schema import accounts, gateway_charges
from connects.domain.clock import SimulatedClock
from connects.domain.commands import AddBillingMethod, BuyConnects
from connects.gateway import GatewayUnavailable, SimulatedGateway
from connects.services import purchase_steps
from connects.services.context import Context
from connects.services.uow import UnitOfWork
from connects.services.verify import verify
from tests.world import World


def _balance(ctx: Context, account_id: str) -> int:
    with ctx.db.read() as conn:
        return int(
            conn.execute(select(accounts.c.balance).where(accounts.c.id == account_id)).scalar_one()
        )


def _charges(ctx: Context) -> int:
    with ctx.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(gateway_charges)).scalar_one())


def test_the_timeout_token_takes_the_charge_then_answers_the_retry(ctx: Context) -> None:
    gateway = ctx.gateway
    assert isinstance(gateway, SimulatedGateway)
    card = gateway.attach("tok_chargeTimeout")
    assert (card.brand, card.last4) == ("visa", "0119")
    kw = {"method_ref": card.ref, "amount_cents": 100, "currency": "USD"}
    with pytest.raises(GatewayUnavailable):
        gateway.charge(idempotency_key="k1", **kw)  # type: ignore[arg-type]
    assert gateway.charges_for("k1") == 1  # the money was taken
    again = gateway.charge(idempotency_key="k1", **kw)  # type: ignore[arg-type]
    assert again.ok and gateway.charges_for("k1") == 1


def test_a_timed_out_card_purchase_is_resumed_once(ctx: Context, clock: SimulatedClock) -> None:
    # R17: the purchase stays pending (nothing credited) until resume_pending retries
    # the same key; then it is credited once and charged once.
    w = World(ctx)
    agency = w.agency("olga")
    owner = w.actor("olga")
    card = ctx.handle(AddBillingMethod(owner, agency, "tok_chargeTimeout"))
    before = _balance(ctx, agency)
    bought = ctx.handle(BuyConnects(owner, agency, 5, card["id"]))
    assert bought["status"] == "pending"
    assert _balance(ctx, agency) == before  # nothing credited while unknown
    assert purchase_steps.resume_pending(ctx) == 0  # not yet 30 s old
    clock.advance(timedelta(seconds=31))
    assert purchase_steps.resume_pending(ctx) == 1
    assert purchase_steps.resume_pending(ctx) == 0
    assert purchase_steps.resume(UnitOfWork(ctx), agency, bought["id"])["status"] == "succeeded"
    assert _charges(ctx) == 1
    assert _balance(ctx, agency) == before + 5
    assert verify(ctx) == []


def test_a_request_run_twice_buys_once(ctx: Context) -> None:
    # R31: the same request (caller, account, Idempotency-Key) run again finds the
    # purchase its first run made, e.g. after its answer was lost to a dropped
    # connection; another key is another purchase.
    w = World(ctx)
    agency = w.agency("olga")
    owner = w.actor("olga")
    card = ctx.handle(AddBillingMethod(owner, agency, "tok_chargeTimeout"))
    first = ctx.handle(BuyConnects(owner, agency, 3, card["id"], request_key="key-1"))
    assert first["status"] == "pending"  # the gateway timed out
    again = ctx.handle(BuyConnects(owner, agency, 3, card["id"], request_key="key-1"))
    assert (again["id"], again["status"]) == (first["id"], "succeeded")
    other = ctx.handle(BuyConnects(owner, agency, 3, card["id"], request_key="key-2"))
    assert other["id"] != first["id"]
    assert _charges(ctx) == 2
    assert verify(ctx) == []
