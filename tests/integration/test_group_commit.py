"""Group commit (R5, R14, R4, R35): a batch of proposals answers as the same asks one by one.

``submit_many`` runs several submissions to one pool in one transaction. Whatever the
mix (budgets, price changes, duplicates, a closed job, a pool that runs dry), every
ask must get the answer it would have had alone, in order, and the ledger must end
the same. The combiner must hand every caller its own answer under real threads.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from connects.bootstrap import build
from connects.config import Settings
from connects.db.schema import accounts, entries, proposals
from connects.domain.clock import SimulatedClock
from connects.domain.commands import EndJob, SetBudget, SubmitProposal
from connects.domain.errors import ConnectsError
from connects.services import proposals as props
from connects.services.batching import Combiner
from connects.services.context import Context
from connects.services.verify import verify
from tests.conftest import START
from tests.world import World

MEMBERS = ("ann", "bob", "cy")
PRICES = (0, 6, 13, 21, 30)


@dataclass
class Cast:
    ctx: Context
    agency: str
    people: dict[str, str]
    jobs: list[str]  # open jobs priced PRICES, then one cancelled job


def _cast(url: str, clock: SimulatedClock) -> Cast:
    ctx = build(Settings(database_url=url), clock=clock, migrate=True)
    w = World(ctx)
    agency = w.agency("olga", ann="member", bob="member", cy="manager")
    ctx.handle(SetBudget(w.actor("olga"), agency, w.people["bob"], 25))  # R4
    jobs = [w.job(p, title=f"job {p}") for p in PRICES]
    closed = w.job(5, title="closed")
    ctx.handle(EndJob(w.actor("client"), closed, "cancelled"))
    w.submit("ann", w.job(55, title="setup"), agency)  # 25 of the plan's 80 left: runs dry
    ctx.group_commit = False
    return Cast(ctx, agency, dict(w.people), [*jobs, closed])


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One migrated SQLite file with the cast; each example works on a copy."""
    path = tmp_path_factory.mktemp("group") / "template.db"
    cast = _cast(f"sqlite:///{path}", SimulatedClock(START))
    cast.ctx.db.dispose()
    yield path


def _copy(template: Path, name: str) -> Cast:
    path = template.with_name(name)
    shutil.copy(template, path)
    clock = SimulatedClock(START)
    ctx = build(Settings(database_url=f"sqlite:///{path}"), clock=clock, migrate=False)
    ctx.group_commit = False
    with ctx.db.read() as conn:
        agency = conn.execute(select(accounts.c.id).where(accounts.c.kind == "agency")).scalar()
    from connects.db.schema import jobs as jobs_table
    from connects.db.schema import users

    with ctx.db.read() as conn:
        people = {r.email.split("@")[0]: r.id for r in conn.execute(select(users))}
        rows = conn.execute(select(jobs_table).order_by(jobs_table.c.title)).all()
    by_title = {r.title: r.id for r in rows}
    return Cast(
        ctx, str(agency), people, [*(by_title[f"job {p}"] for p in PRICES), by_title["closed"]]
    )


ask_strategy = st.tuples(
    st.sampled_from(("olga", *MEMBERS, "client")),  # who submits
    st.sampled_from(MEMBERS),  # for whom
    st.integers(0, len(PRICES)),  # which job (the last is cancelled)
    st.sampled_from((0, 0, 0, 1)),  # 1: the caller expects a stale price
    st.sampled_from((None, None, 2, 9)),  # a boost bid (R35)
)


def _asks(cast: Cast, raw: list[tuple[str, str, int, int, int | None]]) -> list[SubmitProposal]:
    out = []
    for who, whom, job, stale, boost in raw:
        price = (*PRICES, 5)[job]
        out.append(
            SubmitProposal(
                props.Actor("user", cast.people[who]),
                cast.jobs[job],
                cast.agency,
                cast.people[whom],
                price + stale,
                boost,
            )
        )
    return out


def _code(outcome: Any) -> str:
    return outcome.code if isinstance(outcome, ConnectsError) else "ok"


def _ledger(ctx: Context, agency: str) -> tuple[int, int, list[tuple[str, int]], int]:
    with ctx.db.read() as conn:
        balance = conn.execute(select(accounts.c.balance).where(accounts.c.id == agency)).scalar()
        held = conn.execute(select(accounts.c.held).where(accounts.c.id == agency)).scalar()
        n = conn.execute(select(func.count()).select_from(proposals)).scalar()
        spent = conn.execute(
            select(entries.c.member_id, func.sum(entries.c.amount))
            .where(entries.c.kind == "spend")
            .group_by(entries.c.member_id)
            .order_by(entries.c.member_id)
        ).all()
    return int(balance or 0), int(n or 0), [(str(m), int(s)) for m, s in spent], int(held or 0)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(raw=st.lists(ask_strategy, min_size=1, max_size=14))
def test_a_batch_answers_as_the_asks_one_by_one(template: Path, raw: Any) -> None:
    batched, serial = _copy(template, "batched.db"), _copy(template, "serial.db")
    try:
        together, _ = props.submit_many(batched.ctx, batched.agency, _asks(batched, raw))
        alone = [
            props.submit_many(serial.ctx, serial.agency, [ask])[0][0] for ask in _asks(serial, raw)
        ]
        assert [_code(o) for o in together] == [_code(o) for o in alone]
        for a, b in zip(together, alone, strict=True):
            if not isinstance(a, ConnectsError):
                assert isinstance(b, dict)
                assert (a["connects_spent"], a["balance"]) == (b["connects_spent"], b["balance"])
                bid = (a["boost"] or {}).get("bid"), (b["boost"] or {}).get("bid")
                assert bid[0] == bid[1]  # R35: the boost held as alone
        assert _ledger(batched.ctx, batched.agency)[0] == _ledger(serial.ctx, serial.agency)[0]
        assert _ledger(batched.ctx, batched.agency)[1:] == _ledger(serial.ctx, serial.agency)[1:]
        assert verify(batched.ctx) == []
    finally:
        batched.ctx.db.dispose()
        serial.ctx.db.dispose()


def test_a_batch_where_every_ask_is_refused_writes_nothing(any_ctx: Context) -> None:
    w = World(any_ctx)
    agency = w.agency("olga", ann="member")
    job = w.job(7)
    before = _ledger(any_ctx, agency)
    asks = [
        SubmitProposal(w.actor("ann"), job, agency, w.people["ann"], 6),  # stale price
        SubmitProposal(w.actor("client"), job, agency, w.people["ann"], 7),  # not a member
    ]
    outcomes, events = props.submit_many(any_ctx, agency, asks)
    assert [_code(o) for o in outcomes] == ["price_changed", "not_found"]
    assert events == []
    assert _ledger(any_ctx, agency) == before


def test_duplicates_inside_one_batch_answer_already_applied(any_ctx: Context) -> None:
    w = World(any_ctx)
    agency = w.agency("olga", ann="member")
    job = w.job(3)
    ask = SubmitProposal(w.actor("ann"), job, agency, w.people["ann"], 3)
    outcomes, _ = props.submit_many(any_ctx, agency, [ask, ask, ask])
    assert [_code(o) for o in outcomes] == ["ok", "already_applied", "already_applied"]
    assert _ledger(any_ctx, agency)[1] == 1
    assert verify(any_ctx) == []


def test_a_duplicate_is_already_applied_before_it_is_unaffordable(any_ctx: Context) -> None:
    # R14 R39: the spends come before the insert that finds duplicates; a duplicate the pool
    # can no longer pay for is still told already_applied, as alone. The proposals
    # go in with the figures their spends gave them (R39), checked by verify.
    w = World(any_ctx)
    agency = w.agency("olga", ann="member", bob="member")
    first, second, dear = w.job(30), w.job(30), w.job(60)
    ann = SubmitProposal(w.actor("ann"), first, agency, w.people["ann"], 30)
    bob = SubmitProposal(w.actor("bob"), second, agency, w.people["bob"], 30)
    assert [_code(o) for o in props.submit_many(any_ctx, agency, [ann, bob])[0]] == ["ok"] * 2
    # 80 -> 20: ann's second ask is a duplicate and would not be affordable either
    assert _code(props.submit_many(any_ctx, agency, [ann])[0][0]) == "already_applied"
    big = SubmitProposal(w.actor("bob"), dear, agency, w.people["bob"], 60)
    outcomes, _ = props.submit_many(any_ctx, agency, [ann, big])
    assert [_code(o) for o in outcomes] == ["already_applied", "insufficient_connects"]
    outcomes, _ = props.submit_many(any_ctx, agency, [big, ann])
    assert [_code(o) for o in outcomes] == ["insufficient_connects", "already_applied"]
    with any_ctx.db.read() as conn:
        row = conn.execute(select(proposals).where(proposals.c.job_id == first)).one()
    assert (row.price_net, row.boost_net, row.cost_net_cents) == (30, 0, 0)  # granted lot
    assert _ledger(any_ctx, agency)[:2] == (20, 2)
    assert verify(any_ctx) == []


def test_threads_through_the_combiner_each_get_their_own_answer(any_ctx: Context) -> None:
    """32 threads on one pool of 80: exactly the affordable ones go through."""
    w = World(any_ctx)
    names = [f"m{i}" for i in range(32)]
    agency = w.agency("olga", **dict.fromkeys(names, "member"))
    job = w.job(3)
    results: dict[str, str] = {}
    start = threading.Barrier(len(names))

    def go(name: str) -> None:
        start.wait()
        try:
            out = w.submit(name, job, agency)
            results[name] = f"ok:{out['freelancer_id']}"
        except ConnectsError as error:
            results[name] = error.code

    threads = [threading.Thread(target=go, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [n for n, r in results.items() if r.startswith("ok")]
    assert len(ok) == 80 // 3  # 26 proposals of 3 from the plan's 80 (R7)
    assert all(results[n] == f"ok:{w.people[n]}" for n in ok)
    assert sorted(set(results.values()) - {f"ok:{w.people[n]}" for n in ok}) == [
        "insufficient_connects"
    ]
    assert _ledger(any_ctx, agency)[0] == 80 - 3 * len(ok)
    assert verify(any_ctx) == []


def test_the_combiner_hands_the_queue_on_when_a_batch_raises() -> None:
    combiner: Combiner[int] = Combiner()
    calls: list[list[int]] = []

    def run(key: object, items: list[int]) -> tuple[list[Any], None]:
        calls.append(items)
        if 13 in items:
            raise RuntimeError("boom")
        return [i * 2 for i in items], None

    assert combiner.submit("k", 4, run) == 8
    with pytest.raises(RuntimeError):
        combiner.submit("k", 13, run)
    assert combiner.submit("k", 5, run) == 10  # the key is free again
    assert combiner._queues == {}
