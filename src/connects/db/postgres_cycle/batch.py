"""The batch loop: claim due accounts, sweep, run their cycles round by round, settle.

Calendar arithmetic (cycle days clamped to the month, time zones, Feb 29, the cycle's
key) stays in Python, in :mod:`connects.domain.calendar`: it is computed once per
distinct (anchor day, time zone, cycle start), a handful per batch, and joined in.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Connection, text

from connects.db.engine import Database
from connects.db.postgres_cycle import statements as sql
from connects.db.postgres_cycle.tuning import probe, skip_fk_checks
from connects.domain.calendar import cycle_after, cycle_key, lot_expiry, zone
from connects.domain.clock import Clock
from connects.domain.plans import Catalog


def naive(moment: datetime) -> datetime:
    """``moment`` as the naive UTC timestamp the scratch tables hold."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def drain(db: Database, catalog: Catalog, clock: Clock, batch: int, skip_fk: bool) -> int:
    """Batches until fewer than ``batch`` due accounts were free to take; returns how
    many cycles ran."""
    total = 0
    while True:
        now = naive(clock.now())  # before the transaction: the clock may be a database read
        with db.begin() as conn:
            if skip_fk:  # the batch's own accounts, locked by it: see tuning
                skip_fk_checks(conn)
            took, ran = run_batch(catalog, conn, now, batch)
        total += ran
        if took < batch:
            return total


def run_batch(catalog: Catalog, conn: Connection, now: datetime, batch: int) -> tuple[int, int]:
    """One transaction's work: up to ``batch`` due accounts locked ``SKIP LOCKED``,
    swept and cycled until none is due; how many were taken and how many cycles ran."""
    sql.run(conn, sql.CREATE_DUE)
    took = sql.run(conn, sql.CLAIM_DUE, across=True, now=now, batch=batch).rowcount
    if not took:
        return 0, 0
    sql.run(conn, "ANALYZE bulk_due")
    _plans(catalog, conn)
    _sweep(conn, now)
    ran, more = _round(conn, now, first=True)
    if ran != took:  # the sweep's balance and seq are added in round one
        raise RuntimeError(f"{took} accounts claimed as due, {ran} had a cycle to run")
    if more:  # some accounts are more than a cycle behind: bulk_due carries them on
        while n := _round(conn, now, first=False)[0]:
            ran += n
        settled = sql.SETTLED_BY_ROUNDS
    else:  # one cycle each, the common case: bulk_next holds every account's new state
        settled = sql.SETTLED_IN_ONE
    probe(conn, sql.settle(settled))
    sql.run(conn, sql.balance_alerts(), now=now)  # R45, on the settled balances
    sql.run(conn, sql.REARM_ALERTS)
    return took, ran


def _plans(catalog: Catalog, conn: Connection) -> None:
    sql.run(conn, sql.CREATE_PLANS)
    rows = []
    for (plan_id,) in sql.run(conn, sql.DUE_PLANS):
        plan = catalog.get(plan_id)
        rows.append({"id": plan_id, "monthly": plan.monthly_connects, "cap": plan.rollover_cap})
    if rows:
        conn.execute(text(sql.INSERT_PLAN), rows)


def _sweep(conn: Connection, now: datetime) -> None:
    """Expire entries, allocations and events for every due account's expired lots;
    the first round adds what they took to the accounts' balance and seq."""
    probe(conn, sql.expired_lots(), now=now)  # the lots account by account, by index
    # Row counts for the planner, which joins this to the batch's accounts in round one
    # (without them it guessed a few rows and aggregated them again for every account).
    sql.run(conn, "ANALYZE bulk_exp")
    sql.run(conn, sql.INSERT_EXPIRE_ENTRIES, now=now)
    sql.run(conn, sql.INSERT_EXPIRE_ALLOCATIONS)
    probe(conn, sql.EMPTY_EXPIRED_LOTS)


def _calendar(conn: Connection, now: datetime) -> bool:
    """Next cycle start, grant expiry and key for each distinct due cycle, from the
    domain; whether any next cycle is due too (an account more than a cycle behind)."""
    sql.run(conn, sql.drop("bulk_cal"))
    sql.run(conn, sql.CREATE_CALENDAR)
    rows = []
    for anchor, tz, cycle_at in sql.run(conn, sql.DUE_CYCLES, now=now):
        at, where = _aware(cycle_at), zone(tz)
        rows.append(
            {
                "a": anchor,
                "tz": tz,
                "c": cycle_at,
                "n": naive(cycle_after(anchor, at, where)),
                "e": naive(lot_expiry(at)),
                "k": cycle_key(anchor, at, where),
            }
        )
    if rows:
        conn.execute(text(sql.INSERT_CALENDAR), rows)
    return any(row["n"] <= now for row in rows)


def _round(conn: Connection, now: datetime, first: bool) -> tuple[int, bool]:
    """One cycle for every account still due: rollover forfeit, grant, next date. The
    first round (every claimed account is due) starts from the balance and seq the
    expiry sweep left. Returns how many accounts had a cycle, and whether another
    round follows; from then on each round's outcome is written back to bulk_due."""
    more = _calendar(conn, now)
    sql.run(conn, sql.drop("bulk_cur"))
    count = sql.run(conn, sql.current_round(first), now=now).rowcount
    if not count:
        return 0, False
    _forfeit(conn, now)
    _grant(conn, now)
    if more or not first:
        sql.run(conn, sql.CARRY_ROUND)
    return int(count), more


def _forfeit(conn: Connection, now: datetime) -> None:
    """Plan grants above the rollover cap (R9): entries, allocations, lots, events."""
    sql.run(conn, sql.drop("bulk_takes"))
    sql.run(conn, sql.TAKES)
    sql.run(conn, sql.INSERT_FORFEIT_ENTRIES, now=now)
    sql.run(conn, sql.INSERT_FORFEIT_ALLOCATIONS)
    probe(conn, sql.TAKE_FROM_LOTS)


def _grant(conn: Connection, now: datetime) -> None:
    """The plan's Connects (R8): the round's outcome, then lots, entries, allocations."""
    sql.run(conn, sql.drop("bulk_next"))
    sql.run(conn, sql.NEXT_ROUND)
    sql.run(conn, sql.INSERT_GRANT_LOTS)
    sql.run(conn, sql.INSERT_GRANT_ENTRIES, now=now)
    sql.run(conn, sql.INSERT_GRANT_ALLOCATIONS)
