"""R39 summed by the database (``views/results.py: sums``, one GROUP BY statement)
against the per-proposal computation it replaced, kept here as the oracle: random
ledgers written row by row on SQLite and PostgreSQL, each proposal's figures worked
out in Python from the rows written, then grouped and summed in Python."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from connects.db.schema import (
    accounts,
    allocations,
    entries,
    holds,
    jobs,
    memberships,
    proposal_outcomes,
    proposals,
    users,
)
from connects.domain.policy import Actor
from connects.services.context import Context
from connects.services.views.results import account_results, month_starts

ACCOUNT, OWNER, CLIENT = "acct_sums", "usr_sums_owner", "usr_sums_client"
SINCE = datetime(2025, 11, 1, tzinfo=UTC)
UNTIL = datetime(2027, 1, 1, tzinfo=UTC)
SEEN = {"viewed", "interviewed", "declined", "hired"}


# --- the oracle: the per-proposal computation src/ used before sums moved into SQL ---
@dataclass(frozen=True)
class Sent:
    member_id: str
    month: str
    boosted: bool
    connects: int
    boost_connects: int
    cost_cents: int
    viewed: bool
    interviewed: bool
    hired: bool


def _ratio(top: int, bottom: int) -> float | None:
    return None if bottom == 0 else round(top / bottom, 2)


def _cents(top: int, bottom: int) -> int | None:
    return None if bottom == 0 else (2 * top + bottom) // (2 * bottom)


def summarize(rows: list[Sent], currency: str) -> dict[str, Any]:
    connects = sum(s.connects for s in rows)
    boost = sum(s.boost_connects for s in rows)
    cost = sum(s.cost_cents for s in rows)
    interviews = sum(s.interviewed for s in rows)
    hires = sum(s.hired for s in rows)
    per_hire = _cents(cost, hires)
    return {
        "proposals": len(rows),
        "connects_spent": connects,
        "boost_connects_spent": boost,
        "views": sum(s.viewed for s in rows),
        "interviews": interviews,
        "hires": hires,
        "connects_per_interview": _ratio(connects + boost, interviews),
        "connects_per_hire": _ratio(connects + boost, hires),
        "cost_per_hire": None if per_hire is None else {"amount": per_hire, "currency": currency},
        "cost_cents": cost,
        "cost_per_interview_cents": _cents(cost, interviews),
    }


KEYS: dict[str | None, Callable[[Sent], str]] = {
    "member": lambda s: s.member_id,
    "boost": lambda s: "boosted" if s.boosted else "not_boosted",
    "month": lambda s: s.month,
}


def oracle(sent: list[Sent], group_by: str | None, currency: str) -> dict[str, Any]:
    groups: list[dict[str, Any]] = []
    if group_by is not None:
        by: dict[str, list[Sent]] = {}
        for s in sent:
            by.setdefault(KEYS[group_by](s), []).append(s)
        groups = [{"key": k, **summarize(by[k], currency)} for k in sorted(by)]
    return {"totals": summarize(sent, currency), "groups": groups, "currency": currency}


# --- a random ledger, written row by row ---
def _when(rng: random.Random, tz: ZoneInfo) -> datetime:
    """A time from a little before SINCE to a little after UNTIL; one in three at a
    local month's start, or a microsecond before it."""
    if rng.random() < 1 / 3:
        month = rng.randrange(-1, 15)
        y, m = 2025 + (10 + month) // 12, (10 + month) % 12 + 1
        start = datetime(y, m, 1, tzinfo=tz).astimezone(UTC)
        return start - timedelta(microseconds=rng.choice((0, 1)))
    return SINCE - timedelta(days=10) + timedelta(seconds=rng.randrange(0, 440 * 86400))


def seed(ctx: Context, rng: random.Random, tz: str, n: int) -> list[tuple[datetime, Sent]]:
    """``n`` proposals of 4 members; each its own job; what each came to."""
    local = ZoneInfo(tz)
    members = [f"usr_sums_m{i}" for i in range(4)]
    t0 = SINCE - timedelta(days=400)
    tables = (users, memberships, jobs, proposals, entries, allocations, holds, proposal_outcomes)
    rows: dict[Any, list[dict[str, Any]]] = {t: [] for t in tables}
    for uid in (OWNER, CLIENT, *members):
        rows[users].append({"id": uid, "name": uid, "email": f"{uid}@t.test", "created_at": t0})
    for uid, role in ((OWNER, "owner"), *((m, "member") for m in members)):
        rows[memberships].append(
            {"account_id": ACCOUNT, "user_id": uid, "role": role, "created_at": t0}
        )
    seq = 0
    out: list[tuple[datetime, Sent]] = []

    def entry(pid: str, member: str, at: datetime, kind: str, amount: int, hold: Any) -> int:
        """An entry and its allocations (1 or 2 lots); the cents they carried."""
        nonlocal seq
        seq += 1
        eid = f"ent_sums_{seq}"
        rows[entries].append(
            {
                "id": eid,
                "account_id": ACCOUNT,
                "seq": seq,
                "at": at,
                "kind": kind,
                "amount": amount,
                "balance_after": 0,
                "actor_kind": "system",
                "member_id": member,
                "proposal_id": pid,
                "hold_id": hold,
            }
        )
        cents = 0
        for lot in range(rng.choice((1, 1, 2))):
            c = rng.choice((0, 0, rng.randrange(1, 5000)))
            cents += c
            rows[allocations].append(
                {
                    "account_id": ACCOUNT,
                    "entry_id": eid,
                    "lot_id": f"lot_sums_{lot}",
                    "amount": 1 + rng.randrange(20),
                    "cost_cents": c,
                }
            )
        return cents if amount < 0 else -cents

    for i in range(n):
        pid, job, member = f"prp_sums_{i}", f"job_sums_{i}", rng.choice(members)
        sent = _when(rng, local)
        price = 1 + rng.randrange(30)
        rows[jobs].append(
            {
                "id": job,
                "client_id": CLIENT,
                "title": "Job",
                "connects_required": price,
                "status": "open",
                "created_at": sent,
                "updated_at": sent,
            }
        )
        later = sent + timedelta(hours=1 + rng.randrange(2000))
        cost = entry(pid, member, sent, "spend", -price, None)
        spent = price
        if rng.random() < 0.2:  # refunded
            cost += entry(pid, member, later, "refund", price, None)
            spent = 0
        boost, boosted = 0, rng.random() < 0.3
        if boosted:
            bid = 1 + rng.randrange(10)
            captured = rng.random() < 0.6
            rows[holds].append(
                {
                    "id": f"hld_sums_{i}",
                    "account_id": ACCOUNT,
                    "amount": bid,
                    "captured": bid if captured else 0,
                    "status": "captured" if captured else "released",
                    "reason": "boost",
                    "proposal_id": pid,
                    "job_id": job,
                    "member_id": member,
                    "bid_at": sent,
                    "created_at": sent,
                }
            )
            if captured:
                cost += entry(pid, member, later, "capture", -bid, f"hld_sums_{i}")
                boost = bid
                if rng.random() < 0.3:  # the boost returned
                    back = later + timedelta(hours=1)
                    cost += entry(pid, member, back, "refund", bid, f"hld_sums_{i}")
                    boost = 0
        kinds = {k for k in sorted(SEEN | {"withdrawn", "returned"}) if rng.random() < 0.3}
        for k in sorted(kinds):
            rows[proposal_outcomes].append(
                {
                    "proposal_id": pid,
                    "kind": k,
                    "account_id": ACCOUNT,
                    "actor_id": CLIENT,
                    "at": later,
                }
            )
        rows[proposals].append(
            {
                "id": pid,
                "account_id": ACCOUNT,
                "job_id": job,
                "freelancer_id": member,
                "submitted_by": member,
                "connects_spent": price,
                "status": "active",
                "entry_id": "",
                "created_at": sent,
                "updated_at": sent,
            }
        )
        figures = Sent(
            member,
            sent.astimezone(local).strftime("%Y-%m"),
            boosted,
            spent,
            boost,
            cost,
            bool(kinds & SEEN),
            "interviewed" in kinds,
            "hired" in kinds,
        )
        out.append((sent, figures))
    with ctx.db.begin() as conn:
        conn.execute(users.insert(), rows[users])
        conn.execute(
            accounts.insert(),
            {
                "id": ACCOUNT,
                "kind": "agency",
                "name": "Agency",
                "owner_id": OWNER,
                "plan": "agency-plus",
                "timezone": tz,
                "anchor_day": 1,
                "next_cycle_at": UNTIL,
                "balance": 0,
                "seq": seq,
                "created_at": t0,
            },
        )
        for table in (memberships, jobs, proposals, entries, allocations, holds):
            if rows[table]:
                conn.execute(table.insert(), rows[table])
        conn.execute(proposal_outcomes.insert(), rows[proposal_outcomes])
    return out


@pytest.mark.parametrize(
    ("seed_no", "tz"),
    [(1, "Europe/Berlin"), (2, "America/Santiago"), (3, "Asia/Kathmandu"), (4, "UTC")],
)
def test_sql_sums_are_the_per_proposal_sums(any_ctx: Context, seed_no: int, tz: str) -> None:
    # R39: every figure, every grouping, every viewer, against the old computation
    ledger = seed(any_ctx, random.Random(seed_no), tz, 160)
    periods = [(SINCE, UNTIL), (datetime(2026, 3, 31, 22, tzinfo=UTC), UNTIL)]
    for since, until in periods:
        cohort = [s for at, s in ledger if since <= at < until]
        for who in (OWNER, "usr_sums_m2"):
            mine = [s for s in cohort if who == OWNER or s.member_id == who]
            for group_by in (None, "member", "boost", "month"):
                got = account_results(
                    any_ctx,
                    Actor("user", who),
                    ACCOUNT,
                    since=since,
                    until=until,
                    group_by=group_by,
                )
                want = oracle(mine, group_by, "USD")
                assert {k: got[k] for k in want} == want, (since, who, group_by)
    assert len({s.month for _, s in ledger}) > 12


def test_a_period_with_nothing_sent(any_ctx: Context) -> None:
    seed(any_ctx, random.Random(5), "UTC", 5)
    since = UNTIL + timedelta(days=400)
    for group_by in (None, "member", "boost", "month"):
        got = account_results(
            any_ctx,
            Actor("user", OWNER),
            ACCOUNT,
            since=since,
            until=since + timedelta(1),
            group_by=group_by,
        )
        assert got["groups"] == [] and got["totals"] == summarize([], "USD")


def test_month_starts_follow_the_zone() -> None:
    # Berlin: 1 Apr 2026 00:00 CEST is 31 Mar 22:00 UTC; 1 Nov 00:00 CET is 31 Oct 23:00
    got = month_starts(
        datetime(2026, 3, 31, 21, 59, tzinfo=UTC),
        datetime(2026, 11, 1, tzinfo=UTC),
        "Europe/Berlin",
    )
    assert [k for k, _ in got] == [f"2026-{m:02d}" for m in range(3, 12)]
    assert got[1][1] == datetime(2026, 3, 31, 22, tzinfo=UTC)
    assert got[-1][1] == datetime(2026, 10, 31, 23, tzinfo=UTC)
