"""Billing methods and purchases of Connects (R17, R18).

A purchase is paid whole from one source, never split. From earnings it is one
transaction. By card it is three steps, so that no database lock is held while the
gateway is called and no charge is ever taken twice:

1. record the purchase as ``pending`` (committed before money moves);
2. charge the card with the purchase id as the gateway's idempotency key;
3. complete it: ``succeeded`` credits a lot, ``failed`` credits nothing.

A crash or gateway time-out between 1 and 3 leaves a pending purchase that
(connects.services.purchase_steps) finishes with the same idempotency key. In a keyed request,
step 1 commits on its own and step 3 commits with the request's answer (R31).
"""

from __future__ import annotations

import hashlib
from contextlib import nullcontext
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from connects.db.schema import billing_methods, purchases
from connects.domain.commands import BuyConnects
from connects.domain.errors import (
    InsufficientEarnings,
    InvalidRequest,
    NoBillingMethod,
    PaymentDeclined,
)
from connects.domain.ids import new_id
from connects.domain.policy import Action, Actor
from connects.domain.topup import check_manager_purchase
from connects.domain.vocabulary import (
    ActorKind,
    PurchaseStatus,
)
from connects.services import billing, topup_trigger
from connects.services.access import authorize
from connects.services.purchase_steps import charge, complete, credit, load, resume
from connects.services.uow import UnitOfWork


def buy(cmd: BuyConnects, uow: UnitOfWork) -> dict[str, Any]:
    """Buy Connects paid whole by earnings or one billing method (R17, R18); with a
    ``request_key``, at most once per client request (:func:`_buy_for_request`)."""
    if cmd.request_key is not None:
        return _buy_for_request(
            uow, cmd.who, cmd.account_id, cmd.quantity, cmd.pay_with, cmd.request_key
        )
    return _buy(
        uow,
        cmd.who,
        cmd.account_id,
        cmd.quantity,
        cmd.pay_with,
        topup_id=cmd.topup_id,
        purchase_id=cmd.purchase_id,
    )


def _buy(
    uow: UnitOfWork,
    who: Actor,
    account_id: str,
    quantity: int,
    pay_with: str,
    *,
    topup_id: str | None = None,
    purchase_id: str | None = None,
) -> dict[str, Any]:
    """Buy ``quantity`` Connects paid whole by earnings or one billing method.

    ``pay_with`` is ``"earnings"``, a billing method id, or ``"default"``. Refusals:
    ``insufficient_earnings`` (never split), ``payment_declined`` (nothing credited),
    ``no_billing_method``, ``plan_cannot_purchase``, ``bundle_not_allowed``, ``forbidden``;
    the business manager's own purchases also ``per_topup_exceeded`` and
    ``monthly_limit_reached`` (R48).
    A caller may name the purchase (auto top-up derives it from the top-up, so a retry
    reuses the gateway key); a second buy with a used id fails on the primary key:
    finish that one with ``purchase_steps.resume``.
    """
    check_pay_with(pay_with)
    ctx = uow.ctx
    purchase_id = purchase_id or new_id("pur")
    # By card, step 1 commits on its own even in a keyed request (connects.db.request):
    # the pending purchase must be there before money moves. Steps 3 and the answer
    # then commit together.
    step_one = nullcontext() if pay_with == "earnings" else ctx.db.alone()
    with step_one, uow.begin() as tx:
        conn, now = tx.conn, tx.now
        book = tx.book(account_id)
        actor = authorize(conn, account_id, who, Action.BUY, now)
        plan = ctx.catalog.get(book.plan_id)
        plan.check_quantity(quantity, ctx.max_purchase)
        if actor.kind == ActorKind.BUSINESS_MANAGER and topup_id is None:
            # Auto top-up's own purchases were sized by its decision; the manager's
            # are held to the same limits under the same lock (R48).
            _, bought = topup_trigger.bought_this_month(conn, account_id, now, book.timezone)
            check_manager_purchase(
                topup_trigger.settings_of(book),
                quantity=quantity,
                pay_with=pay_with,
                bought_this_month=bought,
            )
        amount = plan.cost_cents(quantity)
        row: dict[str, Any] = {
            "id": purchase_id,
            "account_id": account_id,
            "quantity": quantity,
            "amount_cents": amount,
            "currency": plan.currency,
            "billing_method_id": None,
            "failure_code": None,
            "charge_id": None,
            "actor_kind": actor.kind,
            "actor_id": actor.id,
            "topup_id": topup_id,
            "created_at": now,
        }
        if pay_with == "earnings":
            if book.earnings_cents < amount:
                raise InsufficientEarnings(
                    f"earnings of {book.earnings_cents} cents cannot pay {amount} cents",
                    earnings_cents=book.earnings_cents,
                    amount_cents=amount,
                )
            book.earnings_cents -= amount
            conn.execute(
                insert(purchases),
                {
                    **row,
                    "pay_with": "earnings",
                    "status": PurchaseStatus.SUCCEEDED,
                    "completed_at": now,
                },
            )
            credit(book, purchase_id, quantity, amount, plan.currency, actor, topup_id)
            return {**row, "pay_with": "earnings", "status": PurchaseStatus.SUCCEEDED.value}
        method = method_for(conn, account_id, pay_with)
        conn.execute(
            insert(purchases),
            {
                **row,
                "pay_with": "card",
                "status": PurchaseStatus.PENDING,
                "billing_method_id": method.id,
                "completed_at": None,
            },
        )
    result = charge(ctx, purchase_id, method.gateway_ref, amount, plan.currency)
    final = (
        complete(uow, account_id, purchase_id, result)
        if result
        else load(ctx, account_id, purchase_id)
    )
    if final["status"] == PurchaseStatus.FAILED:
        raise PaymentDeclined(
            "the card was declined; no Connects were bought",
            decline_code=final["failure_code"],
            purchase_id=purchase_id,
        )
    return final


def check_pay_with(pay_with: Any) -> None:
    """``pay_with`` names what pays: ``"earnings"``, a billing method id, ``"default"``."""
    if not isinstance(pay_with, str) or not pay_with:
        raise InvalidRequest("pay_with must be 'earnings' or a billing method id", field="pay_with")


def request_purchase_id(who: Actor, account_id: str, request_key: str) -> str:
    """The one purchase a client's request (its ``Idempotency-Key``) may make."""
    digest = hashlib.sha256(f"{who.kind}:{who.id}:{account_id}:{request_key}".encode()).digest()
    value = int.from_bytes(digest[:17], "big")
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
    return "pur_" + "".join(alphabet[(value >> (5 * i)) & 31] for i in range(26))


def _buy_for_request(
    uow: UnitOfWork,
    who: Actor,
    account_id: str,
    quantity: int,
    pay_with: str,
    request_key: str,
) -> dict[str, Any]:
    """:func:`_buy`, at most once per client request (R31).

    The purchase id comes from the caller, the account and the request's
    ``Idempotency-Key``. A request that runs again after its first run's answer was
    lost (the process was killed, the database connection dropped after the purchase
    was recorded, a 5xx that released the key) finds the purchase the first run made
    and finishes it with the same gateway key, instead of buying a second time.
    """
    purchase_id = request_purchase_id(who, account_id, request_key)
    with uow.read() as conn:
        made = conn.execute(
            select(purchases.c.id).where(
                purchases.c.account_id == account_id, purchases.c.id == purchase_id
            )
        ).first()
    if made is None:
        try:
            return _buy(uow, who, account_id, quantity, pay_with, purchase_id=purchase_id)
        except IntegrityError:  # a twin of this request recorded it first
            pass
    bought = resume(uow, account_id, purchase_id)
    if bought["status"] == PurchaseStatus.FAILED:
        raise PaymentDeclined(
            "the card was declined; no Connects were bought",
            decline_code=bought["failure_code"],
            purchase_id=purchase_id,
        )
    return bought


def method_for(conn: Any, account_id: str, pay_with: str) -> Any:
    """The billing method ``pay_with`` names (an id, or ``"default"``), or ``no_billing_method``."""
    query = billing.usable(account_id)  # a removed card is never charged (R44)
    if pay_with == "default":
        query = query.where(billing_methods.c.is_default)
    else:
        query = query.where(billing_methods.c.id == pay_with)
    method = conn.execute(query).first()
    if method is None:
        raise NoBillingMethod("the account has no such billing method", pay_with=pay_with)
    return method
