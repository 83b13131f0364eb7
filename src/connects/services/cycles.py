"""Time-driven work: billing-cycle grants with rollover (R8, R9) and expiry (R10, R12).

Each cycle is applied once: its grant and forfeit carry a dedupe key naming the cycle
by its billing month (unique per account in the database, whatever the time zone), and
the account's ``next_cycle_at`` moves on to the next billing month's cycle day in the
same transaction. A job that runs twice finds nothing due; a job that runs late
applies every missed cycle in order: each grant's lot is issued at its own cycle start
(so it expires a year after that date), while its entry is dated when written, keeping
the ledger in time order.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from connects.db import postgres_cycle
from connects.db.schema import accounts, allocations, entries, lots
from connects.domain import lots as lotrules
from connects.domain.calendar import cycle_after, cycle_key, zone
from connects.domain.policy import SYSTEM
from connects.domain.vocabulary import EntryKind, LotSource
from connects.services import holds
from connects.services.book import AccountBook
from connects.services.context import Context
from connects.services.uow import UnitOfWork


def apply_cycle(ctx: Context, book: AccountBook, cycle_at: datetime) -> None:
    """Rollover then grant for the cycle starting at ``cycle_at`` (idempotent)."""
    key = cycle_key(book.anchor_day, cycle_at, zone(book.timezone))
    plan = ctx.catalog.get(book.plan_id)
    forfeit_key = f"forfeit:{key}"
    if not book.has_entry(forfeit_key):
        takes = lotrules.rollover_forfeit(book.open_lots(), plan.rollover_cap, cycle_at)
        if takes:  # over the cap: refunded Connects in grant lots are never cut (R9, R15)
            takes = lotrules.rollover_forfeit(
                book.open_lots(), plan.rollover_cap, cycle_at, refunded_into_lots(book)
            )
        if takes:
            book.debit(
                kind=EntryKind.ROLLOVER_FORFEIT,
                takes=takes,
                actor=SYSTEM,
                dedupe_key=forfeit_key,
                note=f"plan grants above the rollover cap of {plan.rollover_cap}",
            )
    grant_key = f"grant:{key}"
    if plan.monthly_connects > 0 and not book.has_entry(grant_key):
        book.credit(
            kind=EntryKind.GRANT,
            source=LotSource.GRANT,
            amount=plan.monthly_connects,
            actor=SYSTEM,
            issued_at=cycle_at,
            dedupe_key=grant_key,
            note=f"{plan.id} cycle grant",
        )
    # R34: held never above the balance, should rollover have taken what a hold kept
    holds.cut_to_balance(book, "the Connects it held were forfeited by rollover")


def refunded_into_lots(book: AccountBook) -> dict[str, int]:
    """Connects refunded into each of the account's lots (R15), by lot id."""
    rows = book.conn.execute(
        select(allocations.c.lot_id, func.sum(allocations.c.amount))
        .join(
            entries,
            (entries.c.account_id == allocations.c.account_id)
            & (entries.c.id == allocations.c.entry_id),
        )
        .where(entries.c.account_id == book.id, entries.c.kind == "refund")
        .group_by(allocations.c.lot_id)
    ).all()
    return {lot_id: int(total) for lot_id, total in rows}


def catch_up(ctx: Context, book: AccountBook) -> int:
    """Apply every cycle due by now on a locked account; returns how many ran."""
    tz = zone(book.timezone)
    ran = 0
    book.sweep_expired()
    while book.next_cycle_at <= book.now:
        apply_cycle(ctx, book, book.next_cycle_at)
        book.next_cycle_at = cycle_after(book.anchor_day, book.next_cycle_at, tz)
        ran += 1
    return ran


def run_due_cycles(ctx: Context, batch: int = 500) -> int:
    """Every account whose cycle day has come: one short transaction each."""
    total = 0
    while True:
        now = ctx.now()
        with ctx.db.read() as conn:
            due = (
                conn.execute(
                    select(accounts.c.id)
                    .where(accounts.c.next_cycle_at <= now)
                    .order_by(accounts.c.next_cycle_at)
                    .limit(batch)
                    .execution_options(all_accounts=True)  # a sweep across shards
                )
                .scalars()
                .all()
            )
        if not due:
            return total
        uow = UnitOfWork(ctx)
        for account_id in due:
            with uow.begin(now) as tx:
                total += catch_up(ctx, tx.book(account_id))
        _publish(ctx, uow)
        if len(due) < batch:
            return total


def _publish(ctx: Context, uow: UnitOfWork) -> None:
    """What the batch's transactions raised (a top-up a sweep decided, R20), after they
    committed; the due work's own pending top-ups job finishes anything left."""
    if ctx.bus is not None:
        ctx.bus.publish(ctx, uow.collect())


def sweep_expired(ctx: Context, batch: int = 500) -> int:
    """Write ``expire`` entries for every lot past its expiry; returns Connects removed."""
    removed = 0
    while True:
        now = ctx.now()
        with ctx.db.read() as conn:
            due = (
                conn.execute(
                    select(lots.c.account_id)
                    .where(lots.c.remaining > 0, lots.c.expires_at <= now)
                    .group_by(lots.c.account_id)
                    .limit(batch)
                    .execution_options(all_accounts=True)  # a sweep across shards
                )
                .scalars()
                .all()
            )
        if not due:
            return removed
        uow = UnitOfWork(ctx)
        for account_id in due:
            with uow.begin(now) as tx:
                removed += tx.book(account_id).sweep_expired()
        _publish(ctx, uow)
        if len(due) < batch:
            return removed


def run_cycles_bulk(ctx: Context, batch: int = 5_000, workers: int = 2) -> int:
    """Every due cycle: set-based on PostgreSQL (:mod:`connects.db.postgres_cycle`, the
    same ledger), then one by one for the accounts it leaves and on SQLite."""
    ran = 0
    if ctx.db.dialect == "postgresql":
        ran = postgres_cycle.run_cycles_bulk(ctx.db, ctx.catalog, ctx.clock, batch, workers)
    return ran + run_due_cycles(ctx)
