"""Interview rewards through the services, on SQLite and PostgreSQL (R16, R9)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from connects.domain.clock import SimulatedClock
from connects.domain.commands import StartInterview
from connects.domain.errors import NotFound
from connects.domain.plans import DEFAULT_PLANS, Catalog
from connects.services import cycles
from connects.services.context import Context
from connects.services.verify import verify
from tests.integration.ledger_support import (
    APR_15,
    available,
    entries_of,
    lots_of,
    proposal,
    refused,
    world_fixture,  # noqa: F401 (the world fixture)
)
from tests.world import World


def with_reward(ctx: Context, reward: int) -> Context:
    """The same engine with an interview reward on every plan (R16)."""
    raw = {k: {**v, "interview_reward": reward} for k, v in DEFAULT_PLANS.items()}
    return dataclasses.replace(ctx, catalog=Catalog.from_mapping(raw))


# -- interview rewards (R16) --------------------------------------------------------------


def test_interview_reward_goes_to_the_account_submitted_under(world: World) -> None:
    # R16: the agency gets the reward when the proposal was under the agency (003)
    ctx = with_reward(world.ctx, 2)
    world.ctx = ctx
    agency = world.agency("olga", mia="member")
    own = world.freelancer("mia")
    out = world.submit("mia", world.job(6), agency)
    assert ctx.handle(StartInterview(world.people["client"], str(out["id"]))) == 2
    assert (available(ctx, agency), available(ctx, own)) == (76, 10)
    [reward] = entries_of(ctx, agency, "reward")
    assert (reward.amount, reward.member_id, reward.proposal_id) == (
        2,
        world.people["mia"],
        out["id"],
    )
    assert [lot.source for lot in lots_of(ctx, agency)] == ["grant", "reward"]
    # a second interview on the same proposal earns nothing more
    assert ctx.handle(StartInterview(world.people["client"], str(out["id"]))) == 0
    assert available(ctx, agency) == 76
    # a freelancer-account proposal rewards the freelancer account
    mine = world.submit("mia", world.job(3), own)
    assert ctx.handle(StartInterview(world.people["client"], str(mine["id"]))) == 2
    assert (available(ctx, agency), available(ctx, own)) == (76, 9)
    assert proposal(ctx, str(mine["id"])).status == "interviewing"
    assert verify(ctx) == []


def test_interview_reward_defaults_to_zero(world: World) -> None:
    # R16: default 0
    ctx = world.ctx
    agency = world.agency("olga")
    out = world.submit("olga", world.job(6), agency)
    assert ctx.handle(StartInterview(world.people["client"], str(out["id"]))) == 0
    assert entries_of(ctx, agency, "reward") == []
    assert available(ctx, agency) == 74
    # only the job's client interviews
    world.person("mallory")
    refused(
        lambda: ctx.handle(StartInterview(world.people["mallory"], str(out["id"]))), ctx, NotFound
    )


def test_interview_reward_from_a_plans_file(
    any_ctx: Context, make_ctx: Callable[..., Context], tmp_path: Path
) -> None:
    # R16 + R7: the reward is a plan setting read from configuration
    plans = tmp_path / "plans.toml"
    plans.write_text(
        '[plans.freelancer-basic]\nkind = "freelancer"\nmonthly_connects = 10\n'
        "interview_reward = 5\n"
    )
    ctx = make_ctx(any_ctx.db.url, plans_file=plans)
    world = World(ctx)
    own = world.freelancer("fay")
    out = world.submit("fay", world.job(4), own)
    assert ctx.handle(StartInterview(world.people["client"], str(out["id"]))) == 5
    assert available(ctx, own) == 11


def test_rewards_are_never_forfeited_by_rollover(world: World, clock: SimulatedClock) -> None:
    # R9: rewarded Connects only expire
    ctx = with_reward(world.ctx, 50)
    world.ctx = ctx
    agency = world.agency("olga")
    out = world.submit("olga", world.job(0), agency)
    ctx.handle(StartInterview(world.people["client"], str(out["id"])))
    clock.set(APR_15)
    cycles.run_due_cycles(ctx)
    rewards = [lot.remaining for lot in lots_of(ctx, agency) if lot.source == "reward"]
    assert rewards == [50]
    assert available(ctx, agency) == 160 + 80 + 50
