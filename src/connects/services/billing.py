"""Billing methods: the cards an account pays with (R17, R44).

A card is attached from a gateway token (the gateway keeps the card; the account keeps
its reference, brand and last four digits); the first one becomes the default. An
owner or admin makes another the default or removes one (R44); a removed card stays in
the table for the purchases that name it, but is never listed or charged again.
Removing the default leaves none until one is chosen. Auto top-up charges the default,
and a new default card lets a top-up that could not be done be tried again (R41).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Select, insert, select, update

from connects.db.schema import billing_methods
from connects.domain.commands import AddBillingMethod, RemoveBillingMethod, SetDefaultBillingMethod
from connects.domain.errors import InvalidRequest, NotFound
from connects.domain.events import TopUpConditionsChanged
from connects.domain.ids import new_id
from connects.domain.policy import Action
from connects.services import topup_state
from connects.services.access import authorize
from connects.services.uow import Transaction, UnitOfWork

_bm = billing_methods.c


def usable(account_id: str) -> Select[Any]:
    """The account's cards that may be charged (not removed)."""
    return select(billing_methods).where(_bm.account_id == account_id, _bm.removed_at.is_(None))


def default_card(conn: Connection, account_id: str) -> dict[str, Any] | None:
    """The card auto top-up charges: ``{id, brand, last4}``, or None (R44)."""
    row = conn.execute(usable(account_id).where(_bm.is_default)).first()
    if row is None:
        return None
    return {"id": row.id, "brand": row.brand, "last4": row.last4}


def _method_dict(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "brand": row.brand,
        "last4": row.last4,
        "default": bool(row.is_default),
        "created_at": row.created_at,
    }


def add_billing_method(cmd: AddBillingMethod, uow: UnitOfWork) -> dict[str, Any]:
    """Attach a card from a gateway token; it becomes the default when there is none."""
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
        has_default = conn.execute(usable(account_id).where(_bm.is_default)).first()
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
        if has_default is None:
            _new_default(tx, account_id, "card_added")
    return {
        "id": method_id,
        "brand": card.brand,
        "last4": card.last4,
        "default": has_default is None,
    }


def _new_default(tx: Transaction, account_id: str, cause: str) -> None:
    """A card became the default: a declined card's wait is over, and what could not
    be bought is tried again after the commit (R41)."""
    topup_state.card_changed(tx.conn, account_id)
    tx.raise_event(TopUpConditionsChanged(account_id, cause))


def _one(tx: Transaction, account_id: str, method_id: Any) -> Any:
    if not isinstance(method_id, str) or not method_id:
        raise NotFound("no such billing method", billing_method_id=str(method_id))
    row = tx.conn.execute(usable(account_id).where(_bm.id == method_id)).first()
    if row is None:
        raise NotFound("no such billing method", billing_method_id=method_id)
    return row


def set_default(cmd: SetDefaultBillingMethod, uow: UnitOfWork) -> dict[str, Any]:
    """Make a card the default (owner/admin, R44); ``not_found`` for no such card."""
    account_id = cmd.account_id
    with uow.begin() as tx:
        tx.authorize(account_id, cmd.who, Action.MANAGE)
        row = _one(tx, account_id, cmd.billing_method_id)
        if not row.is_default:
            # The old default first: the database holds one default per account.
            tx.conn.execute(
                update(billing_methods)
                .where(_bm.account_id == account_id, _bm.is_default)
                .values(is_default=False)
            )
            tx.conn.execute(
                update(billing_methods)
                .where(_bm.account_id == account_id, _bm.id == row.id)
                .values(is_default=True)
            )
            _new_default(tx, account_id, "card_made_default")
        saved = tx.conn.execute(
            select(billing_methods).where(_bm.account_id == account_id, _bm.id == row.id)
        ).one()
    return _method_dict(saved)


def remove(cmd: RemoveBillingMethod, uow: UnitOfWork) -> None:
    """Remove a card (owner/admin, R44). The default leaves none behind: auto top-up is
    then ``blocked: no_payment_method`` until another is chosen **(decision)**."""
    account_id = cmd.account_id
    with uow.begin() as tx:
        tx.authorize(account_id, cmd.who, Action.MANAGE)
        row = _one(tx, account_id, cmd.billing_method_id)
        tx.conn.execute(
            update(billing_methods)
            .where(_bm.account_id == account_id, _bm.id == row.id)
            .values(is_default=False, removed_at=tx.now)
        )
