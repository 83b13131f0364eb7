"""One trigger, at most one purchase (R23), on real PostgreSQL with real concurrency.

Threads each hold their own pooled connection; workers and crashing handlers are real
processes. Every test is bounded to a few seconds.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from connects.db.schema import purchases, topups
from connects.domain.clock import SimulatedClock
from connects.domain.commands import SubmitProposal
from connects.domain.errors import ConnectsError, InsufficientConnects
from connects.services import topup_claims, topup_runner
from connects.services.book import AccountBook
from connects.services.context import Context
from connects.services.topup_trigger import decide_in, load_settings
from tests.conftest import PG_SKIP_REASON, PG_URL, MakeCtx
from tests.integration.topup_support import Agency, agency, all_charges, charges, events_of, rows

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not PG_URL, reason=PG_SKIP_REASON),
]

THREADS = 64
CHILD_TIMEOUT = 60  # seconds; a child normally takes about one


@pytest.fixture
def pg_ctx(make_ctx: MakeCtx, pg_url: str) -> Context:
    """An engine whose pool gives every one of the test's threads its own connection."""
    return make_ctx(pg_url, db_pool_size=THREADS + 4)


def _race(n: int, work: Callable[[int], Any]) -> list[Any]:
    """Run ``work(i)`` in ``n`` threads released together; results or exceptions."""
    gate = threading.Barrier(n)
    out: list[Any] = [None] * n

    def run(i: int) -> None:
        gate.wait(timeout=30)
        try:
            out[i] = work(i)
        except ConnectsError as exc:
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    return out


def _jobs(a: Agency, n: int, price: int) -> list[str]:
    return [a.world.job(price, title=f"job {i}") for i in range(n)]


def _submit(ctx: Context, a: Agency, job_id: str, price: int) -> dict[str, Any]:
    return ctx.handle(
        SubmitProposal(
            a.owner,
            job_id=job_id,
            account_id=a.id,
            freelancer_id=str(a.owner.id),
            expected_connects=price,
        )
    )


def test_sixty_four_spends_empty_the_pool_once(pg_ctx: Context) -> None:
    # R23: 64 concurrent spends, 32 Connects in the pool: the one that empties it
    # decides the only top-up; exactly one gateway charge; never below zero.
    a = agency(pg_ctx)
    a.spend(48)  # 80 -> 32
    jobs = _jobs(a, THREADS, 1)
    out = _race(THREADS, lambda i: _submit(pg_ctx, a, jobs[i], 1))
    spent = [r for r in out if isinstance(r, dict)]
    refused = [r for r in out if not isinstance(r, dict)]
    assert all(isinstance(r, InsufficientConnects) for r in refused), refused
    assert len(spent) >= 32
    [t] = rows(pg_ctx, a.id)
    assert (t.status, t.quantity, t.trigger) == ("succeeded", 40, "balance_zero")
    assert charges(pg_ctx, t.purchase_id) == 1
    assert all_charges(pg_ctx) == 1
    assert a.available() == 32 + 40 - len(spent)
    assert len(events_of(pg_ctx, a.id, "topup_succeeded")) == 1


def test_monthly_limit_holds_under_concurrency(pg_ctx: Context) -> None:
    # R21, R23: many crossings and just-in-time top-ups at once never pass the
    # month's limit, and the limit event goes once.
    a = agency(pg_ctx, per_month=100, just_in_time=True)
    n = 32
    jobs = _jobs(a, n, 5)  # 160 Connects wanted; 80 there and 100 may be bought
    out = _race(n, lambda i: _submit(pg_ctx, a, jobs[i], 5))
    spent = [r for r in out if isinstance(r, dict)]
    assert all(isinstance(r, dict | InsufficientConnects) for r in out), out
    done = rows(pg_ctx, a.id)
    assert {t.status for t in done} <= {"succeeded", "skipped"}
    bought = sum(t.quantity for t in done if t.status == "succeeded")
    assert bought <= 100
    assert all_charges(pg_ctx) == sum(1 for t in done if t.status == "succeeded")
    assert a.available() == 80 + bought - 5 * len(spent)
    assert len(events_of(pg_ctx, a.id, "monthly_limit_reached")) <= 1


_CHILD_PRELUDE = """
import json, os, signal, sys, time
from datetime import datetime
from connects.bootstrap import build
from connects.config import Settings
from connects.domain.clock import SimulatedClock

url, now = sys.argv[1], sys.argv[2]
ctx = build(Settings(database_url=url), clock=SimulatedClock(datetime.fromisoformat(now)))
"""


def _spawn(script: str, ctx: Context, *args: str) -> subprocess.Popen[str]:
    code = _CHILD_PRELUDE + textwrap.dedent(script)
    return subprocess.Popen(
        [sys.executable, "-c", code, ctx.db.url, ctx.now().isoformat(), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


_WORKER = """
ready, go = sys.argv[3], sys.argv[4]
charged = []
real = ctx.gateway.charge

def charge(**kw):
    charged.append(kw["idempotency_key"])
    time.sleep(0.01)  # widen the window in which the other worker could collide
    return real(**kw)

ctx.gateway.charge = charge
from connects.services import topup_runner
open(ready, "w").close()
deadline = time.monotonic() + 30
while not os.path.exists(go) and time.monotonic() < deadline:
    time.sleep(0.002)
done = topup_runner.run_pending(ctx)
print(json.dumps({"done": done, "charged": charged}))
"""


def test_two_worker_processes_never_both_buy(pg_ctx: Context, tmp_path: Path) -> None:
    # R23: two real worker processes run run_pending over the same pending top-ups,
    # released together: each top-up is executed by one of them, charged once.
    a = agency(pg_ctx, per_topup=10)
    n = 24
    with pg_ctx.db.begin() as conn:
        book = AccountBook.lock(conn, a.id, pg_ctx.now())
        settings = load_settings(conn, a.id)
        for i in range(n):
            decide_in(book, settings, trigger="balance_zero", key=f"balance_zero:test{i}")
    assert [t.status for t in rows(pg_ctx, a.id)] == ["pending"] * n
    go = tmp_path / "go"
    workers = [_spawn(_WORKER, pg_ctx, str(tmp_path / f"ready{i}"), str(go)) for i in range(2)]
    for i in range(2):
        _wait_for(tmp_path / f"ready{i}", workers[i])
    go.touch()
    reports = []
    for w in workers:
        out, err = w.communicate(timeout=CHILD_TIMEOUT)
        assert w.returncode == 0, err
        reports.append(json.loads(out.strip().splitlines()[-1]))
    first, second = (set(r["charged"]) for r in reports)
    assert not first & second, "both workers charged the same top-up"
    assert sum(r["done"] for r in reports) == n
    done = rows(pg_ctx, a.id)
    assert [t.status for t in done] == ["succeeded"] * n
    assert first | second == {t.purchase_id for t in done}
    assert all(charges(pg_ctx, t.purchase_id) == 1 for t in done)
    assert all_charges(pg_ctx) == n
    assert a.available() == 80 + 10 * n
    assert topup_runner.run_pending(pg_ctx) == 0


def _wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + CHILD_TIMEOUT
    while not path.exists():
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"worker died before it was ready: {err}")
        assert time.monotonic() < deadline, "worker never became ready"
        time.sleep(0.01)


# Where the handler dies: right after the decision commits, in the gateway call
# before the charge exists, or after the gateway took the charge but before the
# purchase and top-up were completed.
_KILL_POINTS = {
    "after_decision": """
        from connects.domain.events import TopUpDecided
        ctx.bus.reactions[TopUpDecided] = (lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL),)
    """,
    "before_charge": """
        ctx.gateway.charge = lambda **kw: os.kill(os.getpid(), signal.SIGKILL)
    """,
    "after_charge": """
        real = ctx.gateway.charge
        def charge(**kw):
            real(**kw)
            os.kill(os.getpid(), signal.SIGKILL)
        ctx.gateway.charge = charge
    """,
}

_SPENDER = """
from connects.domain.commands import SubmitProposal
from connects.domain.policy import Actor
account_id, owner_id, job_id = sys.argv[3], sys.argv[4], sys.argv[5]
ctx.handle(SubmitProposal(
    Actor("user", owner_id), job_id=job_id, account_id=account_id,
    freelancer_id=owner_id, expected_connects=80,
))
print("survived")
"""


@pytest.mark.parametrize("kill_point", list(_KILL_POINTS))
def test_killed_between_decision_and_payment_finishes_once(
    pg_ctx: Context, clock: SimulatedClock, kill_point: str
) -> None:
    # R23: a process SIGKILLed between the decision and the payment leaves a pending
    # top-up; once its claim's lease has run out, run_pending finishes it with exactly
    # one charge and one credit.
    a = agency(pg_ctx)
    job_id = a.world.job(80)
    script = textwrap.dedent(_KILL_POINTS[kill_point]) + textwrap.dedent(_SPENDER)
    child = _spawn(script, pg_ctx, a.id, str(a.owner.id), job_id)
    out, err = child.communicate(timeout=CHILD_TIMEOUT)
    assert child.returncode == -9, (out, err)
    [t] = rows(pg_ctx, a.id)
    assert t.status == "pending"  # the decision committed with the spend
    assert a.available() == 0
    purchase_id = topup_runner.purchase_id_for(t.id)
    assert charges(pg_ctx, purchase_id) == (1 if kill_point == "after_charge" else 0)
    if kill_point != "after_decision":  # the killed executor had claimed it
        assert topup_runner.run_pending(pg_ctx) == 0
    clock.advance(topup_claims.LEASE)
    assert topup_runner.run_pending(pg_ctx) == 1
    [t] = rows(pg_ctx, a.id)
    assert (t.status, t.purchase_id) == ("succeeded", purchase_id)
    assert charges(pg_ctx, purchase_id) == 1
    assert all_charges(pg_ctx) == 1
    assert a.available() == 40
    with pg_ctx.db.read() as conn:
        assert conn.execute(select(func.count()).select_from(purchases)).scalar_one() == 1
        assert (
            conn.execute(
                select(func.count()).select_from(topups).where(topups.c.account_id == a.id)
            ).scalar_one()
            == 1
        )
    assert len(events_of(pg_ctx, a.id, "topup_succeeded")) == 1
    assert topup_runner.run_pending(pg_ctx) == 0
    assert all_charges(pg_ctx) == 1


def test_racing_recoveries_buy_once(pg_ctx: Context) -> None:
    # R41, R23: the grant comes back while 32 recoveries (the reaction, the due work,
    # settings saves, a second grant) race on one failed top-up: one retry, one charge.
    from connects.domain.commands import GrantPermissions, RevokeGrant, SetAutoTopUp
    from connects.domain.policy import PURCHASE_PERMISSION
    from connects.services import topup_recovery
    from connects.services import topups as svc

    a = agency(pg_ctx)
    [grant] = svc.list_grants(pg_ctx, a.owner, a.id)
    pg_ctx.handle(RevokeGrant(a.owner, a.id, grant["id"]))
    a.spend(80)
    [failed] = rows(pg_ctx, a.id)
    assert (failed.status, failed.reason) == ("failed", "grant_revoked")
    # The grant is back, but its own reaction is held back so the race below is the
    # only thing that can recover the top-up.
    reactions = dict(pg_ctx.bus.reactions)  # type: ignore[union-attr]
    from connects.domain.events import TopUpConditionsChanged

    pg_ctx.bus.reactions[TopUpConditionsChanged] = ()  # type: ignore[union-attr]
    pg_ctx.handle(GrantPermissions(a.owner, a.id, "topup-manager", [PURCHASE_PERMISSION]))
    pg_ctx.bus.reactions.update(reactions)  # type: ignore[union-attr]
    assert len(rows(pg_ctx, a.id)) == 1

    def work(i: int) -> Any:
        if i % 4 == 0:
            return topup_recovery.run_due(pg_ctx)
        if i % 4 == 1:
            return pg_ctx.handle(SetAutoTopUp(a.owner, a.id, {"per_month": 400}))
        if i % 4 == 2:
            return pg_ctx.handle(
                GrantPermissions(a.owner, a.id, "topup-manager", [PURCHASE_PERMISSION])
            )
        return topup_recovery.recover(pg_ctx, a.id)

    out = _race(32, work)
    assert not [r for r in out if isinstance(r, ConnectsError)], out
    done = rows(pg_ctx, a.id)
    assert [t.status for t in done] == ["failed", "succeeded"]
    assert done[1].trigger_key == f"retry:{failed.id}"
    assert charges(pg_ctx, done[1].purchase_id) == 1
    assert all_charges(pg_ctx) == 1
    assert a.available() == 40
    assert len(events_of(pg_ctx, a.id, "topup_succeeded")) == 1
    assert topup_recovery.recover(pg_ctx, a.id) is None
    assert topup_recovery.run_due(pg_ctx) == 0


def test_racing_resumes_and_card_changes_buy_once(pg_ctx: Context, clock: SimulatedClock) -> None:
    # R42, R41, R23: after three declines auto top-up is paused; owners resume it and
    # make a working card the default at once, from 24 threads: one purchase.
    from datetime import timedelta

    from connects.domain.commands import (
        AddBillingMethod,
        ResumeAutoTopUp,
        SetDefaultBillingMethod,
    )
    from connects.services import topup_recovery, views

    a = agency(pg_ctx, token="tok_chargeDeclined")
    a.spend(80)
    for hours in (1, 2):
        clock.advance(timedelta(hours=hours))
        topup_recovery.run_due(pg_ctx)
    assert [t.reason for t in rows(pg_ctx, a.id)] == ["payment_declined"] * 3
    pg_ctx.handle(AddBillingMethod(a.owner, a.id, "tok_visa"))
    visa = next(c for c in views.billing_methods(pg_ctx, a.owner, a.id) if not c["default"])

    def work(i: int) -> Any:
        if i % 3 == 0:
            return pg_ctx.handle(ResumeAutoTopUp(a.owner, a.id))
        if i % 3 == 1:
            return pg_ctx.handle(SetDefaultBillingMethod(a.owner, a.id, str(visa["id"])))
        return topup_recovery.run_due(pg_ctx)

    out = _race(24, work)
    assert not [r for r in out if isinstance(r, ConnectsError)], out
    done = rows(pg_ctx, a.id)
    assert [t.status for t in done] == ["failed"] * 3 + ["succeeded"]
    assert all_charges(pg_ctx) == 4  # three declines and the one purchase
    assert a.available() == 40
    assert len(events_of(pg_ctx, a.id, "topup_paused")) == 1
