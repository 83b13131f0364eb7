"""Request and response bodies (pydantic v2): the shapes of ``API.md``.

Connects are whole numbers; money is integer cents beside a ``currency``; times are
RFC 3339 UTC strings (``2026-01-15T09:00:00Z``). Numbers are strict (``"5"`` and
``true`` are not numbers) and bounded, so an oversized value is refused as
``invalid_request`` before it reaches the database (R32).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    Strict,
    WithJsonSchema,
)

INT32 = 2**31 - 1
MAX_CENTS = 10**12


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate (JSON's "\ud800"): not text at all
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


def _utc(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


UtcTime = Annotated[
    datetime,
    PlainSerializer(_utc, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
Text = Annotated[str, AfterValidator(_no_nul)]
Count = Annotated[int, Strict(), Field(ge=0, le=INT32)]
Flag = Annotated[bool, Strict()]  # only JSON true or false, never "yes" or 1
Cents = Annotated[int, Strict(), Field(ge=0, le=MAX_CENTS)]

T = TypeVar("T")


class Model(BaseModel):
    """A response body; fields may be added over time, never renamed."""

    model_config = ConfigDict(from_attributes=True)


class Body(BaseModel):
    """A request body (POST). Unknown fields are ignored (tolerant reader)."""


class ChangeBody(Body):
    """A PATCH or PUT body: an unknown field is refused (422 ``invalid_request`` naming
    it), since a misspelt one would otherwise leave the setting it meant unchanged."""

    model_config = ConfigDict(extra="forbid")


class Page(Model, Generic[T]):
    """One page of a list: follow ``next_cursor`` until it is null."""

    items: list[T]
    next_cursor: str | None = None


class ErrorDetail(BaseModel):
    code: str = Field(examples=["insufficient_connects"])
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class ErrorBody(BaseModel):
    """Every 4xx and 5xx answer."""

    error: ErrorDetail


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


# -- Connects ---------------------------------------------------------------------


class AutoTopupSettings(Model):
    """Auto top-up settings (R19-R22)."""

    model_config = ConfigDict(from_attributes=True, extra="allow")

    enabled: bool
    per_topup: int
    per_month: int
    threshold: int
    just_in_time: bool
    mode: str
    target: int | None = None


class AutoTopupPut(ChangeBody):
    enabled: Flag | None = None
    per_topup: Annotated[int, Strict(), Field(ge=1, le=1_000_000)] | None = None
    per_month: Annotated[int, Strict(), Field(ge=0, le=10_000_000)] | None = None
    threshold: Annotated[int, Strict(), Field(ge=0, le=1_000_000)] | None = None
    just_in_time: Flag | None = None
    mode: Literal["fixed", "target"] | None = None
    target: Annotated[int, Strict(), Field(ge=1, le=1_000_000)] | None = None


class Overview(Model):
    available: int
    used_this_month: int
    purchased_this_month: int
    purchased_this_month_manual: int
    purchased_this_month_auto: int
    expiring_30d: int
    month_starts_at: UtcTime
    auto_topup: AutoTopupSettings | None = None


class Entry(Model):
    id: str
    seq: int
    at: UtcTime
    kind: str
    amount: int
    balance_after: int
    actor: str
    member_id: str | None = None
    proposal_id: str | None = None
    purchase_id: str | None = None
    topup_id: str | None = None
    note: str | None = None


class ExpiringLot(Model):
    id: str
    source: str
    issued_at: UtcTime
    expires_at: UtcTime
    remaining: int


class Expiring(Model):
    within_30d: int
    lots: list[ExpiringLot]


class NewBillingMethod(Body):
    token: Annotated[Text, Field(min_length=1, max_length=200)]


class BillingMethod(Model):
    id: str
    brand: str
    last4: str
    default: bool
    created_at: UtcTime | None = None


class NewPurchase(Body):
    quantity: Annotated[int, Strict(), Field(ge=1, le=1_000_000)]
    pay_with: Annotated[Text, Field(min_length=1, max_length=64)] = Field(
        description='"earnings", a billing method id, or "default".'
    )


class Purchase(Model):
    id: str
    account_id: str
    quantity: int
    amount: int = Field(description="Price in cents.")
    currency: str
    status: str
    pay_with: str
    billing_method_id: str | None = None
    topup_id: str | None = None
    created_at: UtcTime


class NewGrant(Body):
    grantee: Annotated[Text, Field(min_length=1, max_length=64)]
    permissions: Annotated[
        list[Annotated[Text, Field(min_length=1, max_length=64)]], Field(max_length=20)
    ]


class Grant(Model):
    model_config = ConfigDict(from_attributes=True, extra="allow")

    id: str
    grantee: str
    permissions: list[str]
    status: str
    active_at: UtcTime | None = None
    created_at: UtcTime | None = None


class Topup(Model):
    model_config = ConfigDict(from_attributes=True, extra="allow")

    id: str
    at: UtcTime
    quantity: int
    amount: int
    currency: str | None = None
    trigger: str
    status: str
    reason: str | None = None
    purchase_id: str | None = None


# -- jobs and proposals -----------------------------------------------------------


class NewJob(Body):
    title: Annotated[Text, Field(min_length=1, max_length=300)]
    connects_required: Annotated[int, Strict(), Field(ge=0, le=1000)]


class JobPatch(ChangeBody):
    connects_required: Annotated[int, Strict(), Field(ge=0, le=1000)]


class CloseJob(Body):
    hired_proposal_id: Annotated[Text, Field(min_length=1, max_length=64)] | None = None


class Job(Model):
    id: str
    client_id: str
    title: str
    connects_required: int
    status: str
    hired_proposal_id: str | None = None
    created_at: UtcTime
    updated_at: UtcTime
    refunded_connects: int | None = Field(
        None, description="Connects given back when the job ended (R15)."
    )


class NewProposal(Body):
    job_id: Annotated[Text, Field(min_length=1, max_length=64)]
    account_id: Annotated[Text, Field(min_length=1, max_length=64)]
    freelancer_id: Annotated[Text, Field(min_length=1, max_length=64)]
    expected_connects: Annotated[int, Strict(), Field(ge=0, le=1000)]


class Proposal(Model):
    id: str
    status: str
    connects_spent: int
    account_id: str
    job_id: str
    freelancer_id: str
    submitted_by: str | None = None
    balance: int | None = Field(None, description="The pool's balance after the proposal.")
    reward: int | None = Field(None, description="Connects rewarded for an interview (R16).")
    created_at: UtcTime | None = None
    updated_at: UtcTime | None = None


# -- operator ---------------------------------------------------------------------


class Earnings(Body):
    amount: Annotated[int, Strict(), Field(ge=1, le=MAX_CENTS)]


class EarningsBalance(Model):
    account_id: str
    earnings: int
    currency: str


class ClockMove(Body):
    advance: Annotated[Text, Field(min_length=2, max_length=40)] | None = Field(
        None, description='An ISO 8601 duration such as "P31D" or "PT12H".'
    )
    to: datetime | None = Field(None, description="A time (RFC 3339) to move the clock to.")


class ClockState(Model):
    now: UtcTime
    ran: dict[str, int]


class Health(Model):
    status: str
    database: str
    clock: str
