"""Steps 2 and 3 of a card purchase (connects.services.purchases): charge the card
with the purchase id as the gateway's idempotency key, then record the answer and
credit the Connects once, only on success. :func:`resume` and :func:`resume_pending`
finish a purchase a crash or a gateway time-out left ``pending``, with the same key.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from connects.db.schema import billing_methods, purchases
from connects.domain.errors import NotFound
from connects.domain.policy import Actor
from connects.domain.vocabulary import EntryKind, EventType, LotSource, PurchaseStatus
from connects.gateway import ChargeResult, GatewayUnavailable
from connects.services.book import AccountBook
from connects.services.context import Context
from connects.services.uow import UnitOfWork

PURCHASE_FIELDS = (
    "id",
    "account_id",
    "quantity",
    "amount_cents",
    "currency",
    "pay_with",
    "billing_method_id",
    "status",
    "failure_code",
    "topup_id",
    "created_at",
)


def summary(row: Any) -> dict[str, Any]:
    return {k: getattr(row, k) for k in PURCHASE_FIELDS}


def charge(
    ctx: Context, purchase_id: str, method_ref: str, amount: int, currency: str
) -> ChargeResult | None:
    try:
        return ctx.gateway.charge(
            method_ref=method_ref,
            amount_cents=amount,
            currency=currency,
            idempotency_key=purchase_id,
        )
    except GatewayUnavailable:
        return None  # stays pending; resume_pending retries with the same key


def credit(
    book: AccountBook,
    purchase_id: str,
    quantity: int,
    amount: int,
    currency: str,
    actor: Actor,
    topup_id: str | None,
) -> None:
    book.sweep_expired()
    book.credit(
        kind=EntryKind.PURCHASE,
        source=LotSource.PURCHASE,
        amount=quantity,
        cost_cents=amount,  # R39: the lot's Connects carry what was paid
        actor=actor,
        purchase_id=purchase_id,
        topup_id=topup_id,
        dedupe_key=f"purchase:{purchase_id}",
    )
    if topup_id is not None:
        return  # an auto top-up's one message is its ``topup_succeeded`` (R45)
    book.emit(
        EventType.CONNECTS_PURCHASED,
        {
            "purchase_id": purchase_id,
            "quantity": quantity,
            "amount_cents": amount,
            "currency": currency,
            "auto": False,
        },
        dedupe_key=f"purchase:{purchase_id}",
    )


def _one(account_id: str, purchase_id: str) -> Any:
    """The purchase's row, by its account and id (one shard, ready to distribute)."""
    return select(purchases).where(
        purchases.c.account_id == account_id, purchases.c.id == purchase_id
    )


def complete(
    uow: UnitOfWork, account_id: str, purchase_id: str, result: ChargeResult
) -> dict[str, Any]:
    """Step 3: record the gateway's answer; credit Connects once, only on success."""
    with uow.begin() as tx:
        conn, now = tx.conn, tx.now
        book = tx.book(account_id)
        row = conn.execute(_one(account_id, purchase_id)).one()
        if row.status != PurchaseStatus.PENDING:
            return summary(row)  # a retry found it done
        status = PurchaseStatus.SUCCEEDED if result.ok else PurchaseStatus.FAILED
        conn.execute(
            update(purchases)
            .where(purchases.c.account_id == account_id, purchases.c.id == purchase_id)
            .values(
                status=status,
                charge_id=result.charge_id,
                failure_code=result.decline_code,
                completed_at=now,
            )
        )
        if result.ok:
            credit(
                book,
                purchase_id,
                row.quantity,
                row.amount_cents,
                row.currency,
                Actor(row.actor_kind, row.actor_id),
                row.topup_id,
            )
        row = conn.execute(_one(account_id, purchase_id)).one()
        return summary(row)


def load(ctx: Context, account_id: str, purchase_id: str) -> dict[str, Any]:
    with ctx.db.read() as conn:
        row = conn.execute(_one(account_id, purchase_id)).one_or_none()
    if row is None:
        raise NotFound("no such purchase", purchase_id=purchase_id)
    return summary(row)


def resume(uow: UnitOfWork, account_id: str, purchase_id: str) -> dict[str, Any]:
    """Finish one purchase: a pending card charge is retried with the same key."""
    with uow.read() as conn:
        row = conn.execute(
            select(purchases, billing_methods.c.gateway_ref)
            .outerjoin(billing_methods, _its_method())
            .where(purchases.c.account_id == account_id, purchases.c.id == purchase_id)
        ).one_or_none()
    if row is None:
        raise NotFound("no such purchase", purchase_id=purchase_id)
    if row.status != PurchaseStatus.PENDING:
        return summary(row)
    result = charge(uow.ctx, row.id, row.gateway_ref, row.amount_cents, row.currency)
    return complete(uow, account_id, purchase_id, result) if result else summary(row)


def _its_method() -> Any:
    """A purchase's billing method, joined on the account too (co-located shards)."""
    return (billing_methods.c.account_id == purchases.c.account_id) & (
        billing_methods.c.id == purchases.c.billing_method_id
    )


def resume_pending(ctx: Context, older_than: timedelta = timedelta(seconds=30)) -> int:
    """Finish card purchases left pending by a crash or a gateway time-out."""
    cutoff = ctx.now() - older_than
    with ctx.db.read() as conn:
        # The worker's sweep of every account: it runs across shards (architecture.md).
        pending = conn.execute(
            select(
                purchases.c.id,
                purchases.c.account_id,
                purchases.c.amount_cents,
                purchases.c.currency,
                billing_methods.c.gateway_ref,
            )
            .join(billing_methods, _its_method())
            .where(purchases.c.status == PurchaseStatus.PENDING, purchases.c.created_at <= cutoff)
            .execution_options(all_accounts=True)
        ).all()
    done = 0
    uow = UnitOfWork(ctx)
    for p in pending:
        result = charge(ctx, p.id, p.gateway_ref, p.amount_cents, p.currency)
        if result is not None:
            complete(uow, p.account_id, p.id, result)
            done += 1
    return done
