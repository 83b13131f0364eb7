"""Proposal spends per second: the library against raw SQL, on SQLite and PostgreSQL.

For each database the same run measures

* ``library``: ``services.proposals.submit_proposal`` called in a loop (every rule:
  locks, membership, price check, budget, lot allocation, ledger entry, proposal);
* ``raw``: the same writes done with plain SQL through the bare driver, one
  transaction per spend (lock the account, pick a lot, update it, insert the proposal,
  the entry and the allocation, update the account);

* ``library_boosted``: the library loop with a boost of 1 Connect on every proposal
  (R35: the price spent and the bid held), against the plain loop as
  ``boosted_ratio`` (target >= 0.8); the two loops take turns, 100 spends at a time,
  each on its own database, so that both meet the same load;
* ``library_concurrent``: the library from 16 threads at once, so submissions to the
  pool meet in the group commit (``services.batching``): several spends per
  transaction, against the raw one-transaction-per-spend figure;

and reports spends/s, p50/p99 latency in ms, and library/raw as ``ratio`` (target
>= 0.5; ``concurrent_ratio`` for the threaded run). Prints one JSON document.
``python bench/ledger.py --spends 2000``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from sqlalchemy import create_engine

from bench.common import (
    funded_agency,
    machine,
    percentile,
    pg_available,
    pg_database,
    sqlite_database,
)
from connects.domain.commands import SubmitProposal
from connects.domain.ids import new_id
from connects.domain.policy import Actor


def _timed_spend(
    ctx: Any, agency: str, job_id: str, member: str, boost: int | None = None
) -> float:
    """One proposal by ``member`` on ``job_id``, paid from the agency's pool (with a
    bid held on top if ``boost``): seconds."""
    t0 = time.perf_counter()
    ctx.handle(
        SubmitProposal(
            Actor("user", member),
            job_id=job_id,
            account_id=agency,
            freelancer_id=member,
            expected_connects=1,
            boost=boost,
        )
    )
    return time.perf_counter() - t0


class _Loop:
    """One database's library loop: an agency, its members and jobs, the next pairs."""

    def __init__(self, url: str, spends: int, boost: int | None) -> None:
        members = 50
        jobs = -(-spends // members)
        self.ctx, self.agency, member_ids, job_ids = funded_agency(
            url, members=members, jobs=jobs, pool=spends * (1 + (boost or 0)) + 10
        )
        self.boost = boost
        self.pairs = iter([(j, m) for j in job_ids for m in member_ids][:spends])
        self.latencies: list[float] = []
        self.seconds = 0.0

    def run(self, n: int) -> None:
        start = time.perf_counter()
        for job_id, member in itertools.islice(self.pairs, n):
            self.latencies.append(_timed_spend(self.ctx, self.agency, job_id, member, self.boost))
        self.seconds += time.perf_counter() - start

    def figures(self) -> dict[str, Any]:
        self.ctx.db.dispose()
        return _figures(len(self.latencies), self.seconds, self.latencies)


def run_library_pair(url_factory: Any, spends: int, block: int = 100) -> list[dict[str, Any]]:
    """The plain loop and the boosted one (a bid of 1 on every proposal), each on its own
    database, taking turns ``block`` spends at a time: on a shared machine both see the
    same load, so their ratio holds still where two runs one after the other do not."""
    with url_factory() as plain_url, url_factory() as boosted_url:
        loops = [_Loop(plain_url, spends, None), _Loop(boosted_url, spends, 1)]
        for _ in range(-(-spends // block)):
            for loop in loops:
                loop.run(block)
        return [loop.figures() for loop in loops]


def run_raw(url: str, spends: int) -> dict[str, Any]:
    """The same writes with plain SQL on the bare DBAPI connection."""
    members = 50
    jobs = -(-spends // members)
    ctx, agency, member_ids, job_ids = funded_agency(
        url, members=members, jobs=jobs, pool=spends + 10
    )
    ctx.db.dispose()
    engine = create_engine(url)
    pg = engine.dialect.name == "postgresql"
    p = "%s" if pg else "?"
    lock = "SELECT balance, seq FROM accounts WHERE id = {p}" + (" FOR UPDATE" if pg else "")
    sql = {
        "lock": lock.format(p=p),
        "lot": (
            f"SELECT id, remaining FROM lots WHERE account_id = {p} AND remaining > 0 "
            f"AND expires_at > {p} ORDER BY expires_at, issued_at LIMIT 1"
        ),
        "lot_upd": f"UPDATE lots SET remaining = remaining - 1 WHERE id = {p}",
        "prop": (
            "INSERT INTO proposals (id, account_id, job_id, freelancer_id, submitted_by, "
            "connects_spent, status, entry_id, created_at, updated_at, sent_month, price_net)"
            f" VALUES ({p}, {p}, {p}, {p}, {p}, 1, 'active', {p}, {p}, {p}, '2026-03', 1)"
        ),
        # R39: the month's count and figures (the proposal's went in with its row)
        "month": (
            "INSERT INTO results_months (account_id, month, member_id, boosted, proposals,"
            " price_net, boost_net, cost_net_cents, viewed, interviewed, hired)"
            f" VALUES ({p}, '2026-03', {p}, 0, 1, 1, 0, 0, 0, 0, 0)"
            " ON CONFLICT (account_id, month, member_id, boosted)"
            " DO UPDATE SET proposals = results_months.proposals + 1,"
            " price_net = results_months.price_net + 1"
        ),
        "entry": (
            "INSERT INTO entries (id, account_id, seq, at, kind, amount, balance_after, "
            "actor_kind, actor_id, member_id, proposal_id) VALUES "
            f"({p}, {p}, {p}, {p}, 'spend', -1, {p}, 'user', {p}, {p}, {p})"
        ),
        "alloc": (
            "INSERT INTO allocations (account_id, entry_id, lot_id, amount) "
            f"VALUES ({p}, {p}, {p}, 1)"
        ),
        "acct": f"UPDATE accounts SET balance = {p}, seq = {p} WHERE id = {p}",
    }
    now = datetime(2026, 3, 1, tzinfo=UTC).replace(tzinfo=None)
    latencies: list[float] = []
    raw = engine.raw_connection()
    dbapi = raw.driver_connection
    assert dbapi is not None
    if not pg:
        dbapi.isolation_level = None  # type: ignore[attr-defined]
    cur = dbapi.cursor()
    start = time.perf_counter()
    done = 0
    for job_id in job_ids:
        for member in member_ids:
            if done == spends:
                break
            t0 = time.perf_counter()
            if not pg:
                cur.execute("BEGIN IMMEDIATE")
            cur.execute(sql["lock"], (agency,))
            balance, seq = cur.fetchone()
            cur.execute(sql["lot"], (agency, now))
            lot_id, _ = cur.fetchone()
            cur.execute(sql["lot_upd"], (lot_id,))
            entry_id, prop_id = new_id("ent"), new_id("prop")
            cur.execute(sql["prop"], (prop_id, agency, job_id, member, member, entry_id, now, now))
            cur.execute(sql["month"], (agency, member))
            cur.execute(
                sql["entry"], (entry_id, agency, seq + 1, now, balance - 1, member, member, prop_id)
            )
            cur.execute(sql["alloc"], (agency, entry_id, lot_id))
            cur.execute(sql["acct"], (balance - 1, seq + 1, agency))
            if pg:
                dbapi.commit()
            else:
                cur.execute("COMMIT")
            latencies.append(time.perf_counter() - t0)
            done += 1
            now += timedelta(microseconds=1)
    elapsed = time.perf_counter() - start
    cur.close()
    raw.close()
    engine.dispose()
    return _figures(done, elapsed, latencies)


def _figures(done: int, elapsed: float, latencies: list[float]) -> dict[str, Any]:
    return {
        "spends": done,
        "seconds": round(elapsed, 3),
        "spends_per_s": round(done / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 3),
        "p99_ms": round(percentile(latencies, 99) * 1000, 3),
    }


def run_library_concurrent(url: str, spends: int, threads: int = 16) -> dict[str, Any]:
    """``threads`` callers submit to one pool at once: the group commit batches them."""
    members = 50
    jobs = -(-spends // members)
    ctx, agency, member_ids, job_ids = funded_agency(
        url, members=members, jobs=jobs, pool=spends + 10, pool_size=threads
    )
    pairs = iter([(j, m) for j in job_ids for m in member_ids][:spends])
    latencies: list[float] = []
    lock = threading.Lock()

    def caller() -> None:
        while True:
            with lock:
                pair = next(pairs, None)
            if pair is None:
                return
            job_id, member = pair
            latencies.append(_timed_spend(ctx, agency, job_id, member))

    start = time.perf_counter()
    workers = [threading.Thread(target=caller) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - start
    ctx.db.dispose()
    return {"threads": threads, **_figures(len(latencies), elapsed, latencies)}


def compare(url_factory: Any, spends: int) -> dict[str, Any]:
    library, boosted = run_library_pair(url_factory, spends)
    with url_factory() as url:
        concurrent = run_library_concurrent(url, spends)
    with url_factory() as url:
        raw = run_raw(url, spends)
    return {
        "library": library,
        "library_boosted": boosted,
        "boosted_ratio": round(boosted["spends_per_s"] / library["spends_per_s"], 3),
        "boosted_target": 0.8,
        "library_concurrent": concurrent,
        "raw": raw,
        "ratio": round(library["spends_per_s"] / raw["spends_per_s"], 3),
        "concurrent_ratio": round(concurrent["spends_per_s"] / raw["spends_per_s"], 3),
        "target": 0.5,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spends", type=int, default=2000)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    out: dict[str, Any] = {"benchmark": "ledger.spends", "machine": machine()}
    out["sqlite"] = compare(sqlite_database, args.spends)
    reason = "skipped by --skip-postgres" if args.skip_postgres else pg_available()
    out["postgresql"] = {"skipped": reason} if reason else compare(pg_database, args.spends)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
