"""The monthly cycle for many accounts at once, as set-based SQL (PostgreSQL).

:func:`run_cycles_bulk` does what :func:`connects.services.cycles.catch_up` does for
every account whose cycle day has come: sweep expired lots, then for each due cycle
forfeit plan grants above the rollover cap (R9), grant the plan's Connects (R8) and
move ``next_cycle_at`` on. It writes the same entries (kind, amount, seq,
balance_after, note, dedupe key), allocations, lots and balance alerts, but with a
few ``INSERT ... SELECT`` / ``UPDATE ... FROM`` statements per batch of accounts
instead of a transaction per account.

Accounts are locked with ``FOR UPDATE SKIP LOCKED``, so a per-account runner or a
second bulk runner never works on the same account at once. Accounts with auto top-up
on are left to the per-account path, whose balance-drop hook decides top-ups; the
service layer (:func:`connects.services.cycles.run_cycles_bulk`) runs it after this
and in its place on SQLite.

- :mod:`.batch`: the batch loop (claim, sweep, rounds of cycles, settle);
- :mod:`.statements`: the SQL of each step;
- :mod:`.tuning`: planner settings for joins to whole tables, and the foreign-key
  trigger bypass.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from connects.db.engine import Database
from connects.db.postgres_cycle import statements as sql
from connects.db.postgres_cycle.batch import drain, naive
from connects.db.postgres_cycle.tuning import may_skip_fk_checks
from connects.domain.clock import Clock
from connects.domain.plans import Catalog

__all__ = ["may_skip_fk_checks", "run_cycles_bulk"]


def run_cycles_bulk(
    db: Database, catalog: Catalog, clock: Clock, batch: int = 5_000, workers: int = 2
) -> int:
    """Apply every due cycle of the accounts this path takes (all but those with auto
    top-up on), set-based on PostgreSQL; returns how many cycles ran.

    ``workers`` connections drain the due accounts side by side, each a batch of
    ``batch`` accounts per transaction; ``SKIP LOCKED`` hands each batch to one of them
    (and keeps other processes running this job off it). The work is CPU-bound inside
    PostgreSQL, so a second connection uses a second core."""
    now = naive(clock.now())  # before the connection: the clock may be a database read
    with db.read() as conn:  # most ticks find nothing due: no temp tables, no threads
        due = sql.run(conn, sql.COUNT_DUE, across=True, now=now, enough=batch + 1).scalar_one()
        skip_fk = may_skip_fk_checks(conn) if due else False
    if not due:
        return 0
    if workers <= 1 or due <= batch:
        return drain(db, catalog, clock, batch, skip_fk)
    with ThreadPoolExecutor(workers, thread_name_prefix="cycles") as pool:
        drains = [pool.submit(drain, db, catalog, clock, batch, skip_fk) for _ in range(workers)]
        return sum(d.result() for d in drains)
