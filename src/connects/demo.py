"""Demo data: an agency and a freelancer living through months of Connects.

The accounts open a year and a fortnight before the real time (:func:`opening`), live
quietly through their monthly cycles (grants, rollover forfeits above the cap), then the
last ``months`` are played day by day: proposals, some boosted, interviews, views,
hires, price changes, purchases, auto top-up with a declined card, the year-old lots
expiring, and it stops at the real time in the middle of a cycle. Afterwards the
product runs on the real clock with that history behind it. Everything goes through
the same handlers the API uses.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from connects.config import Settings
from connects.db.schema import jobs
from connects.domain.clock import SimulatedClock
from connects.domain.commands import (
    AcceptInvitation,
    AddBillingMethod,
    BuyConnects,
    ChangeJobPrice,
    CreateUser,
    CreditEarnings,
    EndJob,
    GrantPermissions,
    InviteMember,
    OpenAccount,
    PostJob,
    RecordOutcome,
    SetAutoTopUp,
    SetBudget,
    SetDefaultBillingMethod,
    StartInterview,
    SubmitProposal,
)
from connects.domain.errors import ConnectsError
from connects.domain.policy import PURCHASE_PERMISSION, Actor
from connects.domain.topup import TOPUP_MANAGER_ID
from connects.services import boosts, cycles, views
from connects.services.context import Context

DEMO_OWNER_EMAIL = "owner@demo.connects"
QUIET_DAYS = 380  # before the story: a year and a fortnight, so lots expire mid-story
# R7's plans with an interview reward (R16), so the demo shows rewarded Connects.
DEMO_PLANS_FILE = Path(__file__).with_name("demo_plans.toml")


def demo_settings(settings: Settings) -> Settings:
    """The settings the demo plays and is served with: the demo's plan catalog, unless
    the operator names one (``CONNECTS_PLANS_FILE``)."""
    if settings.plans_file is not None:
        return settings
    return settings.model_copy(update={"plans_file": DEMO_PLANS_FILE})


def opening(end: datetime, months: int) -> datetime:
    """When the demo's accounts open: the simulated clock starts here."""
    return end - timedelta(days=months * 30 + QUIET_DAYS)


@dataclass
class DemoCast:
    owner: dict[str, str]
    people: dict[str, dict[str, str]] = field(default_factory=dict)
    agency_id: str = ""
    freelancer_account_id: str = ""
    client: dict[str, str] = field(default_factory=dict)
    card_id: str = ""


def _person(ctx: Context, name: str, email: str) -> dict[str, str]:
    return {k: str(v) for k, v in ctx.handle(CreateUser(name, email)).items()}


def cast(ctx: Context) -> DemoCast:
    """The people: an agency with every role, a freelancer, a client."""
    owner = _person(ctx, "Olga Owner", DEMO_OWNER_EMAIL)
    c = DemoCast(owner=owner)
    for key, name, role in [
        ("admin", "Ada Admin", "admin"),
        ("manager", "Max Manager", "manager"),
        ("mia", "Mia Member", "member"),
        ("noah", "Noah Member", "member"),
    ]:
        c.people[key] = {**_person(ctx, name, f"{key}@demo.connects"), "role": role}
    c.client = _person(ctx, "Chloe Client", "client@demo.connects")
    c.agency_id = ctx.handle(OpenAccount(owner["id"], "agency", "Northwind Studio", "agency-plus"))
    boss = Actor("user", owner["id"])
    for p in c.people.values():
        invitation = ctx.handle(InviteMember(boss, c.agency_id, p["id"], p["role"]))
        ctx.handle(AcceptInvitation(p["id"], str(invitation["id"])))  # R49: by consent
    ctx.handle(SetBudget(boss, c.agency_id, c.people["noah"]["id"], 60))
    c.freelancer_account_id = ctx.handle(
        OpenAccount(c.people["mia"]["id"], "freelancer", "Mia (freelance)", "freelancer-plus")
    )
    # Noah's own account, hardly used: its year-old Connects expire during the story.
    ctx.handle(OpenAccount(c.people["noah"]["id"], "freelancer", "Noah (solo)", "freelancer-basic"))
    c.card_id = str(ctx.handle(AddBillingMethod(boss, c.agency_id, "tok_visa"))["id"])
    ctx.handle(CreditEarnings(c.agency_id, 50_000))
    # Seed 000's three steps: the top-up manager may buy, auto top-up on, its limits.
    ctx.handle(GrantPermissions(boss, c.agency_id, TOPUP_MANAGER_ID, [PURCHASE_PERMISSION]))
    limits = {"enabled": True, "threshold": 15, "per_topup": 40, "per_month": 240}
    ctx.handle(SetAutoTopUp(boss, c.agency_id, limits))
    return c


def _card_trouble(ctx: Context, c: DemoCast, day: int, days: int) -> None:
    """A week before the end the admin makes a new card the default, which the bank
    declines, and raises the threshold above the balance: the top-up that follows is
    declined and auto top-up says it cannot buy (R40, R42). Two days later the owner
    makes the old card the default again, and the top-up that could not be done buys,
    once (R41); then she sets the threshold back."""
    admin = Actor("user", c.people["admin"]["id"])
    boss = Actor("user", c.owner["id"])
    if day == days - 8:
        declined = ctx.handle(AddBillingMethod(admin, c.agency_id, "tok_chargeDeclined"))
        ctx.handle(SetDefaultBillingMethod(admin, c.agency_id, str(declined["id"])))
        with ctx.db.read() as conn:
            balance = views.available(conn, c.agency_id, ctx.now())
        ctx.handle(SetAutoTopUp(admin, c.agency_id, {"threshold": balance + 5}))
    elif day == days - 6:
        ctx.handle(SetDefaultBillingMethod(boss, c.agency_id, c.card_id))
        ctx.handle(SetAutoTopUp(boss, c.agency_id, {"threshold": 15}))


# Refusals (price changed, out of Connects, over budget) are part of a realistic month:
# the story shrugs them off as a person would.


def play(
    ctx: Context,
    clock: SimulatedClock,
    months: int = 3,
    *,
    seed: int = 7,
    until: datetime | None = None,
    on_day: Callable[[int, int], None] | None = None,
) -> DemoCast:
    """Open the accounts at :func:`opening` (the clock must be there or before), let
    their cycles run quietly, then play the last ``months`` day by day up to ``until``."""
    rng = random.Random(seed)
    end = until or datetime.now(UTC)
    days = months * 30
    clock.set(max(clock.now(), opening(end, months)))
    c = cast(ctx)
    story = end - timedelta(days=days)
    while clock.now() < story:  # the quiet months: grants, forfeits above the cap (R8, R9)
        clock.set(min(clock.now() + timedelta(days=10), story))
        cycles.run_due_cycles(ctx)
        cycles.sweep_expired(ctx)
    boss = Actor("user", c.owner["id"])
    client = Actor("user", c.client["id"])
    submitters = [c.people[k]["id"] for k in ("mia", "noah", "manager")] + [c.owner["id"]]
    open_jobs: list[str] = []
    sent: dict[str, list[str]] = {}  # job -> its proposals
    for day in range(days):
        for _ in range(rng.randint(1, 4)):
            price = rng.choice([2, 4, 6, 8, 10, 12, 16])
            open_jobs.append(ctx.handle(PostJob(c.client["id"], _title(rng), price)))
        for _ in range(rng.randint(0, 3)):
            if not open_jobs:
                break
            job_id = rng.choice(open_jobs)
            who = rng.choice(submitters)
            account_id = c.agency_id
            if who == c.people["mia"]["id"] and rng.random() < 0.3:
                account_id = c.freelancer_account_id
            boost = (
                rng.choice([2, 3, 5, 8])
                if account_id == c.agency_id and rng.random() < 0.3
                else None
            )
            with suppress(ConnectsError):
                proposal_id = _submit(ctx, who, job_id, account_id, boost)
                sent.setdefault(job_id, []).append(proposal_id)
                if rng.random() < 0.25:  # the client reads some (R38), capturing top bids
                    ctx.handle(RecordOutcome(c.client["id"], proposal_id, "viewed"))
                if rng.random() < 0.12:  # and interviews some (R16)
                    ctx.handle(StartInterview(c.client["id"], proposal_id))
        if open_jobs and rng.random() < 0.2:
            answered = [i for i, j in enumerate(open_jobs) if sent.get(j)]
            pick = rng.choice(answered) if answered and rng.random() < 0.7 else None
            job_id = open_jobs.pop(rng.randrange(len(open_jobs)) if pick is None else pick)
            outcome = rng.choice(["cancelled", "closed", "closed", "expired"])
            actor = client if outcome != "expired" else Actor("system")
            hired = rng.choice(sent[job_id]) if outcome == "closed" and sent.get(job_id) else None
            with suppress(ConnectsError):
                ctx.handle(EndJob(actor, job_id, outcome, hired_proposal_id=hired))
        if open_jobs and rng.random() < 0.1:
            with suppress(ConnectsError):
                ctx.handle(
                    ChangeJobPrice(c.client["id"], rng.choice(open_jobs), rng.choice([4, 8, 12]))
                )
        if day % 9 == 4:
            with suppress(ConnectsError):
                ctx.handle(BuyConnects(boss, c.agency_id, rng.choice([20, 40]), "default"))
        _card_trouble(ctx, c, day, days)
        if len(open_jobs) > 25:
            open_jobs = open_jobs[-25:]
        clock.set(max(clock.now(), end - timedelta(days=days - day - 1)))
        cycles.run_due_cycles(ctx)
        cycles.sweep_expired(ctx)
        boosts.close_due(ctx)  # auctions 7 days after posting (R35)
        if on_day:
            on_day(day + 1, days)
    return c


def _submit(ctx: Context, who: str, job_id: str, account_id: str, boost: int | None) -> str:
    with ctx.db.read() as conn:
        price = conn.execute(select(jobs.c.connects_required).where(jobs.c.id == job_id)).scalar()
    made = ctx.handle(
        SubmitProposal(
            Actor("user", who),
            job_id=job_id,
            account_id=account_id,
            freelancer_id=who,
            expected_connects=int(price or 0),
            boost=boost,
        )
    )
    return str(made["id"])


# What the demo's client posts, each with its article ("an API", never "a API").
JOB_VERBS = ["Build", "Fix", "Design", "Review"]
JOB_OBJECTS = [
    "a Shopify store",
    "a React app",
    "a Django site",
    "a logo",
    "a data pipeline",
    "a mobile app",
    "a landing page",
    "an SEO strategy",
    "an API",
    "a dashboard",
    "a WordPress site",
    "a newsletter",
]


def _title(rng: random.Random) -> str:
    return f"{rng.choice(JOB_VERBS)} {rng.choice(JOB_OBJECTS)}"


def demo_exists(settings: Settings, email: str = DEMO_OWNER_EMAIL) -> bool:
    """Whether the database holds the demo already (its owner's address)."""
    from connects.bootstrap import build
    from connects.db.migrate import current_heads
    from connects.db.schema import users

    if not current_heads(settings.database_url):
        return False
    ctx = build(settings)
    with ctx.db.read() as conn:
        found = conn.execute(select(users.c.id).where(users.c.email == email)).first()
    ctx.db.dispose()
    return found is not None


def erase(database_url: str) -> None:
    """Drop every table of the database (``connects demo --reset``; the CLI refuses it
    in production mode)."""
    from sqlalchemy import MetaData, create_engine

    engine = create_engine(database_url)
    try:
        found = MetaData()
        found.reflect(engine)
        found.drop_all(engine)
    finally:
        engine.dispose()
