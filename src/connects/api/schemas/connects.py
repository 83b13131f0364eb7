"""Connects: the overview, history, expiry, billing, purchases, grants, auto top-up."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, Strict

from connects.api.schemas.base import Body, ChangeBody, Flag, Model, Text, UtcTime
from connects.domain.vocabulary import BlockedReason, TopUpState

# -- Connects ---------------------------------------------------------------------


class CardRef(Model):
    id: str
    brand: str
    last4: str


class AutoTopupUsage(Model):
    """Auto top-up settings (R19-R22) as the overview shows them, with this month's use;
    its status (R40) is ``GET /accounts/{id}/auto-topup``'s."""

    model_config = ConfigDict(from_attributes=True, extra="allow")

    enabled: bool
    per_topup: int
    per_month: int
    threshold: int
    just_in_time: bool
    mode: str
    target: int | None = None


class AutoTopupSettings(AutoTopupUsage):
    """Auto top-up settings (R19-R22) with their status (R40)."""

    status: TopUpState = Field(
        description="`blocked` while nothing can be bought; `blocked_reason` says why (R40)"
    )
    blocked_reason: BlockedReason | None = None
    next_try_at: UtcTime | None = Field(
        None, description="when a blocked top-up is tried again by itself, if it is (R41, R42)"
    )
    paused_at: UtcTime | None = Field(
        None, description="when 3 declines in a row paused it; resume ends the pause (R42)"
    )
    card: CardRef | None = Field(
        None, description="the card it charges (owner/admin only; null: none, R44)"
    )


class AutoTopupPut(ChangeBody):
    enabled: Flag | None = None
    per_topup: Annotated[int, Strict(), Field(ge=1, le=1_000_000)] | None = None
    per_month: Annotated[int, Strict(), Field(ge=0, le=10_000_000)] | None = None
    threshold: Annotated[int, Strict(), Field(ge=0, le=1_000_000)] | None = None
    just_in_time: Flag | None = None
    mode: Literal["fixed", "target"] | None = None
    target: Annotated[int, Strict(), Field(ge=1, le=1_000_000)] | None = None


class NextGrant(Model):
    at: UtcTime
    connects: int


class Overview(Model):
    available: int
    held: int = 0  # R34
    next_grant: NextGrant | None = None
    used_this_month: int
    purchased_this_month: int
    purchased_this_month_manual: int
    purchased_this_month_auto: int
    expiring_30d: int
    month_starts_at: UtcTime
    auto_topup: AutoTopupUsage | None = None


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
    hold_id: str | None = None  # R34
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


class BillingMethodChange(ChangeBody):
    default: Flag = Field(
        description="`true` makes this card the default, the one auto top-up charges "
        "(R44); `false` is refused: make another card the default, or remove this one"
    )


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
    amount: int = Field(description="the price of the quantity, in cents")
    charged: int | None = Field(
        None, description="cents charged: `amount` if succeeded, 0 if failed or skipped (R44)"
    )
    currency: str | None = None
    trigger: str
    status: str
    reason: str | None = None
    purchase_id: str | None = None
