"""Accounts, memberships and roles through the services, on SQLite and PostgreSQL
(R1-R3, R7, R32).
"""

from __future__ import annotations

from connects.domain.commands import (
    BuyConnects,
    ChangeRole,
    CreditEarnings,
    InviteMember,
    OpenAccount,
    RemoveMember,
    SetBudget,
    UpdateAccount,
)
from connects.domain.errors import (
    AgencyOnly,
    AlreadyHasFreelancerAccount,
    AlreadyInvited,
    AlreadyMember,
    AlreadyOwnsAgency,
    Forbidden,
    InvalidRequest,
    NotFound,
    OwnerIsPermanent,
    PlanNotAllowed,
)
from connects.services import views
from connects.services.verify import verify
from tests.integration.ledger_support import (
    available,
    refused,
    world_fixture,  # noqa: F401 (the world fixture)
)
from tests.world import World

# -- accounts (R1, R2) ---------------------------------------------------------------


def test_freelancer_and_agency_accounts_have_separate_balances(world: World) -> None:
    # R1: one person, two accounts, two balances
    ctx = world.ctx
    agency = world.agency("mia", "agency-plus")
    own = world.freelancer("mia", "freelancer-basic")
    assert (available(ctx, agency), available(ctx, own)) == (80, 10)
    world.submit("mia", world.job(7), agency)
    assert (available(ctx, agency), available(ctx, own)) == (73, 10)
    world.submit("mia", world.job(4), own)
    assert (available(ctx, agency), available(ctx, own)) == (73, 6)
    assert verify(ctx) == []


def test_one_agency_and_one_freelancer_account_per_person(world: World) -> None:
    # R2
    ctx = world.ctx
    olga = world.person("olga")
    world.agency("olga")
    world.freelancer("olga")
    refused(lambda: ctx.handle(OpenAccount(olga, "agency", "Second")), ctx, AlreadyOwnsAgency)
    refused(
        lambda: ctx.handle(OpenAccount(olga, "freelancer", "Again")),
        ctx,
        AlreadyHasFreelancerAccount,
    )


def test_owner_of_one_agency_may_be_member_of_others(world: World) -> None:
    # R2: a person owns at most one agency and may be a member of others
    ctx = world.ctx
    first = world.agency("olga", bob="member")
    second = world.agency("bob", olga="admin")
    assert views.account(ctx, world.actor("bob"), first)["role"] == "member"
    assert views.account(ctx, world.actor("bob"), second)["role"] == "owner"
    assert views.account(ctx, world.actor("olga"), second)["role"] == "admin"


def test_plan_must_fit_the_account_kind(world: World) -> None:
    # R7: agency and freelancer plans are separate
    ctx = world.ctx
    olga = world.person("olga")
    refused(
        lambda: ctx.handle(OpenAccount(olga, "agency", "A", "freelancer-plus")),
        ctx,
        PlanNotAllowed,
    )
    refused(lambda: ctx.handle(OpenAccount(olga, "robot", "A")), ctx, InvalidRequest)


# -- memberships and roles (R3) ------------------------------------------------------


def test_only_owner_and_admins_manage_members(world: World) -> None:
    # R3
    ctx = world.ctx
    agency = world.agency("olga", ada="admin", max="manager", mo="member")
    newcomer = world.person("newcomer")
    for who in ("max", "mo"):
        refused(
            lambda who=who: ctx.handle(InviteMember(world.actor(who), agency, newcomer, "member")),
            ctx,
            Forbidden,
        )
    ctx.handle(InviteMember(world.actor("ada"), agency, newcomer, "member"))
    refused(
        lambda: ctx.handle(InviteMember(world.actor("olga"), agency, newcomer, "admin")),
        ctx,
        AlreadyInvited,
    )
    refused(
        lambda: ctx.handle(InviteMember(world.actor("olga"), agency, world.people["mo"], "admin")),
        ctx,
        AlreadyMember,
    )
    outsider = world.person("outsider")
    refused(
        lambda: ctx.handle(InviteMember(world.actor("outsider"), agency, outsider, "member")),
        ctx,
        NotFound,
    )
    refused(
        lambda: ctx.handle(InviteMember(world.actor("olga"), agency, outsider, "owner")),
        ctx,
        InvalidRequest,
    )


def test_invite_by_email_looks_the_address_up_only_for_who_may_invite(world: World) -> None:
    # R3, R49: a member is refused alike for a registered and an unknown address; the
    # owner or an admin finds the first person who signed up with it, case aside
    ctx = world.ctx
    agency = world.agency("olga", ada="admin", mo="member")
    newcomer = world.person("newcomer")
    for email in ("newcomer@test.connects", "nobody@test.connects"):
        refused(
            lambda email=email: ctx.handle(
                InviteMember(world.actor("mo"), agency, "", "member", email=email)
            ),
            ctx,
            Forbidden,
        )
    refused(
        lambda: ctx.handle(
            InviteMember(world.actor("ada"), agency, "", "member", email="nobody@test.connects")
        ),
        ctx,
        NotFound,
    )
    made = ctx.handle(
        InviteMember(world.actor("ada"), agency, "", "member", email=" NewComer@test.connects")
    )
    assert made["user_id"] == newcomer


def test_owner_is_permanent(world: World) -> None:
    # R3: exactly one owner
    ctx = world.ctx
    agency = world.agency("olga", ada="admin")
    olga = world.people["olga"]
    refused(
        lambda: ctx.handle(ChangeRole(world.actor("ada"), agency, olga, "member")),
        ctx,
        OwnerIsPermanent,
    )
    refused(
        lambda: ctx.handle(RemoveMember(world.actor("ada"), agency, olga)), ctx, OwnerIsPermanent
    )


def test_only_owner_and_admins_change_the_plan(world: World) -> None:
    # R3
    ctx = world.ctx
    agency = world.agency("olga", ada="admin", max="manager")
    refused(
        lambda: ctx.handle(UpdateAccount(world.actor("max"), agency, plan="agency-basic")),
        ctx,
        Forbidden,
    )
    ctx.handle(UpdateAccount(world.actor("ada"), agency, plan="agency-basic"))
    assert views.account(ctx, world.actor("max"), agency)["plan"] == "agency-basic"


def test_role_change_and_removal_take_effect(world: World) -> None:
    # R3: a demoted admin can no longer buy; a removed member can no longer submit
    ctx = world.ctx
    agency = world.agency("olga", ada="admin", mo="member")
    ctx.handle(CreditEarnings(agency, 10_000))
    ctx.handle(BuyConnects(world.actor("ada"), agency, 1, "earnings"))
    ctx.handle(ChangeRole(world.actor("olga"), agency, world.people["ada"], "member"))
    refused(
        lambda: ctx.handle(BuyConnects(world.actor("ada"), agency, 1, "earnings")), ctx, Forbidden
    )
    ctx.handle(RemoveMember(world.actor("olga"), agency, world.people["mo"]))
    job = world.job(3)
    refused(lambda: world.submit("mo", job, agency), ctx, NotFound)


def test_members_and_budgets_exist_only_on_agencies(world: World) -> None:
    ctx = world.ctx
    own = world.freelancer("fay")
    other = world.person("other")
    refused(
        lambda: ctx.handle(InviteMember(world.actor("fay"), own, other, "member")), ctx, AgencyOnly
    )
    refused(
        lambda: ctx.handle(SetBudget(world.actor("fay"), own, world.people["fay"], 5)),
        ctx,
        AgencyOnly,
    )
