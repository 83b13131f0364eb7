"""A small cast for tests: people, accounts and jobs in one call each."""

from __future__ import annotations

from dataclasses import dataclass, field

from connects.domain.commands import (
    AcceptInvitation,
    CreateUser,
    InviteMember,
    OpenAccount,
    PostJob,
    SubmitProposal,
)
from connects.domain.policy import Actor
from connects.services.context import Context


def add_member(ctx: Context, who: Actor, account_id: str, user_id: str, role: str) -> None:
    """Make ``user_id`` a member the only way there is: invited, and they accept (R49)."""
    invitation = ctx.handle(InviteMember(who, account_id, user_id, role))
    ctx.handle(AcceptInvitation(user_id, str(invitation["id"])))


@dataclass
class World:
    ctx: Context
    people: dict[str, str] = field(default_factory=dict)  # name -> user id
    tokens: dict[str, str] = field(default_factory=dict)

    def person(self, name: str) -> str:
        user = self.ctx.handle(CreateUser(name.title(), f"{name}@test.connects"))
        self.people[name] = str(user["id"])
        self.tokens[name] = str(user["token"])
        return self.people[name]

    def actor(self, name: str) -> Actor:
        return Actor("user", self.people[name])

    def agency(self, owner: str, plan: str = "agency-plus", **members: str) -> str:
        """An agency owned by ``owner`` with ``name=role`` members (people made as needed)."""
        if owner not in self.people:
            self.person(owner)
        account_id = self.ctx.handle(
            OpenAccount(self.people[owner], "agency", f"{owner.title()} Agency", plan)
        )
        for name, role in members.items():
            if name not in self.people:
                self.person(name)
            add_member(self.ctx, self.actor(owner), account_id, self.people[name], role)
        return account_id

    def freelancer(self, name: str, plan: str = "freelancer-basic") -> str:
        if name not in self.people:
            self.person(name)
        return self.ctx.handle(
            OpenAccount(self.people[name], "freelancer", f"{name.title()} (freelance)", plan)
        )

    def job(self, price: int, client: str = "client", title: str = "A job") -> str:
        if client not in self.people:
            self.person(client)
        return self.ctx.handle(PostJob(self.people[client], title, price))

    def submit(
        self,
        who: str,
        job_id: str,
        account_id: str,
        *,
        freelancer: str | None = None,
        expected: int | None = None,
    ) -> dict[str, object]:
        from sqlalchemy import select

        from connects.db.schema import jobs

        if expected is None:
            with self.ctx.db.read() as conn:
                expected = int(
                    conn.execute(
                        select(jobs.c.connects_required).where(jobs.c.id == job_id)
                    ).scalar_one()
                )
        return self.ctx.handle(
            SubmitProposal(
                self.actor(who),
                job_id=job_id,
                account_id=account_id,
                freelancer_id=self.people[freelancer or who],
                expected_connects=expected,
            )
        )
