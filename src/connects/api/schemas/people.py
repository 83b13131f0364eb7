"""People, accounts, members and invitations."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from connects.api.schemas.base import Body, ChangeBody, Count, Model, Text, UtcTime

# -- people and accounts -----------------------------------------------------------


class NewUser(Body):
    name: Annotated[Text, Field(min_length=1, max_length=200)]
    email: Annotated[Text, Field(min_length=3, max_length=320)]


class CreatedUser(Model):
    id: str
    name: str
    email: str
    token: str = Field(description="The bearer token; shown only here.")


class OwnedAccount(Model):
    id: str
    kind: str
    name: str
    plan: str


class Membership(Model):
    account_id: str
    kind: str
    name: str
    plan: str
    role: str
    monthly_budget: int | None = None


class Me(Model):
    id: str
    name: str
    email: str
    created_at: UtcTime
    accounts: list[OwnedAccount]
    memberships: list[Membership]


class NewAccount(Body):
    kind: Literal["freelancer", "agency"]
    name: Annotated[Text, Field(min_length=1, max_length=200)]
    plan: Annotated[Text, Field(max_length=64)] | None = None
    timezone: Annotated[Text, Field(min_length=1, max_length=64)] = "UTC"


class AccountPatch(ChangeBody):
    plan: Annotated[Text, Field(min_length=1, max_length=64)] | None = None
    timezone: Annotated[Text, Field(min_length=1, max_length=64)] | None = None
    low_balance_threshold: Count | None = None
    name: Annotated[Text, Field(min_length=1, max_length=200)] | None = None


class Account(Model):
    id: str
    kind: str
    name: str
    plan: str
    balance: int = Field(description="Spendable Connects now (expired lots excluded, R12).")
    timezone: str
    low_balance_threshold: int
    owner_id: str
    earnings: int = Field(description="Earnings balance in cents (pays purchases, R17).")
    currency: str
    next_cycle_at: UtcTime
    created_at: UtcTime
    role: str | None = Field(None, description="The caller's role in this account.")


class NewMember(Body):
    user_id: Annotated[Text, Field(min_length=1, max_length=64)]
    role: Literal["admin", "manager", "member"]


class MemberPatch(ChangeBody):
    role: Literal["admin", "manager", "member"]


class Budget(ChangeBody):
    monthly_connects: Count | None


class Member(Model):
    user_id: str
    name: str
    email: str | None = Field(
        None, description="Shown to the member themselves and the owner and admins (R49)."
    )
    role: str
    monthly_budget: int | None = None
    spent_this_month: int = Field(description="Connects this member's proposals took (R4).")
    joined_at: UtcTime


class Invitation(Model):
    """An invitation to join an agency; the person is a member only once accepted (R49)."""

    id: str
    account_id: str
    account_name: str
    user_id: str
    role: str
    status: Literal["invited", "accepted", "declined"]
    invited_at: UtcTime
    answered_at: UtcTime | None = None
