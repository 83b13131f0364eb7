"""Balance, overview (R26) and expiring-Connects reads on a large PostgreSQL ledger.

Seeds ``--lots`` lots (``--per-account`` per account, 100 by default: 10,000,000 lots is
100,000 accounts) with set-based SQL, then times the library's real read functions, the
ones the API serves:

* ``balance``: ``views.account`` (``GET /v1/accounts/{id}``: the spendable balance);
* ``overview``: ``views.overview`` (``GET /v1/accounts/{id}/connects``, R26);
* ``expiring``: ``views.expiring`` (``GET /v1/accounts/{id}/connects/expiring``, R12);

each called as the account's owner on random accounts, beside a raw baseline: the same
figures, one SQL statement per read through the bare driver. Reports p50/p99 in ms
(target p99 < 5 ms), the seed time, the table sizes and the query plans of the lot and
entry queries. Prints JSON.

The data set, at ``NOW``: every account is a freelancer-plus account with its owner
as member; lot k (1..100) was issued 5(k-1) days and 6 hours ago, so the newest 73 are
live and 7 of those expire within 30 days. Live lots are partly spent; expired lots
were swept (``remaining`` 0) except, on every tenth account, the newest expired one,
left unswept so ``available`` has something to subtract. ``accounts.balance`` is the
sum of ``remaining``. Entries: one credit entry per lot (issued ``at``) and four spends
this month per account; there are no allocations, so this is not a ``verify``-clean
ledger, only one the schema's constraints accept. Rows go in oldest first across all
accounts, as a live system writes them, so an account's lots lie on many pages. Every
tenth account has auto top-up settings and one top-up this month.

    python bench/reads.py [--lots 1000000] [--per-account 100] [--reads 2000] [--keep NAME]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import Connection, text

# Run as a script, Python puts bench/ first on the path: put the repository root there.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.common import machine, percentile, pg_available, pg_database  # noqa: E402
from connects.bootstrap import build  # noqa: E402
from connects.config import Settings  # noqa: E402
from connects.domain.clock import SimulatedClock  # noqa: E402
from connects.domain.policy import Actor  # noqa: E402
from connects.services import views  # noqa: E402

NOW = datetime(2027, 3, 15, 10, 0, tzinfo=UTC)
MONTH_START = datetime(2027, 3, 1, tzinfo=UTC)
AMOUNT = 50
SPENDS_THIS_MONTH = 4
LOT_STEP_DAYS = 5


def _seed_sql(n: int, per: int) -> list[tuple[str, dict[str, Any]]]:
    now = NOW.replace(tzinfo=None)
    issued = f"(:now - (k - 1) * interval '{LOT_STEP_DAYS} days' - interval '6 hours')"
    expired = f"({issued} + interval '1 year' <= :now)"
    # The newest expired lot: the smallest k whose lot has expired.
    first_expired = 365 // LOT_STEP_DAYS + 1
    remaining = f"""
        CASE WHEN {expired} THEN
                  CASE WHEN k = {first_expired} AND g % 10 = 0 THEN {AMOUNT} ELSE 0 END
             ELSE (g * 7 + k * 13) % ({AMOUNT} + 1) END"""
    series = """
        FROM generate_series(1, :per) k CROSS JOIN generate_series(1, :n) g
        ORDER BY k DESC, g"""
    p = {"n": n, "per": per, "now": now}
    return [
        (
            """
            INSERT INTO users (id, name, email, created_at)
            SELECT 'usr_r' || g, 'Reader ' || g, 'r' || g || '@bench.test',
                   :now - interval '2 years'
            FROM generate_series(1, :n) g
            """,
            p,
        ),
        (
            f"""
            INSERT INTO accounts (id, kind, name, owner_id, plan, timezone, anchor_day,
                next_cycle_at, balance, earnings_cents, low_balance_threshold, seq, created_at)
            SELECT 'acct_r' || g, 'freelancer', 'Reader ' || g, 'usr_r' || g,
                   'freelancer-plus', 'UTC', 1, :now + interval '1 month', 0, 0, 0,
                   :per + {SPENDS_THIS_MONTH}, :now - interval '2 years'
            FROM generate_series(1, :n) g
            """,
            p,
        ),
        (
            """
            INSERT INTO memberships (account_id, user_id, role, created_at)
            SELECT 'acct_r' || g, 'usr_r' || g, 'owner', :now - interval '2 years'
            FROM generate_series(1, :n) g
            """,
            p,
        ),
        (
            f"""
            INSERT INTO lots (id, account_id, source, issued_at, expires_at, amount, remaining)
            SELECT 'lot_r' || g || '_' || k, 'acct_r' || g,
                   CASE WHEN k % 10 = 0 THEN 'purchase' ELSE 'grant' END,
                   {issued}, {issued} + interval '1 year', {AMOUNT}, {remaining}
            {series}
            """,
            p,
        ),
        (
            f"""
            INSERT INTO entries (id, account_id, seq, at, kind, amount, balance_after,
                                 actor_kind)
            SELECT 'ent_r' || g || '_' || k, 'acct_r' || g, :per - k + 1, {issued},
                   CASE WHEN k % 10 = 0 THEN 'purchase' ELSE 'grant' END, {AMOUNT},
                   {AMOUNT} * (:per - k + 1), 'system'
            {series}
            """,
            p,
        ),
        (
            f"""
            INSERT INTO entries (id, account_id, seq, at, kind, amount, balance_after,
                                 actor_kind, actor_id, member_id)
            SELECT 'ent_r' || g || '_s' || j, 'acct_r' || g, :per + j,
                   :now - ({SPENDS_THIS_MONTH} - j + 1) * interval '1 hour', 'spend', -1,
                   {AMOUNT} * :per - j, 'user', 'usr_r' || g, 'usr_r' || g
            FROM generate_series(1, {SPENDS_THIS_MONTH}) j CROSS JOIN generate_series(1, :n) g
            ORDER BY j, g
            """,
            p,
        ),
        (
            """
            UPDATE accounts a SET balance = s.left_
            FROM (SELECT account_id, sum(remaining) AS left_ FROM lots GROUP BY account_id) s
            WHERE a.id = s.account_id
            """,
            p,
        ),
        (
            """
            INSERT INTO auto_topup_settings (account_id, enabled, per_topup, per_month,
                threshold, just_in_time, mode, updated_at)
            SELECT 'acct_r' || g, true, 50, 200, 10, false, 'fixed', :now - interval '90 days'
            FROM generate_series(10, :n, 10) g
            """,
            p,
        ),
        (
            """
            INSERT INTO topups (id, account_id, trigger, trigger_key, month, quantity,
                amount_cents, currency, status, created_at, completed_at)
            SELECT 'tup_r' || g, 'acct_r' || g, 'threshold', 'bench:' || g, '2027-03', 50,
                   5000, 'USD', 'succeeded', :now - interval '3 days',
                   :now - interval '3 days'
            FROM generate_series(10, :n, 10) g
            """,
            p,
        ),
    ]


@contextmanager
def bulk_load(conn: Connection, tables: tuple[str, ...]) -> Iterator[None]:
    """Make a set-based seed in this transaction fast: no per-row foreign-key triggers
    (the rows are consistent by construction) and ``tables``' secondary indexes dropped
    before the load and built again after it (much faster than maintaining them row by
    row). The definitions are read back from PostgreSQL, so they are the migrated ones;
    primary keys and unique constraints stay."""
    conn.execute(text("SET LOCAL session_replication_role = replica"))
    conn.execute(text("SET LOCAL synchronous_commit = off"))
    conn.execute(text("SET LOCAL maintenance_work_mem = '1GB'"))
    conn.execute(text("SET LOCAL work_mem = '256MB'"))
    indexes = conn.execute(
        text(
            """
            SELECT i.indexname, i.indexdef FROM pg_indexes i
            WHERE i.schemaname = current_schema() AND i.tablename = ANY(:t)
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)
            """
        ),
        {"t": list(tables)},
    ).all()
    for name, _ in indexes:
        conn.execute(text(f"DROP INDEX {name}"))
    yield
    for _, definition in indexes:
        conn.execute(text(definition))


def seed(url: str, n: int, per: int) -> dict[str, Any]:
    started = time.perf_counter()
    ctx = build(Settings(database_url=url), clock=SimulatedClock(NOW), migrate=True)
    steps: dict[str, float] = {}
    with ctx.db.begin() as conn:
        with bulk_load(conn, ("lots", "entries")):
            for sql, params in _seed_sql(n, per):
                t1 = time.perf_counter()
                conn.execute(text(sql), params)
                table = sql.split()[2] if sql.split()[0] == "INSERT" else "accounts.balance"
                steps[table] = round(steps.get(table, 0) + time.perf_counter() - t1, 2)
            t1 = time.perf_counter()
        steps["indexes"] = round(time.perf_counter() - t1, 2)
    t0 = time.perf_counter()
    with ctx.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(
            text(
                "VACUUM ANALYZE users, accounts, memberships, lots, entries, "
                "auto_topup_settings, topups"
            )
        )
        sizes = {
            t: conn.execute(text(f"SELECT pg_size_pretty(pg_total_relation_size('{t}'))")).scalar()
            for t in ("accounts", "lots", "entries")
        }
    steps["vacuum_analyze"] = round(time.perf_counter() - t0, 2)
    ctx.db.dispose()
    return {"seconds": round(time.perf_counter() - started, 2), "steps": steps, "sizes": sizes}


# The raw baseline: each read's figures in one statement through the bare driver.
RAW_BALANCE = """
SELECT a.id, a.kind, a.name, a.plan, a.timezone, a.low_balance_threshold, a.owner_id,
       a.earnings_cents, a.next_cycle_at, a.created_at, m.role,
       a.balance - coalesce((SELECT sum(l.remaining) FROM lots l
                             WHERE l.account_id = a.id AND l.remaining > 0
                               AND l.expires_at <= %(now)s), 0)
FROM accounts a JOIN memberships m ON m.account_id = a.id AND m.user_id = %(user)s
WHERE a.id = %(acct)s
"""

RAW_OVERVIEW = """
SELECT a.balance - coalesce((SELECT sum(l.remaining) FROM lots l
                             WHERE l.account_id = a.id AND l.remaining > 0
                               AND l.expires_at <= %(now)s), 0) AS available,
       e.used, e.manual, e.auto,
       (SELECT coalesce(sum(l.remaining), 0) FROM lots l
        WHERE l.account_id = a.id AND l.remaining > 0 AND l.expires_at > %(now)s
          AND l.expires_at <= %(now)s + interval '30 days') AS expiring,
       s.enabled, s.per_topup, s.per_month, s.threshold, s.mode,
       (SELECT coalesce(sum(t.quantity), 0) FROM topups t
        WHERE t.account_id = a.id AND t.month = %(month)s
          AND t.status IN ('pending', 'succeeded')) AS bought
FROM accounts a
JOIN memberships m ON m.account_id = a.id AND m.user_id = %(user)s
CROSS JOIN LATERAL (
    SELECT coalesce(sum(amount) FILTER (WHERE kind IN ('spend', 'refund')), 0) AS used,
           coalesce(sum(amount) FILTER (WHERE kind = 'purchase' AND topup_id IS NULL), 0)
               AS manual,
           coalesce(sum(amount) FILTER (WHERE kind = 'purchase' AND topup_id IS NOT NULL), 0)
               AS auto
    FROM entries WHERE account_id = a.id AND at >= %(since)s) e
LEFT JOIN auto_topup_settings s ON s.account_id = a.id
WHERE a.id = %(acct)s
"""

RAW_EXPIRING = """
SELECT l.id, l.source, l.issued_at, l.expires_at, l.remaining
FROM lots l
WHERE l.account_id = %(acct)s AND l.remaining > 0 AND l.expires_at > %(now)s
  AND l.expires_at <= %(now)s + interval '30 days'
  AND EXISTS (SELECT 1 FROM memberships m
              WHERE m.account_id = %(acct)s AND m.user_id = %(user)s)
ORDER BY l.expires_at, l.issued_at
"""

RAW = {"balance": RAW_BALANCE, "overview": RAW_OVERVIEW, "expiring": RAW_EXPIRING}

# The lot and entry queries of the library's read paths, for EXPLAIN.
EXPLAIN = {
    "expired_unswept": """SELECT coalesce(sum(remaining), 0) FROM lots
        WHERE account_id = %(acct)s AND remaining > 0 AND expires_at <= %(now)s""",
    "expiring_lots": """SELECT id, source, issued_at, expires_at, remaining FROM lots
        WHERE account_id = %(acct)s AND remaining > 0 AND expires_at > %(now)s
          AND expires_at <= %(now)s + interval '30 days' ORDER BY expires_at, issued_at""",
    "month_entries": """SELECT sum(amount) FROM entries
        WHERE account_id = %(acct)s AND at >= %(since)s""",
    "topups_month": """SELECT coalesce(sum(quantity), 0) FROM topups
        WHERE account_id = %(acct)s AND month = %(month)s
          AND status IN ('pending', 'succeeded')""",
}


def _seeded(url: str, n: int) -> dict[str, Any] | None:
    """A kept schema already seeded with ``n`` accounts: what it holds (no seed time)."""
    ctx = build(Settings(database_url=url), clock=SimulatedClock(NOW), migrate=True)
    try:
        with ctx.db.read() as conn:
            have = conn.execute(text("SELECT count(*) FROM accounts")).scalar_one()
            if not have:
                return None
            if have != n:
                raise SystemExit(f"--keep: the schema holds {have} accounts, not {n}")
            lots = conn.execute(text("SELECT count(*) FROM lots")).scalar_one()
        return {"reused": True, "accounts": have, "lots": lots}
    finally:
        ctx.db.dispose()


def _driver_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _params(g: int) -> dict[str, Any]:
    return {
        "acct": f"acct_r{g}",
        "user": f"usr_r{g}",
        "now": NOW.replace(tzinfo=None),
        "since": MONTH_START.replace(tzinfo=None),
        "month": "2027-03",
    }


def _plan_nodes(node: dict[str, Any]) -> list[str]:
    here = node["Node Type"] + (f" using {node['Index Name']}" if "Index Name" in node else "")
    return [here] + [n for child in node.get("Plans", []) for n in _plan_nodes(child)]


def explain(url: str, n: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with psycopg.connect(_driver_url(url), autocommit=True) as conn:
        for name, sql in EXPLAIN.items():
            row = conn.execute(
                f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", _params(random.randint(1, n))
            ).fetchone()
            assert row is not None
            plan = row[0][0]
            out[name] = {
                "nodes": _plan_nodes(plan["Plan"]),
                "execution_ms": round(plan["Execution Time"], 3),
                "buffers_hit": plan["Plan"].get("Shared Hit Blocks", 0),
                "buffers_read": plan["Plan"].get("Shared Read Blocks", 0),
            }
    return out


def _figures(samples: list[float]) -> dict[str, Any]:
    return {
        "reads": len(samples),
        "p50_ms": round(percentile(samples, 50) * 1000, 3),
        "p99_ms": round(percentile(samples, 99) * 1000, 3),
        "max_ms": round(max(samples) * 1000, 3),
    }


def measure(url: str, n: int, reads: int, warmup: int) -> dict[str, Any]:
    """Library and raw reads, interleaved, on uniformly random accounts; each goes first
    on every other account, so neither always finds the other's pages in the cache."""
    ctx = build(Settings(database_url=url), clock=SimulatedClock(NOW))
    library = {
        "balance": lambda acct, user: views.account(ctx, Actor("user", user), acct),
        "overview": lambda acct, user: views.overview(ctx, Actor("user", user), acct),
        "expiring": lambda acct, user: views.expiring(ctx, Actor("user", user), acct),
    }
    lib_t: dict[str, list[float]] = {k: [] for k in library}
    raw_t: dict[str, list[float]] = {k: [] for k in RAW}
    rng = random.Random(7)
    with psycopg.connect(_driver_url(url), autocommit=True) as raw:
        for i in range(warmup + reads):
            for kind in library:
                g = rng.randint(1, n)
                params = _params(g)
                # Whichever reads an account first finds its pages colder: take turns.
                if i % 2:
                    t0 = time.perf_counter()
                    rows = raw.execute(RAW[kind], params).fetchall()
                    t1 = time.perf_counter()
                    result = library[kind](params["acct"], params["user"])
                    t2 = time.perf_counter()
                    lib, raw_s = t2 - t1, t1 - t0
                else:
                    t0 = time.perf_counter()
                    result = library[kind](params["acct"], params["user"])
                    t1 = time.perf_counter()
                    rows = raw.execute(RAW[kind], params).fetchall()
                    t2 = time.perf_counter()
                    lib, raw_s = t1 - t0, t2 - t1
                if i < warmup:
                    continue
                lib_t[kind].append(lib)
                raw_t[kind].append(raw_s)
                if i == warmup:  # the raw baseline answers the same figures
                    check(kind, result, rows)
    ctx.db.dispose()
    return {
        kind: {
            "library": _figures(lib_t[kind]),
            "raw": _figures(raw_t[kind]),
            "ratio_p50": round(percentile(raw_t[kind], 50) / percentile(lib_t[kind], 50), 2),
        }
        for kind in library
    }


def check(kind: str, result: dict[str, Any], rows: list[Any]) -> None:
    if kind == "balance":
        assert result["balance"] == rows[0][-1], (result, rows)
    elif kind == "overview":
        assert result["available"] == rows[0][0], (result, rows)
        assert result["used_this_month"] == -rows[0][1], (result, rows)
        assert result["expiring_30d"] == rows[0][4], (result, rows)
    else:
        assert [lot["id"] for lot in result["lots"]] == [r[0] for r in rows], (result, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lots", type=int, default=1_000_000)
    parser.add_argument("--per-account", type=int, default=100)
    parser.add_argument("--reads", type=int, default=2000, help="timed reads of each kind")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument(
        "--keep",
        metavar="SCHEMA",
        help="seed into this schema once and keep it: later runs with the same name and "
        "sizes measure without seeding again",
    )
    args = parser.parse_args()
    n = args.lots // args.per_account
    out: dict[str, Any] = {
        "bench": "reads",
        "machine": machine(),
        "lots": n * args.per_account,
        "accounts": n,
    }
    reason = pg_available()
    if reason:
        out["skipped"] = reason
        print(json.dumps(out, indent=2))
        return
    with pg_database(args.keep) as url:
        out["seed"] = _seeded(url, n) or seed(url, n, args.per_account)
        out["reads"] = measure(url, n, args.reads, args.warmup)
        out["plans"] = explain(url, n)
    out["target"] = {"p99_ms": 5}
    out["p99_ok"] = all(r["library"]["p99_ms"] < 5 for r in out["reads"].values())
    print(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
