"""Helpers for the auto top-up tests: an agency set up as seed 000 describes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import select

from connects.db.schema import entries, events, gateway_charges, topups
from connects.domain.commands import AddBillingMethod, GrantPermissions, SetAutoTopUp
from connects.domain.policy import PURCHASE_PERMISSION, Actor
from connects.gateway import SimulatedGateway
from connects.services import views
from connects.services.context import Context
from tests.world import World


@dataclass
class Agency:
    """An agency-plus agency (80 Connects granted at opening, 100 cents a Connect)."""

    world: World
    id: str
    owner: Actor

    def spend(self, price: int, who: str = "olga") -> dict[str, object]:
        """A proposal on a new job at ``price``, by ``who`` for themselves."""
        return self.world.submit(who, self.world.job(price), self.id)

    def available(self) -> int:
        ctx = self.world.ctx
        with ctx.db.read() as conn:
            return views.available(conn, self.id, ctx.now())


def agency(
    ctx: Context,
    *,
    token: str | None = "tok_visa",
    grant: bool = True,
    **settings: Any,
) -> Agency:
    """Seed 000's three steps: grant the top-up manager, turn auto top-up on, set limits."""
    world = World(ctx)
    account_id = world.agency("olga", plan="agency-plus")
    owner = world.actor("olga")
    if token is not None:
        ctx.handle(AddBillingMethod(owner, account_id, token))
    if grant:
        ctx.handle(GrantPermissions(owner, account_id, "topup-manager", [PURCHASE_PERMISSION]))
    ctx.handle(SetAutoTopUp(owner, account_id, {"enabled": True, **settings}))
    return Agency(world, account_id, owner)


def rows(ctx: Context, account_id: str) -> list[Any]:
    """Every top-up of the account, oldest first."""
    with ctx.db.read() as conn:
        return list(
            conn.execute(
                select(topups).where(topups.c.account_id == account_id).order_by(topups.c.id)
            ).all()
        )


def events_of(ctx: Context, account_id: str, kind: str) -> list[dict[str, Any]]:
    with ctx.db.read() as conn:
        payloads = conn.execute(
            select(events.c.payload)
            .where(events.c.account_id == account_id, events.c.kind == kind)
            .order_by(events.c.created_at, events.c.id)
        ).scalars()
        return [json.loads(p) for p in payloads]


def purchase_entries(ctx: Context, account_id: str) -> list[Any]:
    with ctx.db.read() as conn:
        return list(
            conn.execute(
                select(entries)
                .where(entries.c.account_id == account_id, entries.c.kind == "purchase")
                .order_by(entries.c.seq)
            ).all()
        )


def charges(ctx: Context, key: str) -> int:
    """How many charges the simulated gateway holds for an idempotency key."""
    return cast(SimulatedGateway, ctx.gateway).charges_for(key)


def all_charges(ctx: Context) -> int:
    with ctx.db.read() as conn:
        return len(conn.execute(select(gateway_charges.c.idempotency_key)).all())
