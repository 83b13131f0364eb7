"""The monthly cycle (expiry sweep + rollover forfeit + grant) for N accounts on
PostgreSQL, set-based (``connects.db.postgres_cycle``). Prints JSON.

Accounts are seeded with raw SQL: each agency-plus account has a grant lot that
expired yesterday (swept), three live grant lots worth 210 Connects (50 above the
rollover cap of 160: forfeited) and a cycle due an hour ago (a grant of 80). Ids
are fixed width, as the product's are (``acct_b00000042``), so the order of the
accounts is the order of their ids.

    python bench/cycle.py [--accounts 100000] [--per-account 2000] [--no-verify]
    python bench/cycle.py --accounts 1000000 --per-account 0   # the full-size run
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

# Run as a script, Python puts bench/ first on the path: put the repository root there.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.common import machine, pg_database, python_loop_ms  # noqa: E402
from bench.reads import bulk_load  # noqa: E402
from connects.bootstrap import build  # noqa: E402
from connects.config import Settings  # noqa: E402
from connects.db.postgres_cycle import may_skip_fk_checks  # noqa: E402
from connects.db.schema import accounts, entries  # noqa: E402
from connects.domain.clock import SimulatedClock  # noqa: E402
from connects.services import cycles  # noqa: E402
from connects.services.context import Context  # noqa: E402
from connects.services.verify import verify  # noqa: E402

NOW = datetime(2027, 3, 15, 10, 0, tzinfo=UTC)
# (issued days ago, remaining): one expired yesterday, three live adding to 210.
LOTS = [(366, 20), (90, 50), (61, 80), (30, 80)]


def seed(ctx_url: str, n: int) -> tuple[float, bool]:
    """``n`` agency-plus accounts with lots, entries and allocations, by raw SQL
    (foreign-key triggers off, secondary indexes built after the load), then a
    vacuum and a checkpoint; returns the seconds it took and whether the checkpoint
    ran."""
    started = time.perf_counter()
    now = NOW.replace(tzinfo=None)
    ctx = build(Settings(database_url=ctx_url), clock=SimulatedClock(NOW), migrate=True)
    with ctx.db.begin() as conn, bulk_load(conn, ("lots", "entries", "allocations")):
        conn.execute(
            text(
                """
                INSERT INTO users (id, name, email, created_at)
                SELECT 'usr_b' || g, 'Bench ' || g, 'bench' || g || '@bench.test', :now
                FROM generate_series(1, :n) s, lpad(s::text, 8, '0') g
                """
            ),
            {"n": n, "now": now},
        )
        balance = sum(r for _, r in LOTS)
        conn.execute(
            text(
                """
                INSERT INTO accounts (id, kind, name, owner_id, plan, timezone, anchor_day,
                    next_cycle_at, balance, earnings_cents, low_balance_threshold, seq,
                    created_at)
                SELECT 'acct_b' || g, 'agency', 'Bench agency ' || g, 'usr_b' || g,
                       'agency-plus', 'UTC', :day, :due, :balance, 0, 0, :seq, :created
                FROM generate_series(1, :n) s, lpad(s::text, 8, '0') g
                """
            ),
            {
                "n": n,
                "day": NOW.day,
                "due": now - timedelta(hours=1),
                "balance": balance,
                "seq": len(LOTS),
                "created": now - timedelta(days=400),
            },
        )
        running = 0
        for k, (ago, remaining) in enumerate(LOTS, start=1):
            issued = now - timedelta(days=ago)
            running += remaining
            params = {
                "n": n,
                "k": k,
                "issued": issued,
                "expires": issued + timedelta(days=365),
                "amount": remaining,
                "after": running,
            }
            conn.execute(
                text(
                    """
                    INSERT INTO lots (id, account_id, source, issued_at, expires_at, amount,
                                      remaining)
                    SELECT 'lot_b' || g || '_' || :k, 'acct_b' || g, 'grant', :issued,
                           :expires, :amount, :amount
                    FROM generate_series(1, :n) s, lpad(s::text, 8, '0') g
                    """
                ),
                params,
            )
            conn.execute(
                text(
                    """
                    INSERT INTO entries (id, account_id, seq, at, kind, amount, balance_after,
                                         actor_kind, note, dedupe_key)
                    SELECT 'ent_b' || g || '_' || :k, 'acct_b' || g, :k, :issued, 'grant',
                           :amount, :after, 'system', 'seeded grant', 'seed:' || :k
                    FROM generate_series(1, :n) s, lpad(s::text, 8, '0') g
                    """
                ),
                params,
            )
            conn.execute(
                text(
                    """
                    INSERT INTO allocations (account_id, entry_id, lot_id, amount)
                    SELECT 'acct_b' || g, 'ent_b' || g || '_' || :k, 'lot_b' || g || '_' || :k,
                           :amount
                    FROM generate_series(1, :n) s, lpad(s::text, 8, '0') g
                    """
                ),
                params,
            )
    # A production ledger's older rows have been vacuumed (hint bits set, pages marked
    # all-visible) before a month's cycle reaches them; the CI machines run PostgreSQL
    # with autovacuum off (``machine.postgresql.autovacuum``), so the seed does it.
    with ctx.db.statements() as conn:  # autocommit: VACUUM runs outside a transaction
        conn.execute(text("VACUUM (ANALYZE) users, accounts, lots, entries, allocations"))
    checkpointed = checkpoint(ctx)
    ctx.db.dispose()
    return time.perf_counter() - started, checkpointed


def checkpoint(ctx: Context) -> bool:
    """Flush the seed's dirty pages before the clock starts, so that each run begins
    from the same state. Without it, a checkpoint that falls inside the timed run
    writes out gigabytes of the seed's pages there, and when it falls depends on how
    much WAL earlier runs left since the last one. Needs a superuser or
    ``pg_checkpoint``; without the privilege the run goes on (and says so)."""
    try:
        with ctx.db.begin() as conn:
            conn.execute(text("CHECKPOINT"))
    except DBAPIError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument(
        "--per-account",
        type=int,
        default=2000,
        help="Also time the per-account path on this many accounts (0: skip).",
    )
    parser.add_argument("--no-verify", action="store_true")
    args = parser.parse_args()
    out: dict[str, object] = {"bench": "cycle", "machine": machine(), "accounts": args.accounts}
    with pg_database() as url:
        seconds, checkpointed = seed(url, args.accounts)
        out["seed_seconds"] = round(seconds, 2)
        ctx = build(Settings(database_url=url), clock=SimulatedClock(NOW))
        with ctx.db.read() as conn:
            before = conn.execute(select(func.count()).select_from(entries)).scalar_one()
            skip_fk = may_skip_fk_checks(conn)
        started = time.perf_counter()
        ran = cycles.run_cycles_bulk(ctx, batch=args.batch)
        seconds = time.perf_counter() - started
        # This machine's speed drifts within minutes; the loop at the start (``machine``)
        # and right after the run bracket the run.
        loop_after = python_loop_ms()
        with ctx.db.read() as conn:
            after = conn.execute(select(func.count()).select_from(entries)).scalar_one()
            due = conn.execute(
                select(func.count()).where(accounts.c.next_cycle_at <= NOW)
            ).scalar_one()
        out["bulk"] = {
            "seconds": round(seconds, 2),
            "cycles": ran,
            "entries_written": after - before,
            "accounts_per_second": round(args.accounts / seconds) if seconds else None,
            "still_due": due,
            "batch": args.batch,
            "checkpoint_before": checkpointed,
            "foreign_key_checks": "skipped (session_replication_role)" if skip_fk else "run",
            "python_loop_ms_after": loop_after,
        }
        if not args.no_verify:
            started = time.perf_counter()
            out["verify"] = {
                "breaches": len(verify(ctx)),
                "seconds": round(time.perf_counter() - started, 2),
            }
        ctx.db.dispose()
    if args.per_account:
        with pg_database() as url:
            seed(url, args.per_account)
            ctx = build(Settings(database_url=url), clock=SimulatedClock(NOW))
            started = time.perf_counter()
            ran = cycles.run_due_cycles(ctx)
            seconds = time.perf_counter() - started
            out["per_account"] = {
                "accounts": args.per_account,
                "seconds": round(seconds, 2),
                "cycles": ran,
                "accounts_per_second": round(args.per_account / seconds) if seconds else None,
            }
            ctx.db.dispose()
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
