"""Random operations against the real services and a tiny reference model of lots.

The model knows only the rules (R8-R12, R14, R15): lots with an issue and expiry date,
spending soonest-expiring first, rollover above the cap, refunds into the lots they
came from, expired lots never counted. After every step the engine's available
balance and live lots must match the model, and ``verify`` must find nothing (R30).
SQLite only, a fresh database per example, created inside the machine.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import select

from connects.bootstrap import build
from connects.config import Settings
from connects.db.schema import lots
from connects.domain.clock import SimulatedClock
from connects.domain.commands import (
    AddBillingMethod,
    BuyConnects,
    CreateUser,
    CreditEarnings,
    EndJob,
    OpenAccount,
    PostJob,
    SubmitProposal,
    WithdrawProposal,
)
from connects.domain.errors import InsufficientConnects
from connects.domain.policy import SYSTEM, Actor
from connects.services import cycles, views
from connects.services.verify import verify

START = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
PLANS = {"agency": (80, 160), "free": (10, None)}  # monthly grant, rollover cap (R7)


def one_year(moment: datetime) -> datetime:
    """R10, written out independently of the engine."""
    try:
        return moment.replace(year=moment.year + 1)
    except ValueError:
        return moment.replace(year=moment.year + 1, day=28)


def next_month_15(moment: datetime) -> datetime:
    """The next cycle day (the 15th, midnight UTC) strictly after ``moment`` (R8)."""
    candidate = moment.replace(day=15, hour=0, minute=0, second=0, microsecond=0)
    while candidate <= moment:
        year, month = divmod(candidate.year * 12 + candidate.month, 12)
        candidate = candidate.replace(year=year, month=month + 1)
    return candidate


@dataclass
class ModelLot:
    n: int  # creation order
    source: str
    issued: datetime
    expires: datetime
    remaining: int
    refunded: int = 0  # Connects refunded into this lot (R15)

    def live(self, now: datetime) -> bool:
        return self.remaining > 0 and self.expires > now  # R12


@dataclass
class ModelAccount:
    monthly: int
    cap: int | None
    next_cycle: datetime
    lots: list[ModelLot] = field(default_factory=list)

    def credit(self, source: str, amount: int, at: datetime) -> None:
        self.lots.append(ModelLot(len(self.lots), source, at, one_year(at), amount))

    def available(self, now: datetime) -> int:
        return sum(lot.remaining for lot in self.lots if lot.live(now))

    def take(self, amount: int, now: datetime) -> list[tuple[int, int]]:
        """Soonest expiry, then oldest (R11)."""
        order = sorted(
            (lot for lot in self.lots if lot.live(now)),
            key=lambda lot: (lot.expires, lot.issued, lot.n),
        )
        takes = []
        for lot in order:
            if amount == 0:
                break
            t = min(amount, lot.remaining)
            lot.remaining -= t
            amount -= t
            takes.append((lot.n, t))
        assert amount == 0
        return takes

    def cycle(self, at: datetime) -> None:
        """Rollover of plan grants above the cap (R9), then the grant (R8).

        Refunded Connects sit in grant lots but are neither counted nor cut (R9, R15).
        """
        if self.cap is not None:
            grants = sorted(
                (lot for lot in self.lots if lot.source == "grant" and lot.live(at)),
                key=lambda lot: (lot.expires, lot.issued, lot.n),
            )
            free = {lot.n: lot.remaining - min(lot.remaining, lot.refunded) for lot in grants}
            excess = sum(free.values()) - self.cap
            for lot in grants:
                if excess <= 0:
                    break
                cut = min(excess, free[lot.n])
                lot.remaining -= cut
                excess -= cut
        if self.monthly:
            self.credit("grant", self.monthly, at)

    def live_lots(self, now: datetime) -> list[tuple[str, datetime, datetime, int]]:
        return sorted(
            (lot.source, lot.issued, lot.expires, lot.remaining)
            for lot in self.lots
            if lot.live(now)
        )


@settings(
    max_examples=25,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="connects-stateful-")
        self.clock = SimulatedClock(START)
        self.ctx = build(
            Settings(database_url=f"sqlite:///{self.dir}/ledger.db"),
            clock=self.clock,
            migrate=True,
        )
        olga = self.ctx.handle(CreateUser("Olga", "olga@test.connects"))["id"]
        fay = self.ctx.handle(CreateUser("Fay", "fay@test.connects"))["id"]
        self.client = str(self.ctx.handle(CreateUser("Client", "client@test.connects"))["id"])
        self.person = {"agency": str(olga), "free": str(fay)}
        self.account = {
            "agency": self.ctx.handle(OpenAccount(str(olga), "agency", "A", "agency-plus")),
            "free": self.ctx.handle(OpenAccount(str(fay), "freelancer", "F", "freelancer-basic")),
        }
        self.ctx.handle(CreditEarnings(self.account["agency"], 10**9))
        self.ctx.handle(AddBillingMethod(Actor("user", str(fay)), self.account["free"], "tok_visa"))
        self.model = {}
        for name, (monthly, cap) in PLANS.items():
            model = ModelAccount(monthly, cap, START)
            model.cycle(START)
            model.next_cycle = next_month_15(START)
            self.model[name] = model
        self.jobs: dict[str, list[str]] = {}  # open job -> its proposals
        self.props: dict[str, tuple[str, list[tuple[int, int]]]] = {}  # active ones

    def teardown(self) -> None:
        self.ctx.db.dispose()
        shutil.rmtree(self.dir, ignore_errors=True)

    def now(self) -> datetime:
        return self.clock.now()

    # -- time ------------------------------------------------------------------------

    @rule(days=st.integers(1, 45))
    def advance(self, days: int) -> None:
        self.clock.advance(timedelta(days=days))

    @rule(days=st.integers(300, 420))
    def leap(self, days: int) -> None:
        self.clock.advance(timedelta(days=days))  # R10, R12: past a year, lots expire

    @rule()
    def to_next_expiry(self) -> None:
        """Stop exactly on the soonest lot's expiry: it is gone at that instant (R12)."""
        now = self.now()
        soonest = [lot.expires for m in self.model.values() for lot in m.lots if lot.live(now)]
        if soonest:
            self.clock.set(min(soonest))

    @rule(n=st.integers(1, 4))
    def next_cycles(self, n: int) -> None:
        """Move to each of the next ``n`` cycle days and run them, as the worker would (R8)."""
        for _ in range(n):
            self.clock.set(max(self.now(), min(m.next_cycle for m in self.model.values())))
            self.run_cycles()

    @rule()
    def run_cycles(self) -> None:
        expected = 0
        for model in self.model.values():
            while model.next_cycle <= self.now():
                model.cycle(model.next_cycle)
                model.next_cycle = next_month_15(model.next_cycle)
                expected += 1
        assert cycles.run_due_cycles(self.ctx) == expected  # R8: each missed cycle once

    @rule()
    def sweep(self) -> None:
        cycles.sweep_expired(self.ctx)

    # -- spending and refunds --------------------------------------------------------

    def _submit(self, name: str, job: str, price: int) -> None:
        model = self.model[name]
        try:
            out = self.ctx.handle(
                SubmitProposal(
                    Actor("user", self.person[name]),
                    job_id=job,
                    account_id=self.account[name],
                    freelancer_id=self.person[name],
                    expected_connects=price,
                )
            )
        except InsufficientConnects:
            assert model.available(self.now()) < price  # R14: refused, nothing taken
            return
        takes = model.take(price, self.now())
        self.props[str(out["id"])] = (name, takes)
        self.jobs[job].append(str(out["id"]))

    @rule(name=st.sampled_from(["agency", "free"]), price=st.integers(0, 40))
    def submit(self, name: str, price: int) -> None:
        job = self.ctx.handle(PostJob(self.client, "job", price))
        self.jobs[job] = []
        self._submit(name, job, price)

    @rule(price=st.integers(1, 12))
    def submit_both(self, price: int) -> None:
        job = self.ctx.handle(PostJob(self.client, "job", price))
        self.jobs[job] = []
        self._submit("agency", job, price)
        self._submit("free", job, price)

    @rule(name=st.sampled_from(["agency", "free"]), quantity=st.integers(1, 60))
    def buy(self, name: str, quantity: int) -> None:
        pay_with = "earnings" if name == "agency" else "default"
        out = self.ctx.handle(
            BuyConnects(Actor("user", self.person[name]), self.account[name], quantity, pay_with)
        )
        assert out["status"] == "succeeded"
        self.model[name].credit("purchase", quantity, self.now())

    @precondition(lambda self: bool(self.jobs))
    @rule(
        data=st.data(),
        outcome=st.sampled_from(["cancelled", "closed", "removed", "expired", "hired"]),
    )
    def end_job(self, data: st.DataObject, outcome: str) -> None:
        job = data.draw(st.sampled_from(sorted(self.jobs)))
        props = [p for p in self.jobs.pop(job) if p in self.props]
        hired = None
        if outcome == "hired":
            if not props:
                outcome = "closed"
            else:
                hired = data.draw(st.sampled_from(props))
        actor = SYSTEM if outcome in ("removed", "expired") else Actor("user", self.client)
        out = self.ctx.handle(
            EndJob(actor, job, "closed" if hired else outcome, hired_proposal_id=hired)
        )
        refunded = 0
        for prop in props:
            name, takes = self.props.pop(prop)
            if outcome in ("cancelled", "closed", "removed"):  # R15
                for n, t in takes:
                    self.model[name].lots[n].remaining += t
                    self.model[name].lots[n].refunded += t
                    refunded += t
        assert out["refunded_connects"] == refunded

    @precondition(lambda self: bool(self.props))
    @rule(data=st.data())
    def withdraw(self, data: st.DataObject) -> None:
        prop = data.draw(st.sampled_from(sorted(self.props)))
        name, _ = self.props.pop(prop)
        self.ctx.handle(WithdrawProposal(Actor("user", self.person[name]), prop))  # R15: no refund

    # -- the checks ------------------------------------------------------------------

    @invariant()
    def agrees_with_the_model(self) -> None:
        now = self.now()
        with self.ctx.db.read() as conn:
            for name, account_id in self.account.items():
                model = self.model[name]
                assert views.available(conn, account_id, now) == model.available(now)  # R12
                rows = conn.execute(
                    select(
                        lots.c.source, lots.c.issued_at, lots.c.expires_at, lots.c.remaining
                    ).where(
                        lots.c.account_id == account_id,
                        lots.c.remaining > 0,
                        lots.c.expires_at > now,
                    )
                ).all()
                assert sorted(tuple(r) for r in rows) == model.live_lots(now)  # R9, R11, R15

    @invariant()
    def ledger_is_sound(self) -> None:
        assert verify(self.ctx) == []  # R30


TestLedgerMachine = LedgerMachine.TestCase
