"""Auto top-up latency: from the spend that empties the pool to the completed top-up.

In process (the library, as `connects serve` runs it), on SQLite and PostgreSQL: an
agency with the top-up manager granted, auto top-up on (40 per top-up) and a card.
Each round submits a proposal that costs exactly what is left, so the pool hits zero;
the top-up is decided in that transaction and executed right after it commits. The
clock runs from the start of the submission to the moment the top-up has succeeded
(checked in the top-up history). Target p99 < 50 ms. Prints JSON.

``python bench/topup.py --rounds 200``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from connects.domain.commands import (
    AddBillingMethod,
    GrantPermissions,
    PostJob,
    SetAutoTopUp,
    SubmitProposal,
)

sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.common import (  # noqa: E402
    funded_agency,
    machine,
    percentile,
    pg_available,
    pg_database,
    sqlite_database,
)
from connects.domain.policy import Actor  # noqa: E402
from connects.services import topups, views  # noqa: E402


def run(url: str, rounds: int) -> dict[str, Any]:
    ctx, agency, members, _ = funded_agency(url, members=1, jobs=0, pool=1)
    with ctx.db.read() as conn:
        from sqlalchemy import select

        from connects.db.schema import accounts

        owner_id = conn.execute(
            select(accounts.c.owner_id).where(accounts.c.id == agency)
        ).scalar_one()
    owner = Actor("user", owner_id)
    ctx.handle(AddBillingMethod(owner, agency, "tok_visa"))
    ctx.handle(GrantPermissions(owner, agency, "topup-manager", ["connects:purchase"]))
    ctx.handle(
        SetAutoTopUp(owner, agency, {"enabled": True, "per_topup": 40, "per_month": 100_000})
    )
    client = members[0]
    member = Actor("user", members[0])
    latencies: list[float] = []
    for i in range(rounds):
        left = views.overview(ctx, owner, agency)["available"]
        job_id = ctx.handle(PostJob(client, f"round {i}", left))
        t0 = time.perf_counter()
        ctx.handle(
            SubmitProposal(
                member,
                job_id=job_id,
                account_id=agency,
                freelancer_id=members[0],
                expected_connects=left,
            )
        )
        latencies.append(time.perf_counter() - t0)
        latest = topups.history(ctx, owner, agency, limit=1)["items"][0]
        if latest["status"] != "succeeded":
            raise SystemExit(f"round {i}: top-up {latest['status']} ({latest['reason']})")
    bought = len(topups.history(ctx, owner, agency, limit=1000)["items"])
    ctx.db.dispose()
    return {
        "rounds": rounds,
        "topups": bought,
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "max_ms": round(max(latencies) * 1000, 2),
        "target_p99_ms": 50,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="auto top-up latency")
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    out: dict[str, Any] = {"benchmark": "topup.latency", "machine": machine()}
    with sqlite_database() as url:
        out["sqlite"] = run(url, args.rounds)
    reason = pg_available()
    if reason:
        out["postgresql"] = {"skipped": reason}
    else:
        with pg_database() as url:
            out["postgresql"] = run(url, args.rounds)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
