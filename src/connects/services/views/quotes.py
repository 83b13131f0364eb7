"""What a purchase would cost, before it is made (R17, R18, R43).

The dashboard's Buy form shows this on its confirm step: the Connects, the total, and
what pays (the earnings balance or which card). The same checks the purchase makes
first refuse here, in the same words: the plan sells extra Connects, the quantity is
whole, at least 1 and at most ``max_purchase``, the card is the account's. Nothing is
written or locked; the purchase itself checks everything again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from connects.db.schema import accounts
from connects.domain.policy import Action, Actor
from connects.services.access import authorize
from connects.services.context import Context
from connects.services.purchases import check_pay_with, method_for


def purchase_quote(
    ctx: Context, who: Actor, account_id: str, quantity: Any, pay_with: str
) -> dict[str, Any]:
    """``{quantity, amount, currency, pay_with, card}``: ``card`` is ``{id, brand,
    last4}`` for a card (``pay_with`` a billing method id or ``"default"``), None for
    ``"earnings"``."""
    check_pay_with(pay_with)
    now = ctx.now()
    with ctx.db.read() as conn:
        authorize(conn, account_id, who, Action.BUY, now)
        plan_id = conn.execute(
            select(accounts.c.plan).where(accounts.c.id == account_id)
        ).scalar_one()
        plan = ctx.catalog.get(plan_id)
        plan.check_quantity(quantity, ctx.max_purchase)
        card = None
        if pay_with != "earnings":
            row = method_for(conn, account_id, pay_with)
            card = {"id": row.id, "brand": row.brand, "last4": row.last4}
    return {
        "quantity": quantity,
        "amount": plan.cost_cents(quantity),
        "currency": plan.currency,
        "pay_with": "earnings" if card is None else card["id"],
        "card": card,
    }
