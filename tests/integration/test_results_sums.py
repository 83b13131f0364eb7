"""R39 summed by the database (``views/results.py: sums``, one GROUP BY over the
figures each proposal's row keeps) against the per-proposal computation it replaced,
kept here as the oracle: random ledgers written row by row on SQLite and PostgreSQL,
each proposal's figures worked out in Python from the rows written, then grouped and
summed in Python. The same ledgers check that ``connects verify`` works each
proposal's figures out of the ledger as the oracle does (so a write path that forgets
them is caught by every test that verifies), and that migration 0018 fills them in."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import create_engine, select, update

from connects.db.migrate import alembic_config
from connects.db.schema import (
    accounts,
    allocations,
    entries,
    holds,
    jobs,
    memberships,
    proposal_outcomes,
    proposals,
    results_months,
    users,
)
from connects.domain.calendar import month_starts
from connects.domain.commands import UpdateAccount
from connects.domain.policy import Actor
from connects.services import proposal_figures
from connects.services.context import Context
from connects.services.verify import verify
from connects.services.views.results import account_results

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


def kept(s: Sent) -> dict[str, int]:
    """The figures a proposal's row keeps (services/proposal_figures.py) for ``s``."""
    return {
        "price_net": s.connects,
        "boost_net": s.boost_connects,
        "cost_net_cents": s.cost_cents,
        "boosted": int(s.boosted),
        "viewed": int(s.viewed),
        "interviewed": int(s.interviewed),
        "hired": int(s.hired),
        "sent_month": s.month,
    }


def months_of(sent: list[Sent]) -> list[dict[str, Any]]:
    """The results_months rows these proposals sum up to."""
    rows: dict[tuple[str, str, int], dict[str, Any]] = {}
    for s in sent:
        key = (s.month, s.member_id, int(s.boosted))
        row = rows.setdefault(
            key,
            {"account_id": ACCOUNT, "month": key[0], "member_id": key[1], "boosted": key[2]}
            | dict.fromkeys(MONTH_SUMS, 0),
        )
        row["proposals"] += 1
        for name in MONTH_SUMS[1:]:
            row[name] += kept(s)[name]
    return [rows[k] for k in sorted(rows)]


MONTH_SUMS = (
    "proposals",
    "price_net",
    "boost_net",
    "cost_net_cents",
    "viewed",
    "interviewed",
    "hired",
)


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


Rows = dict[Any, list[dict[str, Any]]]


def ledger(rng: random.Random, tz: str, n: int) -> tuple[Rows, list[tuple[datetime, Sent]]]:
    """The rows of ``n`` proposals of 4 members, each its own job, with their entries,
    allocations, holds and outcomes; what each came to, as the oracle works it out."""
    local = ZoneInfo(tz)
    members = [f"usr_sums_m{i}" for i in range(4)]
    t0 = SINCE - timedelta(days=400)
    tables = (
        *(users, accounts, memberships, jobs, proposals),
        *(entries, allocations, holds, proposal_outcomes, results_months),
    )
    rows: Rows = {t: [] for t in tables}
    for uid in (OWNER, CLIENT, *members):
        rows[users].append({"id": uid, "name": uid, "email": f"{uid}@t.test", "created_at": t0})
    for uid, role in ((OWNER, "owner"), *((m, "member") for m in members)):
        rows[memberships].append(
            {"account_id": ACCOUNT, "user_id": uid, "role": role, "created_at": t0}
        )
    seq = 0
    out: list[tuple[datetime, Sent]] = []

    def entry(
        pid: str, member: str, at: datetime, kind: str, amount: int, hold: Any, undo: Any = None
    ) -> tuple[int, list[tuple[int, int]]]:
        """An entry and its allocations (1 or 2 lots; a refund: those of the entry it
        ``undo``es, with exactly their cents); the cents it carried, and its shares."""
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
        shares = undo or [
            (1 + rng.randrange(20), rng.choice((0, 0, rng.randrange(1, 5000))))
            for _ in range(rng.choice((1, 2)))
        ]
        for lot, (take, c) in enumerate(shares):
            rows[allocations].append(
                {
                    "account_id": ACCOUNT,
                    "entry_id": eid,
                    "lot_id": f"lot_sums_{lot}",
                    "amount": take,
                    "cost_cents": c,
                }
            )
        cents = sum(c for _, c in shares)
        return (cents if amount < 0 else -cents), shares

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
        cost, took = entry(pid, member, sent, "spend", -price, None)
        spent = price
        if rng.random() < 0.2:  # refunded
            cost += entry(pid, member, later, "refund", price, None, took)[0]
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
                hold = f"hld_sums_{i}"
                cents, took = entry(pid, member, later, "capture", -bid, hold)
                cost += cents
                boost = bid
                if rng.random() < 0.3:  # the boost returned
                    back = later + timedelta(hours=1)
                    cost += entry(pid, member, back, "refund", bid, hold, took)[0]
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
        rows[proposals].append(
            {
                **kept(figures),
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
        out.append((sent, figures))
    rows[accounts].append(
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
        }
    )
    rows[results_months] = months_of([s for _, s in out])
    return rows, out


def write(conn: Any, rows: Rows, as_proposals: Any = proposals) -> None:
    """Insert the rows, in an order their foreign keys accept (the proposals into
    ``as_proposals``: the table as an older schema had it)."""
    tables = (users, accounts, memberships, jobs, proposals, entries, allocations, holds)
    for table in (*tables, results_months):
        if rows[table]:
            conn.execute((as_proposals if table is proposals else table).insert(), rows[table])
    conn.execute(proposal_outcomes.insert(), rows[proposal_outcomes])


def seed(ctx: Context, rng: random.Random, tz: str, n: int) -> list[tuple[datetime, Sent]]:
    """A random ledger (:func:`ledger`) in the context's database."""
    rows, out = ledger(rng, tz, n)
    with ctx.db.begin() as conn:
        write(conn, rows)
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


@pytest.mark.parametrize("seed_no", [6, 7])
def test_verify_works_out_each_proposals_figures_as_the_oracle(
    any_ctx: Context, seed_no: int
) -> None:
    # R39: the figures a row keeps are what connects verify finds in the ledger; a
    # figure off by one, or a flag flipped, is reported with the proposal and the field
    seed(any_ctx, random.Random(seed_no), "Europe/Berlin", 120)
    with any_ctx.db.read() as conn:
        assert proposal_figures.drift(conn) == []
        assert proposal_figures.month_drift(conn) == []
    with any_ctx.db.begin() as conn:
        for column, value in (("cost_net_cents", proposals.c.cost_net_cents + 1), ("hired", 1)):
            conn.execute(
                update(proposals)
                .where(proposals.c.account_id == ACCOUNT, proposals.c.id == "prp_sums_3")
                .values({column: value})
            )
    with any_ctx.db.read() as conn:
        ((acct, pid, kept_now, found),) = proposal_figures.drift(conn)
    assert (acct, pid) == (ACCOUNT, "prp_sums_3")
    assert kept_now["cost_net_cents"] == found["cost_net_cents"] + 1
    assert kept_now["hired"] == 1
    assert any("prp_sums_3" in str(b) and "cost_net_cents" in str(b) for b in verify(any_ctx))


def test_a_month_row_or_a_proposals_month_off_is_reported(any_ctx: Context) -> None:
    seed(any_ctx, random.Random(9), "UTC", 40)
    m = results_months.c
    with any_ctx.db.begin() as conn:
        month, member = conn.execute(select(m.month, m.member_id).limit(1)).one()
        conn.execute(
            update(results_months)
            .where(m.account_id == ACCOUNT, m.month == month, m.member_id == member)
            .values(hired=m.hired + 1)
        )
        conn.execute(
            update(proposals)
            .where(proposals.c.account_id == ACCOUNT, proposals.c.id == "prp_sums_5")
            .values(sent_month="1999-01")
        )
    with any_ctx.db.read() as conn:
        found = [what for _, what in proposal_figures.month_drift(conn)]
    assert any(f"results_months {month} of {member}" in w for w in found)
    assert any("prp_sums_5 counts in month '1999-01'" in w for w in found)


def test_a_new_zone_counts_every_proposal_in_its_new_month(any_ctx: Context) -> None:
    # R39: months are the account's; a zone change moves proposals near a month's edge
    sent = seed(any_ctx, random.Random(10), "Pacific/Kiritimati", 200)
    any_ctx.handle(UpdateAccount(Actor("user", OWNER), ACCOUNT, timezone="Pacific/Pago_Pago"))
    there = ZoneInfo("Pacific/Pago_Pago")
    moved = [(at, replace(s, month=at.astimezone(there).strftime("%Y-%m"))) for at, s in sent]
    assert sum(a.month != b.month for (_, a), (_, b) in zip(sent, moved, strict=True)) > 5
    with any_ctx.db.read() as conn:
        assert proposal_figures.month_drift(conn) == []
    got = account_results(
        any_ctx, Actor("user", OWNER), ACCOUNT, since=SINCE, until=UNTIL, group_by="month"
    )
    want = oracle([s for at, s in moved if SINCE <= at < UNTIL], "month", "USD")
    assert {k: got[k] for k in want} == want


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'f.db'}"
    return str(request.getfixturevalue("pg_url"))


def test_migration_0018_fills_in_each_proposals_figures(url: str) -> None:
    # R39: proposals written before their rows kept figures get them from the ledger
    rows, sent = ledger(random.Random(8), "America/Santiago", 150)
    assert rows[accounts][0]["timezone"] == "America/Santiago"
    figures = [kept(s) for _, s in sent]
    for row in rows[proposals]:
        for name in figures[0]:
            del row[name]
    cfg = alembic_config(url)
    command.upgrade(cfg, "0017")
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            old = sa.Table("proposals", sa.MetaData(), autoload_with=conn)
            write(conn, {**rows, results_months: []}, as_proposals=old)
        command.upgrade(cfg, "head")
        with engine.connect() as conn:
            got = {
                r.id: {name: getattr(r, name) for name in figures[0]}
                for r in conn.execute(select(proposals))
            }
            months = [
                dict(r._mapping)
                for r in conn.execute(
                    select(results_months).order_by(
                        results_months.c.month, results_months.c.member_id, results_months.c.boosted
                    )
                )
            ]
    finally:
        engine.dispose()
    assert got == {row["id"]: f for row, f in zip(rows[proposals], figures, strict=True)}
    assert months == months_of([s for _, s in sent])
    assert sum(f["boosted"] for f in figures) and sum(f["hired"] for f in figures)


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
