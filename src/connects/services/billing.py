"""Billing methods: the cards an account pays with (R17, R44).

A card is attached from a gateway token (the gateway keeps the card; the account keeps
its reference, brand and last four digits); the first one becomes the default.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select

from connects.db.schema import billing_methods
from connects.domain.commands import AddBillingMethod
from connects.domain.errors import InvalidRequest
from connects.domain.ids import new_id
from connects.domain.policy import Action
from connects.services.access import authorize
from connects.services.uow import UnitOfWork


def add_billing_method(cmd: AddBillingMethod, uow: UnitOfWork) -> dict[str, Any]:
    """Attach a card from a gateway token; the first one becomes the default."""
    account_id, token = cmd.account_id, cmd.token
    if not isinstance(token, str) or not token:
        raise InvalidRequest("token is required", field="token")
    now = uow.ctx.now()
    with uow.read() as conn:
        authorize(conn, account_id, cmd.who, Action.MANAGE, now)
    card = uow.ctx.gateway.attach(token)
    method_id = new_id("bm")
    with uow.begin(now) as tx:
        conn = tx.conn
        tx.book(account_id)
        has_default = conn.execute(
            select(billing_methods.c.id).where(
                billing_methods.c.account_id == account_id, billing_methods.c.is_default
            )
        ).first()
        conn.execute(
            insert(billing_methods),
            {
                "id": method_id,
                "account_id": account_id,
                "gateway_ref": card.ref,
                "brand": card.brand,
                "last4": card.last4,
                "is_default": has_default is None,
                "created_at": now,
            },
        )
    return {
        "id": method_id,
        "brand": card.brand,
        "last4": card.last4,
        "default": has_default is None,
    }
