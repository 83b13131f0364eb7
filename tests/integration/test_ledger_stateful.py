"""Random operations against the real services and a tiny reference model of lots.

The model knows only the rules (R8-R12, R14, R15, R34-R36): lots with an issue and
expiry date, spending soonest-expiring first, rollover above the cap, refunds into the
lots they came from, expired lots never counted; holds that keep Connects out of what
is available, and boosted proposals whose bids rank in their job's auction (top 4),
are captured on a client's view in the top 4 or at the close, released otherwise,
and come back with the price when the job is cancelled. After every step the engine's
available balance, held Connects, hold statuses and live lots must match the model,
and ``verify`` must find nothing (R30).
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
from sqlalchemy import case, func, select

from connects.bootstrap import build
from connects.config import Settings
from connects.db.schema import accounts, allocations, entries, holds, lots, purchases
from connects.domain.clock import SimulatedClock
from connects.domain.commands import (
    AddBillingMethod,
    BuyConnects,
    CreateUser,
    CreditEarnings,
    EndJob,
    OpenAccount,
    PostJob,
    RaiseBoost,
    RecordOutcome,
    SubmitProposal,
    WithdrawProposal,
)
from connects.domain.errors import AuctionClosed, InsufficientConnects
from connects.domain.policy import SYSTEM, Actor
from connects.services import boosts, cycles, views
from connects.services.verify import verify

START = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)
PLANS = {"agency": (80, 160), "free": (10, None)}  # monthly grant, rollover cap (R7)
BIDDERS = ("b1", "b2", "b3", "b4")  # more freelancers, so an auction has 6 bidders
AUCTION = timedelta(days=7)  # R35


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
    holds: dict[str, ModelBoost] = field(default_factory=dict)  # open, by proposal

    def held(self) -> int:
        return sum(h.bid for h in self.holds.values())

    def cut(self, now: datetime) -> list[str]:
        """R34: while more is held than is left, the newest holds are released."""
        cut = []
        for prop, hold in sorted(self.holds.items(), key=lambda kv: kv[1].placed, reverse=True):
            if self.held() <= self.available(now, holds=False):
                break
            hold.status = "released"
            del self.holds[prop]
            cut.append(prop)
        return cut

    def credit(self, source: str, amount: int, at: datetime) -> None:
        self.lots.append(ModelLot(len(self.lots), source, at, one_year(at), amount))

    def available(self, now: datetime, holds: bool = True) -> int:
        live = sum(lot.remaining for lot in self.lots if lot.live(now))
        return live - (self.held() if holds else 0)  # R34

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


@dataclass
class ModelBoost:
    """A proposal's bid (R35): its hold, rank key and what a capture took."""

    name: str
    job: str
    bid: int
    bid_at: datetime
    hold_id: str
    placed: tuple[datetime, str]
    status: str = "held"
    takes: list[tuple[int, int]] = field(default_factory=list)

    def key(self) -> tuple[int, datetime, str]:
        return (-self.bid, self.bid_at, self.hold_id)


@dataclass
class ModelJob:
    price: int
    posted: datetime
    props: list[str] = field(default_factory=list)
    closed: bool = False

    def open(self, now: datetime) -> bool:
        return not self.closed and now < self.posted + AUCTION


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
        for name in BIDDERS:
            uid = str(self.ctx.handle(CreateUser(name, f"{name}@test.connects"))["id"])
            self.person[name] = uid
            self.account[name] = self.ctx.handle(
                OpenAccount(uid, "freelancer", name, "freelancer-basic")
            )
        self.ctx.handle(CreditEarnings(self.account["agency"], 10**9))
        self.ctx.handle(AddBillingMethod(Actor("user", str(fay)), self.account["free"], "tok_visa"))
        self.model = {}
        for name in (*PLANS, *BIDDERS):
            monthly, cap = PLANS.get(name, PLANS["free"])
            model = ModelAccount(monthly, cap, START)
            model.cycle(START)
            model.next_cycle = next_month_15(START)
            self.model[name] = model
        self.jobs: dict[str, ModelJob] = {}  # open jobs
        self.props: dict[str, tuple[str, list[tuple[int, int]]]] = {}  # active ones
        self.boosts: dict[str, ModelBoost] = {}  # every boost, by proposal

    def teardown(self) -> None:
        self.ctx.db.dispose()
        shutil.rmtree(self.dir, ignore_errors=True)

    def now(self) -> datetime:
        return self.clock.now()

    # -- time ------------------------------------------------------------------------

    def _moved(self) -> None:
        """After time moves, sweep at once: held Connects that expired cut the newest
        holds, in the engine as in the model (R12, R34)."""
        cycles.sweep_expired(self.ctx)
        for model in self.model.values():
            model.cut(self.now())

    @rule(days=st.integers(1, 45))
    def advance(self, days: int) -> None:
        self.clock.advance(timedelta(days=days))
        self._moved()

    @rule(days=st.integers(300, 420))
    def leap(self, days: int) -> None:
        self.clock.advance(timedelta(days=days))  # R10, R12: past a year, lots expire
        self._moved()

    @rule()
    def to_next_expiry(self) -> None:
        """Stop exactly on the soonest lot's expiry: it is gone at that instant (R12)."""
        now = self.now()
        soonest = [lot.expires for m in self.model.values() for lot in m.lots if lot.live(now)]
        if soonest:
            self.clock.set(min(soonest))
            self._moved()

    @rule(n=st.integers(1, 4))
    def next_cycles(self, n: int) -> None:
        """Move to each of the next ``n`` cycle days and run them, as the worker would (R8)."""
        for _ in range(n):
            self.clock.set(max(self.now(), min(m.next_cycle for m in self.model.values())))
            self._moved()
            self.run_cycles()

    @rule()
    def run_cycles(self) -> None:
        expected = 0
        for model in self.model.values():
            while model.next_cycle <= self.now():
                model.cycle(model.next_cycle)
                model.next_cycle = next_month_15(model.next_cycle)
                expected += 1
                model.cut(self.now())  # R9 R34: rollover never leaves held above the balance
        assert cycles.run_due_cycles(self.ctx) == expected  # R8: each missed cycle once

    @rule()
    def sweep(self) -> None:
        cycles.sweep_expired(self.ctx)

    # -- spending and refunds --------------------------------------------------------

    def _submit(self, name: str, job: str, price: int, boost: int | None = None) -> None:
        model = self.model[name]
        now = self.now()
        try:
            out = self.ctx.handle(
                SubmitProposal(
                    Actor("user", self.person[name]),
                    job_id=job,
                    account_id=self.account[name],
                    freelancer_id=self.person[name],
                    expected_connects=price,
                    boost=boost,
                )
            )
        except InsufficientConnects:
            # R14 R35: refused, nothing taken: the price and the bid must be available
            assert model.available(now) < price + (boost or 0)
            return
        except AuctionClosed:
            assert boost and not self.jobs[job].open(now)
            return
        assert boost is None or self.jobs[job].open(now)
        assert model.available(now) >= price + (boost or 0)
        takes = model.take(price, now)
        prop = str(out["id"])
        self.props[prop] = (name, takes)
        self.jobs[job].props.append(prop)
        if boost:
            hold_id = out["boost"]["hold_id"]
            bid = ModelBoost(name, job, boost, now, hold_id, (now, hold_id))
            self.boosts[prop] = model.holds[prop] = bid

    @rule(name=st.sampled_from(["agency", "free"]), price=st.integers(0, 40))
    def submit(self, name: str, price: int) -> None:
        job = self.ctx.handle(PostJob(self.client, "job", price))
        self.jobs[job] = ModelJob(price, self.now())
        self._submit(name, job, price)

    @rule(price=st.integers(1, 12))
    def submit_both(self, price: int) -> None:
        job = self.ctx.handle(PostJob(self.client, "job", price))
        self.jobs[job] = ModelJob(price, self.now())
        self._submit("agency", job, price)
        self._submit("free", job, price)

    # -- boosts (R35, R36) -----------------------------------------------------------

    def _top(self, job: str) -> set[str]:
        bidding = [(b.key(), p) for p, b in self.boosts.items() if b.job == job]
        ranked = sorted(k for k in bidding if self.boosts[k[1]].status != "released")
        return {p for _, p in ranked[:4]}

    def _capture(self, prop: str) -> None:
        bid = self.boosts[prop]
        model = self.model[bid.name]
        del model.holds[prop]
        bid.takes = model.take(bid.bid, self.now())
        bid.status = "captured"

    def _release(self, prop: str) -> None:
        bid = self.boosts[prop]
        if bid.status == "held":
            del self.model[bid.name].holds[prop]
            bid.status = "released"

    @rule(
        price=st.integers(0, 6),
        bids=st.lists(st.integers(1, 8), min_size=1, max_size=6),
    )
    def boosted_job(self, price: int, bids: list[int]) -> None:
        job = self.ctx.handle(PostJob(self.client, "job", price))
        self.jobs[job] = ModelJob(price, self.now())
        for name, bid in zip(("free", *BIDDERS, "agency"), bids, strict=False):
            self._submit(name, job, price, boost=bid)

    @precondition(lambda self: any(b.status == "held" for b in self.boosts.values()))
    @rule(data=st.data(), more=st.integers(1, 5))
    def raise_bid(self, data: st.DataObject, more: int) -> None:
        prop = data.draw(
            st.sampled_from(sorted(p for p, b in self.boosts.items() if b.status == "held"))
        )
        bid = self.boosts[prop]
        model, now = self.model[bid.name], self.now()
        try:
            self.ctx.handle(RaiseBoost(Actor("user", self.person[bid.name]), prop, bid.bid + more))
        except AuctionClosed:
            assert not self.jobs[bid.job].open(now)
            return
        except InsufficientConnects:
            assert model.available(now) < more
            return
        assert self.jobs[bid.job].open(now) and model.available(now) >= more
        bid.bid += more
        bid.bid_at = now

    @precondition(
        lambda self: any(self.jobs[b.job].props for b in self.boosts.values() if b.job in self.jobs)
    )
    @rule(data=st.data(), decline=st.booleans())
    def client_looks(self, data: st.DataObject, decline: bool) -> None:
        """A view or a decline: in the top 4 of an open auction the bid is captured;
        a decline releases one that is not (R35, R36, R38)."""
        live = sorted(p for p, b in self.boosts.items() if b.job in self.jobs and p in self.props)
        if not live:
            return
        prop = data.draw(st.sampled_from(live))
        bid = self.boosts[prop]
        job = self.jobs[bid.job]
        top = self._top(bid.job)
        self.ctx.handle(RecordOutcome(self.client, prop, "declined" if decline else "viewed"))
        if bid.status == "held" and job.open(self.now()) and prop in top:
            self._capture(prop)
        elif decline:
            self._release(prop)
        if decline:
            self.props.pop(prop)  # declined: never refunded (R15)

    @precondition(lambda self: bool(self.jobs))
    @rule()
    def close_auctions(self) -> None:
        """The due work closes every auction past its deadline (R35)."""
        boosts.close_due(self.ctx)
        for job_id, job in self.jobs.items():
            if not job.closed and self.now() >= job.posted + AUCTION:
                self._close(job_id)

    def _close(self, job_id: str) -> None:
        top = self._top(job_id)
        for prop, bid in sorted(self.boosts.items()):
            if bid.job == job_id and bid.status == "held":
                if prop in top:
                    self._capture(prop)
                else:
                    self._release(prop)
        self.jobs[job_id].closed = True

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
        props = [p for p in self.jobs[job].props if p in self.props]
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
        returns = outcome in ("cancelled", "closed", "removed")
        if outcome == "hired":  # R35: the first hire closes the auction
            self._close(job)
        for prop in props:
            name, takes = self.props.pop(prop)
            bid = self.boosts.get(prop)
            if returns and bid is not None and bid.status == "captured":
                takes = takes + bid.takes  # R36: the captured bid comes back with the price
            if returns:  # R15
                for n, t in takes:
                    self.model[name].lots[n].remaining += t
                    self.model[name].lots[n].refunded += t
                    refunded += t
        for prop, bid in self.boosts.items():
            if bid.job == job:
                self._release(prop)  # R36: whatever is still held is released
        del self.jobs[job]
        assert out["refunded_connects"] == refunded

    @precondition(lambda self: bool(self.props))
    @rule(data=st.data())
    def withdraw(self, data: st.DataObject) -> None:
        prop = data.draw(st.sampled_from(sorted(self.props)))
        name, _ = self.props.pop(prop)
        self.ctx.handle(WithdrawProposal(Actor("user", self.person[name]), prop))  # R15: no refund
        if prop in self.boosts:
            self._release(prop)  # R36: a held bid is released, a captured one stays spent

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
                held = conn.execute(select(accounts.c.held).where(accounts.c.id == account_id))
                assert held.scalar_one() == model.held()  # R34
            statuses = dict(
                conn.execute(
                    select(holds.c.proposal_id, holds.c.status).where(
                        holds.c.proposal_id.in_(sorted(self.boosts))
                    )
                ).all()
            )
            assert statuses == {p: b.status for p, b in self.boosts.items()}  # R35 R36

    @invariant()
    def cost_is_kept(self) -> None:
        """R39: cost is made only by purchases and never lost: what the lots cost =
        the cost still in them + the cost spent (net of returns) + the cost expired or
        forfeited, each part never below zero."""
        signed = case(
            (entries.c.amount > 0, -allocations.c.cost_cents), else_=allocations.c.cost_cents
        )
        with self.ctx.db.read() as conn:
            for account_id in self.account.values():
                cost, left = conn.execute(
                    select(
                        func.coalesce(func.sum(lots.c.cost_cents), 0),
                        func.coalesce(func.sum(lots.c.cost_left_cents), 0),
                    ).where(lots.c.account_id == account_id)
                ).one()
                paid = conn.execute(
                    select(func.coalesce(func.sum(purchases.c.amount_cents), 0)).where(
                        purchases.c.account_id == account_id,
                        purchases.c.status == "succeeded",
                    )
                ).scalar_one()
                by_kind = dict(
                    conn.execute(
                        select(entries.c.kind, func.sum(signed))
                        .join(allocations, allocations.c.entry_id == entries.c.id)
                        .where(entries.c.account_id == account_id)
                        .group_by(entries.c.kind)
                    ).all()
                )
                spent = sum(by_kind.get(k, 0) for k in ("spend", "capture", "refund", "badge"))
                gone = sum(by_kind.get(k, 0) for k in ("expire", "rollover_forfeit"))
                assert cost == paid
                assert min(left, spent, gone) >= 0
                assert cost == left + spent + gone

    @invariant()
    def ledger_is_sound(self) -> None:
        assert verify(self.ctx) == []  # R30


TestLedgerMachine = LedgerMachine.TestCase
