"""Demo data: an agency and a freelancer living through months of Connects.

The story is played on a simulated clock that starts ``months`` ago and stops at the
real time, so that afterwards the product runs on the real clock with a history behind
it. Everything goes through the same handlers the API uses.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

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
    InviteMember,
    OpenAccount,
    PostJob,
    SetBudget,
    SubmitProposal,
)
from connects.domain.errors import ConnectsError
from connects.domain.policy import Actor
from connects.services import cycles
from connects.services.context import Context

DEMO_OWNER_EMAIL = "owner@demo.connects"


@dataclass
class DemoCast:
    owner: dict[str, str]
    people: dict[str, dict[str, str]] = field(default_factory=dict)
    agency_id: str = ""
    freelancer_account_id: str = ""
    client: dict[str, str] = field(default_factory=dict)


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
    ctx.handle(AddBillingMethod(boss, c.agency_id, "tok_visa"))
    ctx.handle(CreditEarnings(c.agency_id, 50_000))
    return c


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
    """Create the cast ``months`` before ``until`` and play day by day up to it."""
    rng = random.Random(seed)
    end = until or datetime.now(UTC)
    days = months * 30
    c = cast(ctx)
    boss = Actor("user", c.owner["id"])
    client = Actor("user", c.client["id"])
    submitters = [c.people[k]["id"] for k in ("mia", "noah", "manager")] + [c.owner["id"]]
    open_jobs: list[str] = []
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
            with suppress(ConnectsError):
                _submit(ctx, who, job_id, account_id)
        if open_jobs and rng.random() < 0.15:
            job_id = open_jobs.pop(rng.randrange(len(open_jobs)))
            outcome = rng.choice(["cancelled", "closed", "expired"])
            actor = client if outcome != "expired" else Actor("system")
            with suppress(ConnectsError):
                ctx.handle(EndJob(actor, job_id, outcome))
        if open_jobs and rng.random() < 0.1:
            with suppress(ConnectsError):
                ctx.handle(
                    ChangeJobPrice(c.client["id"], rng.choice(open_jobs), rng.choice([4, 8, 12]))
                )
        if day % 9 == 4:
            with suppress(ConnectsError):
                ctx.handle(BuyConnects(boss, c.agency_id, rng.choice([20, 40]), "default"))
        if len(open_jobs) > 25:
            open_jobs = open_jobs[-25:]
        clock.set(max(clock.now(), end - timedelta(days=days - day - 1)))
        cycles.run_due_cycles(ctx)
        cycles.sweep_expired(ctx)
        if on_day:
            on_day(day + 1, days)
    return c


def _submit(ctx: Context, who: str, job_id: str, account_id: str) -> None:
    with ctx.db.read() as conn:
        price = conn.execute(select(jobs.c.connects_required).where(jobs.c.id == job_id)).scalar()
    ctx.handle(
        SubmitProposal(
            Actor("user", who),
            job_id=job_id,
            account_id=account_id,
            freelancer_id=who,
            expected_connects=int(price or 0),
        )
    )


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
