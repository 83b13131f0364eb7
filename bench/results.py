"""Results (R39) for an agency with many proposals, on PostgreSQL, beside a raw query.

Seeds, with set-based SQL, one agency (time zone Europe/Berlin) of ``--members``
members and ``--proposals`` proposals sent over the ``--days`` before ``NOW`` (one job
each), then times the library's read, ``services/views/results.py: account_results``
as ``GET /v1/accounts/{id}/results`` calls it (as the owner, the period the ``--days``
before ``NOW``: every proposal), for each ``group_by`` (none, member, boost, month),
beside a raw baseline: the same sums in one SQL statement through the bare driver
over the figures each proposal's row keeps (by month with PostgreSQL's own ``AT TIME
ZONE``), and, for a few reads, the same sums worked out from the ledger itself
(entries, allocations, outcomes, holds: what the read cost before migration 0018).
The first read of each checks that all three give the same figures. Prints the plans
(``EXPLAIN ANALYZE``) of the library's statements. Prints JSON.

The data set: proposal i (1..P) is member ``i % M``'s, priced ``1 + i % 20``,
sent ``D * i / P`` days before ``NOW``; one spend entry and one allocation each,
at 100 cents a Connect when ``i % 3 = 0`` (bought), else 0 (granted); every 4th is
boosted by ``1 + i % 5`` and captured (a capture entry and its allocation); every
20th (``i % 20 = 7``) was refunded; every 2nd viewed, every 10th interviewed, every
40th hired; the proposals' figures are then filled in from those rows with migration
0018's statements, and the table vacuumed in full (the seed's updates leave 4 dead
versions of each row; autovacuum keeps a live table lean). Not a ``verify``-clean
ledger (no lots, no balance), only one the schema's constraints accept.

    python bench/results.py [--proposals 100000] [--members 50] [--days 365] [--reads 30]
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import event, text

sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.common import machine, percentile, pg_available, pg_database  # noqa: E402
from connects.bootstrap import build  # noqa: E402
from connects.config import Settings  # noqa: E402
from connects.domain.clock import SimulatedClock  # noqa: E402
from connects.domain.policy import Actor  # noqa: E402
from connects.services.views.results import account_results  # noqa: E402

NOW = datetime(2027, 3, 15, 10, 0, tzinfo=UTC)
TZ = "Europe/Berlin"
GROUPINGS = (None, "member", "boost", "month")
KEYS = ("none", "member", "boost", "month")
TARGET_P99_MS = 50
LEDGER_READS = 5
ACCOUNT, OWNER = "acct_res", "usr_res_owner"

_SENT = "(:now - (g * :days * interval '1 day') / :p)"
SEED = [
    "INSERT INTO users (id, name, email, created_at) SELECT 'usr_res_' || m, 'Member ' || m,"
    " 'm' || m || '@bench.test', :now - interval '1 year' FROM generate_series(0, :m - 1) m",
    "INSERT INTO users (id, name, email, created_at) VALUES"
    " ('usr_res_owner', 'Owner', 'o@bench.test', :now - interval '1 year'),"
    " ('usr_res_client', 'Client', 'c@bench.test', :now - interval '1 year')",
    "INSERT INTO accounts (id, kind, name, owner_id, plan, timezone, anchor_day,"
    " next_cycle_at, balance, seq, created_at) VALUES ('acct_res', 'agency', 'Agency',"
    " 'usr_res_owner', 'agency-plus', 'Europe/Berlin', 1, :now, 0, 3 * :p,"
    " :now - interval '1 year')",
    "INSERT INTO memberships (account_id, user_id, role, created_at) SELECT 'acct_res',"
    " 'usr_res_' || m, 'member', :now - interval '1 year' FROM generate_series(0, :m - 1) m",
    "INSERT INTO memberships (account_id, user_id, role, created_at)"
    " VALUES ('acct_res', 'usr_res_owner', 'owner', :now - interval '1 year')",
    f"INSERT INTO jobs (id, client_id, title, connects_required, status, created_at,"
    f" updated_at) SELECT 'job_res_' || g, 'usr_res_client', 'Job', 1 + g % 20, 'open',"
    f" {_SENT}, {_SENT} FROM generate_series(1, :p) g",
    f"INSERT INTO proposals (id, account_id, job_id, freelancer_id, submitted_by,"
    f" connects_spent, status, entry_id, created_at, updated_at, sent_month) SELECT"
    f" 'prp_res_' || g, 'acct_res', 'job_res_' || g, 'usr_res_' || (g % :m),"
    f" 'usr_res_' || (g % :m), 1 + g % 20, 'active', 'ent_res_s' || g, {_SENT}, {_SENT},"
    f" '' FROM generate_series(1, :p) g",
    f"INSERT INTO entries (id, account_id, seq, at, kind, amount, balance_after, actor_kind,"
    f" member_id, proposal_id) SELECT 'ent_res_s' || g, 'acct_res', g, {_SENT}, 'spend',"
    f" -(1 + g % 20), 0, 'system', 'usr_res_' || (g % :m), 'prp_res_' || g"
    f" FROM generate_series(1, :p) g",
    "INSERT INTO allocations (account_id, entry_id, lot_id, amount, cost_cents)"
    " SELECT 'acct_res', 'ent_res_s' || g, 'lot_res', 1 + g % 20,"
    " CASE WHEN g % 3 = 0 THEN 100 * (1 + g % 20) ELSE 0 END FROM generate_series(1, :p) g",
    f"INSERT INTO holds (id, account_id, amount, captured, status, reason, proposal_id,"
    f" job_id, member_id, entry_id, bid_at, created_at) SELECT 'hld_res_' || g, 'acct_res',"
    f" 1 + g % 5, 1 + g % 5, 'captured', 'boost', 'prp_res_' || g, 'job_res_' || g,"
    f" 'usr_res_' || (g % :m), 'ent_res_c' || g, {_SENT}, {_SENT}"
    f" FROM generate_series(4, :p, 4) g",
    f"INSERT INTO entries (id, account_id, seq, at, kind, amount, balance_after, actor_kind,"
    f" member_id, proposal_id, hold_id) SELECT 'ent_res_c' || g, 'acct_res', :p + g,"
    f" {_SENT} + interval '1 hour', 'capture', -(1 + g % 5), 0, 'system',"
    f" 'usr_res_' || (g % :m), 'prp_res_' || g, 'hld_res_' || g"
    f" FROM generate_series(4, :p, 4) g",
    "INSERT INTO allocations (account_id, entry_id, lot_id, amount, cost_cents)"
    " SELECT 'acct_res', 'ent_res_c' || g, 'lot_res', 1 + g % 5,"
    " CASE WHEN g % 3 = 0 THEN 100 * (1 + g % 5) ELSE 0 END FROM generate_series(4, :p, 4) g",
    f"INSERT INTO entries (id, account_id, seq, at, kind, amount, balance_after, actor_kind,"
    f" member_id, proposal_id) SELECT 'ent_res_r' || g, 'acct_res', 2 * :p + g,"
    f" {_SENT} + interval '2 hours', 'refund', 1 + g % 20, 0, 'system',"
    f" 'usr_res_' || (g % :m), 'prp_res_' || g FROM generate_series(7, :p, 20) g",
    "INSERT INTO allocations (account_id, entry_id, lot_id, amount, cost_cents)"
    " SELECT 'acct_res', 'ent_res_r' || g, 'lot_res', 1 + g % 20,"
    " CASE WHEN g % 3 = 0 THEN 100 * (1 + g % 20) ELSE 0 END"
    " FROM generate_series(7, :p, 20) g",
    *(
        f"INSERT INTO proposal_outcomes (proposal_id, kind, account_id, actor_id, at)"
        f" SELECT 'prp_res_' || g, '{kind}', 'acct_res', 'usr_res_client',"
        f" {_SENT} + interval '3 hours' FROM generate_series({step}, :p, {step}) g"
        for kind, step in (("viewed", 2), ("interviewed", 10), ("hired", 40))
    ),
    # the updates above left 4 dead versions of each row: a table written over months
    # and kept by autovacuum is not 5 times its size
    "VACUUM (FULL, ANALYZE) proposals",
]

RAW = """
SELECT {key}, count(*), sum(p.price_net), sum(p.boost_net), sum(p.cost_net_cents),
       sum(p.viewed), sum(p.interviewed), sum(p.hired)
FROM proposals p
WHERE p.account_id = %(a)s AND p.created_at >= %(f)s AND p.created_at < %(t)s
{group}
"""

# The same sums worked out from the ledger itself, as before each proposal kept its
# figures (0018): what the read would cost without them.
FROM_LEDGER = """
SELECT {key}, count(*), sum(coalesce(m.price, 0)), sum(coalesce(m.boost, 0)),
       sum(coalesce(c.cents, 0)), sum(coalesce(o.viewed, 0)), sum(coalesce(o.interviewed, 0)),
       sum(coalesce(o.hired, 0))
FROM proposals p
LEFT JOIN (SELECT proposal_id,
                  sum(CASE WHEN hold_id IS NULL THEN -amount ELSE 0 END) AS price,
                  sum(CASE WHEN hold_id IS NOT NULL THEN -amount ELSE 0 END) AS boost
           FROM entries WHERE account_id = %(a)s AND at >= %(f)s AND proposal_id IS NOT NULL
             AND kind IN ('spend', 'refund', 'capture') GROUP BY proposal_id) m
       ON m.proposal_id = p.id
LEFT JOIN (SELECT e.proposal_id,
                  sum(CASE WHEN e.amount < 0 THEN al.cost_cents ELSE -al.cost_cents END) AS cents
           FROM entries e JOIN allocations al ON al.entry_id = e.id
           WHERE e.account_id = %(a)s AND e.at >= %(f)s AND e.proposal_id IS NOT NULL
             AND e.kind IN ('spend', 'refund', 'capture') GROUP BY e.proposal_id) c
       ON c.proposal_id = p.id
LEFT JOIN (SELECT proposal_id,
                  max(CASE WHEN kind IN ('viewed', 'interviewed', 'declined', 'hired')
                      THEN 1 ELSE 0 END) AS viewed,
                  max(CASE WHEN kind = 'interviewed' THEN 1 ELSE 0 END) AS interviewed,
                  max(CASE WHEN kind = 'hired' THEN 1 ELSE 0 END) AS hired
           FROM proposal_outcomes WHERE account_id = %(a)s AND at >= %(f)s
           GROUP BY proposal_id) o
       ON o.proposal_id = p.id
WHERE p.account_id = %(a)s AND p.created_at >= %(f)s AND p.created_at < %(t)s
{group}
"""


# the raw statement's key for each grouping (none: no GROUP BY)
RAW_KEYS = {
    None: "''",
    "member": "p.freelancer_id",
    "boost": "CASE WHEN p.boosted = 1 THEN 'boosted' ELSE 'not_boosted' END",
    "month": "to_char((p.created_at AT TIME ZONE 'UTC') AT TIME ZONE %(tz)s, 'YYYY-MM')",
}
LEDGER_KEYS = {
    **RAW_KEYS,
    "boost": "CASE WHEN EXISTS (SELECT 1 FROM holds h WHERE h.proposal_id = p.id)"
    " THEN 'boosted' ELSE 'not_boosted' END",
}


def _driver_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def raw_sql(group_by: str | None, ledger: bool = False) -> str:
    key = (LEDGER_KEYS if ledger else RAW_KEYS)[group_by]
    group = "" if group_by is None else "GROUP BY 1 ORDER BY 1"
    return (FROM_LEDGER if ledger else RAW).format(key=key, group=group)


def seed(url: str, proposals: int, members: int, days: int) -> float:
    started = time.perf_counter()
    ctx = build(Settings(database_url=url), clock=SimulatedClock(NOW), migrate=True)
    params = {"now": NOW.replace(tzinfo=None), "p": proposals, "m": members, "days": days}
    with ctx.db.begin() as conn:
        for sql in SEED[:-1]:
            conn.execute(text(sql), params)
        # each proposal's figures and month, and results_months, as migration 0018 does
        importlib.import_module("connects.migrations.versions.0018_proposal_figures").backfill(conn)
    ctx.db.dispose()
    with psycopg.connect(_driver_url(url), autocommit=True) as raw:
        raw.execute(SEED[-1])
    return round(time.perf_counter() - started, 2)


def check(answer: dict[str, Any], rows: list[Any], group_by: str | None) -> None:
    """The library's groups (or, with none, its totals) are the raw query's sums."""
    fields = (
        "proposals",
        "connects_spent",
        "boost_connects_spent",
        "cost_cents",
        "views",
        "interviews",
        "hires",
    )
    lines = answer["groups"] if group_by else [{"key": "", **answer["totals"]}]
    got = [(g["key"], *(g[f] for f in fields)) for g in lines]
    want = [(r[0], *(int(v) for v in r[1:])) for r in rows]
    assert got == want, (group_by, got[:2], want[:2])


def figures(samples: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(samples, 50) * 1000, 2),
        "p99_ms": round(percentile(samples, 99) * 1000, 2),
    }


def plans(ctx: Any, since: datetime, until: datetime, group_by: str | None) -> list[str]:
    """``EXPLAIN ANALYZE`` of each statement the library's read runs (by month two:
    the months spanned, then the sums), caught as the read runs them."""
    caught: list[tuple[str, Any]] = []

    def catch(conn: Any, cursor: Any, sql: str, params: Any, context: Any, many: bool) -> None:
        if "proposals" in sql and "memberships" not in sql and "accounts" not in sql:
            caught.append((sql, params))

    event.listen(ctx.db.engine, "before_cursor_execute", catch)
    try:
        account_results(
            ctx, Actor("user", OWNER), ACCOUNT, since=since, until=until, group_by=group_by
        )
    finally:
        event.remove(ctx.db.engine, "before_cursor_execute", catch)
    out: list[str] = []
    with ctx.db.engine.connect() as conn:
        for sql, params in caught:
            driver = conn.connection.driver_connection
            rows = driver.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params).fetchall()
            out.extend(r[0] for r in rows)
            out.append("")
    return out


def measure(url: str, reads: int, days: int) -> dict[str, Any]:
    ctx = build(Settings(database_url=url), clock=SimulatedClock(NOW))
    owner = Actor("user", OWNER)
    since, until = NOW - timedelta(days=days), NOW
    params = {
        "a": ACCOUNT,
        "f": since.replace(tzinfo=None),
        "t": until.replace(tzinfo=None),
        "tz": TZ,
    }
    out: dict[str, Any] = {}
    with psycopg.connect(_driver_url(url)) as raw:
        for group_by in GROUPINGS:
            lib: list[float] = []
            raw_t: list[float] = []
            ledger_t: list[float] = []
            sql, from_ledger = raw_sql(group_by), raw_sql(group_by, ledger=True)
            for i in range(reads + 3):
                t0 = time.perf_counter()
                answer = account_results(
                    ctx, owner, ACCOUNT, since=since, until=until, group_by=group_by
                )
                t1 = time.perf_counter()
                rows = raw.execute(sql, params).fetchall()
                t2 = time.perf_counter()
                if i == 0:
                    check(answer, rows, group_by)
                    check(answer, raw.execute(from_ledger, params).fetchall(), group_by)
                if i >= 3:  # warm-up
                    lib.append(t1 - t0)
                    raw_t.append(t2 - t1)
                if 3 <= i < 3 + LEDGER_READS:  # slow: a few are enough to compare
                    t3 = time.perf_counter()
                    raw.execute(from_ledger, params).fetchall()
                    ledger_t.append(time.perf_counter() - t3)
            out[group_by or "none"] = {
                "proposals_in_period": answer["totals"]["proposals"],
                "groups": len(answer["groups"]),
                "library": figures(lib),
                "raw": figures(raw_t),
                "ratio_p50": round(percentile(raw_t, 50) / percentile(lib, 50), 2),
                "from_ledger": figures(ledger_t),
            }
    out["plans"] = {g or "none": plans(ctx, since, until, g) for g in ("member", "month")}
    ctx.db.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--proposals", type=int, default=100_000)
    parser.add_argument("--members", type=int, default=50)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--reads", type=int, default=30)
    args = parser.parse_args()
    out: dict[str, Any] = {"bench": "results", "machine": machine(), "proposals": args.proposals}
    reason = pg_available()
    if reason:
        out["skipped"] = reason
        print(json.dumps(out, indent=2))
        return
    with pg_database() as url:
        out["seed_s"] = seed(url, args.proposals, args.members, args.days)
        out["reads"] = measure(url, args.reads, args.days)
        out["target"] = {"p99_ms": TARGET_P99_MS}
        out["p99_ok"] = all(
            r["library"]["p99_ms"] < TARGET_P99_MS for k, r in out["reads"].items() if k in KEYS
        )
    print(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
