"""Executing decided top-ups exactly once (R23, R24), and just-in-time top-ups (R22).

A top-up is decided inside the transaction that took the balance down
(:mod:`connects.services.topup_trigger`) and executed here after that transaction
commits, as the business manager ``topup-manager`` through the ordinary purchase
machinery, so its grant is checked when the money would move (R6). Exactly once:

* one trigger is one ``topups`` row (unique ``(account_id, trigger_key)``), decided
  under the account's lock, so concurrent spends cannot both decide or pass the limit;
* the purchase id, and with it the gateway's idempotency key, is derived from the
  top-up id, so any retry (a crash, a second worker) reuses the one charge;
* an executor claims the row under a lease (``topup_claims.LEASE``) in a transaction of its
  own, committed at once, then buys with no transaction open: it never holds one
  pooled connection while the purchase and the gateway check out others, which would
  starve a small pool under load. Two executors never both run one top-up while its
  lease lasts; a killed executor's lease runs out and :func:`run_pending` takes it;
* the outcome is written only while the row is still ``pending``, and its event once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, update
from sqlalchemy.exc import IntegrityError

from connects.db.schema import accounts, topups
from connects.db.schema import purchases as purchases_table
from connects.domain.commands import BuyConnects
from connects.domain.errors import (
    ConnectsError,
    Forbidden,
    InsufficientConnects,
    NotFound,
    PaymentDeclined,
)
from connects.domain.events import TopUpDecided
from connects.domain.policy import Actor
from connects.domain.topup import TOPUP_MANAGER_ID
from connects.domain.topup_status import PAUSE_AFTER_DECLINES
from connects.domain.vocabulary import EventType, PurchaseStatus, TopUpStatus
from connects.metrics import TOPUPS
from connects.services import purchase_steps, purchases, topup_state, topup_status
from connects.services.context import Context
from connects.services.topup_claims import release, status_of, take
from connects.services.topup_trigger import decide_in, load_settings
from connects.services.uow import Transaction, UnitOfWork

log = logging.getLogger(__name__)

TOPUP_MANAGER = Actor("business_manager", TOPUP_MANAGER_ID)


def purchase_id_for(topup_id: str) -> str:
    """The one purchase a top-up may make; its id is the gateway's idempotency key."""
    return "pur_" + topup_id.split("_", 1)[1]


@dataclass(frozen=True, slots=True)
class Outcome:
    status: str  # succeeded | failed
    reason: str | None
    purchase_id: str | None
    amount_cents: int
    currency: str
    decline_code: str | None = None


def _price(ctx: Context, account_id: str, quantity: int) -> tuple[int, str]:
    with ctx.db.read() as conn:
        plan_id = conn.execute(
            select(accounts.c.plan).where(accounts.c.id == account_id)
        ).scalar_one()
    plan = ctx.catalog.get(plan_id)
    return plan.cost_cents(quantity), plan.currency


def _buy_once(uow: UnitOfWork, row: Any, purchase_id: str) -> dict[str, Any]:
    """The top-up's one purchase: made now, or finished if an earlier run made it.

    A purchase already recorded is finished without asking for the grant again: its
    money may have moved already (a crash after the charge), so only its outcome counts.
    """
    with uow.read() as conn:
        made = conn.execute(
            select(purchases_table.c.id).where(
                purchases_table.c.account_id == row.account_id,
                purchases_table.c.id == purchase_id,
            )
        ).first()
    try:
        if made is None:
            return purchases.buy(
                BuyConnects(
                    TOPUP_MANAGER,
                    row.account_id,
                    row.quantity,
                    "default",
                    topup_id=row.id,
                    purchase_id=purchase_id,
                ),
                uow,
            )
    except IntegrityError:  # a twin recorded it between our read and our insert
        pass
    bought = purchase_steps.resume(uow, row.account_id, purchase_id)
    if bought["status"] == "failed":
        raise PaymentDeclined("the card was declined", decline_code=bought["failure_code"])
    return bought


def _attempt(uow: UnitOfWork, row: Any) -> Outcome | None:
    """Buy as the business manager; None while the gateway's answer is unknown."""
    ctx = uow.ctx
    purchase_id = purchase_id_for(row.id)
    try:
        bought = _buy_once(uow, row, purchase_id)
    except PaymentDeclined as exc:
        amount, currency = _price(ctx, row.account_id, row.quantity)
        decline = exc.details.get("decline_code")
        return Outcome("failed", "payment_declined", purchase_id, amount, currency, decline)
    except ConnectsError as exc:
        # Without a live grant the account is hidden from the manager (not_found).
        no_grant = isinstance(exc, Forbidden | NotFound)
        reason = _grant_problem(ctx, row.account_id) if no_grant else exc.code
        amount, currency = _price(ctx, row.account_id, row.quantity)
        return Outcome("failed", reason, None, amount, currency)
    if bought["status"] == PurchaseStatus.PENDING:
        return None  # the gateway did not answer: the same key is tried again later
    return Outcome(
        "succeeded", None, purchase_id, int(bought["amount_cents"]), str(bought["currency"])
    )


def _grant_problem(ctx: Context, account_id: str) -> str:
    """Why the top-up manager may not buy, as auto top-up's status tells it (R40)."""
    with ctx.db.read() as conn:
        return topup_status.grant_problem(conn, account_id, ctx.now())


def _finish(tx: Transaction, row: Any, outcome: Outcome, retry_seconds: int) -> bool:
    """Write the outcome while the top-up is still pending; its event goes once, and
    what it means for the next try (a decline's wait, a pause, R42) with it."""
    book = tx.book(row.account_id)
    done = tx.conn.execute(
        update(topups)
        .where(
            topups.c.account_id == row.account_id,
            topups.c.id == row.id,
            topups.c.status == TopUpStatus.PENDING.value,
        )
        .values(
            status=outcome.status,
            reason=outcome.reason,
            purchase_id=outcome.purchase_id,
            amount_cents=outcome.amount_cents,
            currency=outcome.currency,
            completed_at=tx.now,
        )
    ).rowcount
    if not done:
        return False
    payload: dict[str, Any] = {
        "topup_id": row.id,
        "trigger": row.trigger,
        "quantity": row.quantity,
        "amount_cents": outcome.amount_cents,
        "currency": outcome.currency,
        "purchase_id": outcome.purchase_id,
    }
    if outcome.status == TopUpStatus.SUCCEEDED:
        book.emit(EventType.TOPUP_SUCCEEDED, payload, dedupe_key=f"topup:{row.id}")
    else:
        payload |= {"reason": outcome.reason, "decline_code": outcome.decline_code}
        book.emit(EventType.TOPUP_FAILED, payload, dedupe_key=f"topup:{row.id}")
    paused = topup_state.after_outcome(
        tx.conn,
        row.account_id,
        row.id,
        trigger=row.trigger,
        status=outcome.status,
        reason=outcome.reason,
        now=tx.now,
        retry_seconds=retry_seconds,
    )
    if paused:  # R42: the third decline in a row
        book.emit(
            EventType.TOPUP_PAUSED,
            {"topup_id": row.id, "declines": PAUSE_AFTER_DECLINES},
            dedupe_key=f"topup_paused:{row.id}",
        )
    return True


def execute(ctx: Context, account_id: str, topup_id: str, *, wait: bool = False) -> str:
    """Run one decided top-up of ``account_id``; its status afterwards.

    A top-up another executor holds is left to it (``pending``), unless ``wait``: then
    this polls until that one finished it or its lease ran out, for at most
    ``topup_claims.WAIT_SECONDS``.
    """
    return _execute(UnitOfWork(ctx), account_id, topup_id, wait=wait)[0]


def _execute(
    uow: UnitOfWork, account_id: str, topup_id: str, *, wait: bool = False
) -> tuple[str, bool]:
    """``(status, finished by this call)``."""
    row, token, status = take(uow, account_id, topup_id, wait=wait)
    if row is None:
        return status, False
    try:
        outcome = _attempt(uow, row)
    except BaseException:
        release(uow, account_id, topup_id, token)
        raise
    if outcome is None:
        release(uow, account_id, topup_id, token)  # the gateway's answer is unknown: retried later
        return TopUpStatus.PENDING.value, False
    with uow.begin() as tx:
        finished = _finish(tx, row, outcome, uow.ctx.topup_retry_seconds)
    if not finished:
        with uow.read() as conn:
            return status_of(conn, account_id, topup_id), False
    TOPUPS.labels(outcome.status).inc()
    return outcome.status, True


def on_decided(ctx: Context, event: TopUpDecided) -> None:
    """The reaction to a committed decision: run the top-up now. Never fails the
    handler that decided it: what cannot run now stays pending for :func:`run_pending`."""
    try:
        execute(ctx, event.account_id, event.topup_id)
    except Exception:  # the decision is committed; the worker finishes it
        log.exception("auto top-up %s left pending for the worker", event.topup_id)


def run_pending(ctx: Context, batch: int = 200) -> int:
    """Execute (or resume after a crash) every pending top-up; how many finished here."""
    with ctx.db.read() as conn:
        due = conn.execute(
            select(topups.c.account_id, topups.c.id)
            .where(topups.c.status == TopUpStatus.PENDING.value)
            .order_by(topups.c.created_at, topups.c.id)
            .limit(batch)
            .execution_options(all_accounts=True)  # a sweep across shards
        ).all()
    uow = UnitOfWork(ctx)
    return sum(_execute(uow, account_id, topup_id)[1] for account_id, topup_id in due)


def _pending_of(conn: Connection, account_id: str) -> list[str]:
    return list(
        conn.execute(
            select(topups.c.id)
            .where(topups.c.account_id == account_id, topups.c.status == TopUpStatus.PENDING.value)
            .order_by(topups.c.id)
        ).scalars()
    )


# -- just in time (R22) -----------------------------------------------------------------


def just_in_time(
    uow: UnitOfWork, account_id: str, *, need: int, attempt: str
) -> dict[str, Any] | None:
    """Top up before a proposal that needs ``need`` Connects is tried again (R22).

    ``None`` when just-in-time is off: the caller keeps its refusal. Otherwise the
    Connects are there when this returns, or ``insufficient_connects`` says why the
    top-up could not buy them. ``attempt`` names the proposal; with the ledger's
    sequence number it keys the trigger, so a double submit shares one top-up. The
    top-up commits on its own, whatever becomes of the keyed request that needed it.
    """
    with uow.ctx.db.alone():
        return _just_in_time(uow, account_id, need=need, attempt=attempt)


def _just_in_time(
    uow: UnitOfWork, account_id: str, *, need: int, attempt: str
) -> dict[str, Any] | None:
    ctx = uow.ctx
    with uow.read() as conn:
        settings = load_settings(conn, account_id)
        earlier = _pending_of(conn, account_id)
    if not (settings.enabled and settings.just_in_time):
        return None
    for waiting in earlier:  # a top-up already on its way comes first
        execute(ctx, account_id, waiting, wait=True)
    with uow.begin() as tx:
        conn, book = tx.conn, tx.book(account_id)
        settings = load_settings(conn, account_id)
        available = book.available()
        if not (settings.enabled and settings.just_in_time):
            return None
        if available >= need:
            return {"topup_id": None, "status": "not_needed"}
        base = f"just_in_time:{attempt}:{book.seq}:"
        tries = conn.execute(
            select(topups.c.id, topups.c.status)
            .where(
                topups.c.account_id == account_id,
                topups.c.trigger_key.startswith(base, autoescape=True),
            )
            .order_by(topups.c.id)
        ).all()
        live = [str(t.id) for t in tries if t.status in ("pending", "succeeded")]
        topup_id: str | None = live[0] if live else None
        if topup_id is None:
            key = f"{base}{len(tries) + 1}"
            topup_id = decide_in(book, settings, trigger="just_in_time", key=key, need=need)
    if topup_id is None:  # nothing to buy: cannot happen while short, but never loop
        return None
    status = _execute(uow, account_id, topup_id, wait=True)[0]  # in this request (R22)
    if status == TopUpStatus.SUCCEEDED:
        return {"topup_id": topup_id, "status": status}
    with uow.read() as conn:
        recorded = conn.execute(
            select(topups.c.reason).where(
                topups.c.account_id == account_id, topups.c.id == topup_id
            )
        ).scalar()
    reason = str(recorded or ("topup_pending" if status == TopUpStatus.PENDING else status))
    raise InsufficientConnects(
        f"this needs {need} Connects and {available} are available; the just-in-time "
        f"auto top-up {status}: {reason}",
        required=need,
        available=available,
        topup_id=topup_id,
        topup_status=status,
        topup_reason=reason,
    )
