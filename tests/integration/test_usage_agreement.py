"""Random histories of an agency, checked after every step: the budget check and every
view count the same Connects (R4, R12, R26).

Members with and without budgets submit proposals; jobs end with and without refunds
across month boundaries; the account changes time zone; the clock moves by hours,
days, to a month's edge in the account's zone, and past a lot's year. A tiny model
keeps each proposal (who, price, when, refunded or not) and states the rule in plain
Python: a proposal's Connects count in the calendar month, in the account's zone, it
was submitted, net of its refund (R4, R26). Enforcement
(:func:`~connects.services.proposal_asks.member_spent_this_month`), the members list and
the overview must all give the model's figure, and the overview's available and
expiring must be the domain's rules over the account's open lots (R12). SQLite only,
a fresh copy of one migrated database per example.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from connects.bootstrap import build
from connects.config import Settings
from connects.domain import lots as lotrules
from connects.domain.clock import SimulatedClock
from connects.domain.commands import (
    BuyConnects,
    CreateUser,
    CreditEarnings,
    EndJob,
    OpenAccount,
    PostJob,
    SetBudget,
    SubmitProposal,
    UpdateAccount,
    WithdrawProposal,
)
from connects.domain.errors import InsufficientConnects, MemberBudgetExceeded
from connects.domain.policy import SYSTEM, Actor
from connects.services import cycles, views
from connects.services.book import AccountBook
from connects.services.proposal_asks import member_spent_this_month
from tests.world import add_member

START = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
ZONES = ["UTC", "Pacific/Auckland", "America/Los_Angeles", "Asia/Kolkata"]
MEMBERS = ["olga", "mia", "max"]  # olga owns the agency; mia and max are members
BUDGETS = {"olga": None, "mia": 10, "max": 25}
REFUNDING = ["cancelled", "closed", "removed"]  # job ends that refund (R15)


def month_start(now: datetime, tz: str) -> datetime:
    """The start of ``now``'s calendar month in ``tz``, written out apart from the engine."""
    local = now.astimezone(ZoneInfo(tz))
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def next_month_start(now: datetime, tz: str) -> datetime:
    local = now.astimezone(ZoneInfo(tz))
    year, month = divmod(local.year * 12 + local.month, 12)  # month is 0-based here
    first = datetime(year, month + 1, 1, tzinfo=ZoneInfo(tz))
    return first.astimezone(UTC)


@functools.cache
def migrated() -> str:
    """An empty database at the head revision, migrated once and copied per example:
    migrating is most of an example's time."""
    folder = tempfile.mkdtemp(prefix="connects-usage-template-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = f"{folder}/template.db"
    build(Settings(database_url=f"sqlite:///{path}"), migrate=True).db.dispose()
    return path


@dataclass
class ModelProposal:
    id: str
    member: str
    price: int
    job: str
    at: datetime
    active: bool = True  # not withdrawn, hired or refunded: a refunding end refunds it
    refunded: bool = False


@settings(
    max_examples=25,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
class UsageMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.mkdtemp(prefix="connects-usage-")
        self.clock = SimulatedClock(START)
        path = f"{self.dir}/usage.db"
        with sqlite3.connect(migrated()) as template, sqlite3.connect(path) as fresh:
            template.backup(fresh)
        self.ctx = build(Settings(database_url=f"sqlite:///{path}"), clock=self.clock)
        self.ids = {
            name: str(self.ctx.handle(CreateUser(name.title(), f"{name}@test.connects"))["id"])
            for name in [*MEMBERS, "client"]
        }
        self.owner = Actor("user", self.ids["olga"])
        self.account = self.ctx.handle(OpenAccount(self.ids["olga"], "agency", "A", "agency-plus"))
        for name in MEMBERS[1:]:
            add_member(self.ctx, self.owner, self.account, self.ids[name], "member")
        self.budget: dict[str, int | None] = dict(BUDGETS)
        for name, budget in self.budget.items():
            if budget is not None:
                self.ctx.handle(SetBudget(self.owner, self.account, self.ids[name], budget))
        self.ctx.handle(CreditEarnings(self.account, 10**9))
        self.tz = "UTC"
        self.props: list[ModelProposal] = []
        self.open_jobs: list[str] = []

    def teardown(self) -> None:
        self.ctx.db.dispose()
        shutil.rmtree(self.dir, ignore_errors=True)

    def now(self) -> datetime:
        return self.clock.now()

    def used(self, member: str | None = None) -> int:
        """The rule (R4, R26): proposals submitted this month, net of their refunds."""
        since = month_start(self.now(), self.tz)
        return sum(
            p.price
            for p in self.props
            if p.at >= since and not p.refunded and member in (None, p.member)
        )

    # -- time and the account's zone -------------------------------------------------

    @rule(
        move=st.one_of(
            st.tuples(st.just("hours"), st.integers(1, 72)),
            st.tuples(st.just("days"), st.integers(1, 40)),
            st.tuples(st.just("edge"), st.integers(-90, 90)),  # minutes either side
            st.tuples(st.just("month"), st.integers(0, 27)),  # days into the next month
            st.tuples(st.just("leap"), st.integers(330, 400)),  # days: lots near their year
        )
    )
    def move_clock(self, move: tuple[str, int]) -> None:
        """By hours or days, close to the next month's start in the account's zone
        (R26), into the next month, or near and past the lots' year (R10, R12); never
        backwards."""
        how, n = move
        if how in ("edge", "month"):
            step = timedelta(minutes=n) if how == "edge" else timedelta(days=n, hours=9)
            edge = next_month_start(self.now(), self.tz) + step
            self.clock.set(max(self.now() + timedelta(minutes=1), edge))
        else:
            self.clock.advance(timedelta(hours=n) if how == "hours" else timedelta(days=n))

    @rule(tz=st.sampled_from(ZONES))
    def change_zone(self, tz: str) -> None:
        self.ctx.handle(UpdateAccount(self.owner, self.account, timezone=tz))
        self.tz = tz

    @rule()
    def worker(self) -> None:
        """The worker's round: due cycles (R8), then the expiry sweep (R12)."""
        cycles.run_due_cycles(self.ctx)
        cycles.sweep_expired(self.ctx)

    @rule(quantity=st.integers(10, 80))
    def buy(self, quantity: int) -> None:
        self.ctx.handle(BuyConnects(self.owner, self.account, quantity, "earnings"))

    @rule(name=st.sampled_from(MEMBERS[1:]), budget=st.none() | st.integers(0, 30))
    def set_budget(self, name: str, budget: int | None) -> None:
        self.ctx.handle(SetBudget(self.owner, self.account, self.ids[name], budget))
        self.budget[name] = budget

    # -- proposals and how jobs end --------------------------------------------------

    def _submit(self, name: str, job: str, price: int) -> bool:
        """Submit as ``name`` and check the answer against the rules; True if it landed."""
        spent = self.used(name)
        budget = self.budget[name]
        with self.ctx.db.read() as conn:
            available = views.available(conn, self.account, self.now())
        try:
            out = self.ctx.handle(
                SubmitProposal(
                    Actor("user", self.ids[name]),
                    job_id=job,
                    account_id=self.account,
                    freelancer_id=self.ids[name],
                    expected_connects=price,
                )
            )
        except MemberBudgetExceeded as refusal:
            # R4: refused exactly when this proposal would take the member past it.
            assert budget is not None and spent + price > budget
            assert refusal.details["spent_this_month"] == spent
            return False
        except InsufficientConnects:
            assert available < price  # R14, after the budget
            assert budget is None or spent + price <= budget
            return False
        assert budget is None or spent + price <= budget
        self.props.append(ModelProposal(str(out["id"]), name, price, job, self.now()))
        return True

    @rule(name=st.sampled_from(MEMBERS), price=st.integers(0, 12))
    def submit(self, name: str, price: int) -> None:
        job = self.ctx.handle(PostJob(self.ids["client"], "job", price))
        if self._submit(name, job, price):
            self.open_jobs.append(job)  # a job nobody applied to has nothing to refund

    @initialize(prices=st.lists(st.integers(1, 8), min_size=1, max_size=3))
    def first_proposals(self, prices: list[int]) -> None:
        """Some use in the first month, for refunds in later ones to meet."""
        for price in prices:
            self.submit_all(price)

    @rule(price=st.integers(1, 8))
    def submit_all(self, price: int) -> None:
        """Every member on one job: a refund then gives several members theirs back."""
        job = self.ctx.handle(PostJob(self.ids["client"], "job", price))
        landed = [self._submit(name, job, price) for name in MEMBERS]
        if any(landed):
            self.open_jobs.append(job)

    @precondition(lambda self: bool(self.open_jobs))
    @rule(data=st.data(), outcome=st.sampled_from([*REFUNDING, "expired", "hired"]))
    def end_job(self, data: st.DataObject, outcome: str) -> None:
        self._end(data, data.draw(st.sampled_from(self.open_jobs)), outcome)

    @precondition(lambda self: bool(self.open_jobs))
    @rule(data=st.data(), outcome=st.sampled_from(REFUNDING))
    def refund_oldest_job(self, data: st.DataObject, outcome: str) -> None:
        """The oldest open job ends with refunds: often a proposal of an earlier month."""
        self._end(data, self.open_jobs[0], outcome)

    def _end(self, data: st.DataObject, job: str, outcome: str) -> None:
        self.open_jobs.remove(job)
        active = [p for p in self.props if p.job == job and p.active]
        hired = None
        if outcome == "hired":
            if not active:
                outcome = "closed"
            else:
                hired = data.draw(st.sampled_from(active))
        actor = SYSTEM if outcome in ("removed", "expired") else Actor("user", self.ids["client"])
        out = self.ctx.handle(
            EndJob(
                actor,
                job,
                "closed" if hired else outcome,
                hired_proposal_id=hired.id if hired else None,
            )
        )
        refunded = 0
        for p in active:
            p.active = False
            if outcome in REFUNDING:  # R15
                p.refunded = True
                refunded += p.price
        assert out["refunded_connects"] == refunded

    @precondition(lambda self: any(p.active for p in self.props))
    @rule(data=st.data())
    def withdraw(self, data: st.DataObject) -> None:
        p = data.draw(st.sampled_from([p for p in self.props if p.active]))
        self.ctx.handle(WithdrawProposal(Actor("user", self.ids[p.member]), p.id))
        p.active = False  # R15: no refund, still this month's use

    # -- the checks ------------------------------------------------------------------

    @invariant()
    def enforcement_and_views_agree(self) -> None:
        now = self.now()
        listed = {m["user_id"]: m for m in views.members(self.ctx, self.owner, self.account)}
        over = views.overview(self.ctx, self.owner, self.account)
        soon = views.expiring(self.ctx, self.owner, self.account)
        with self.ctx.db.begin() as conn:  # the lock the budget check reads under
            book = AccountBook.lock(conn, self.account, now)
            enforced = {
                name: member_spent_this_month(conn, book, self.ids[name]) for name in MEMBERS
            }
            open_lots = book.open_lots()
            available = views.available(conn, self.account, now)
        for name in MEMBERS:
            expected = self.used(name)
            assert expected >= 0
            assert enforced[name] == expected  # R4: what the budget check counts
            assert listed[self.ids[name]]["spent_this_month"] == expected  # R4
            assert listed[self.ids[name]]["monthly_budget"] == self.budget[name]
        assert over["used_this_month"] == sum(enforced.values()) == self.used()  # R26
        assert over["used_this_month"] >= 0
        assert over["month_starts_at"] == month_start(now, self.tz)  # R26
        assert available == lotrules.available(open_lots, now) == over["available"]  # R12
        expiring = lotrules.expiring_soon(open_lots, now)  # R12
        assert over["expiring_30d"] == sum(lot.remaining for lot in expiring)
        assert soon["within_30d"] == over["expiring_30d"]
        assert [lot["id"] for lot in soon["lots"]] == [lot.id for lot in expiring]


# R4 # R12 # R26
TestUsageMachine = UsageMachine.TestCase
