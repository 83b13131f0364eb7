"""Jobs, proposals, and the operator's bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, Strict

from connects.api.schemas.base import MAX_CENTS, Body, ChangeBody, Model, Text, UtcTime

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


class Boost(Model):
    bid: int
    status: str
    rank: int | None = Field(None, description="Its place in the job's auction, 1 first.")
    boosted: bool = Field(False, description="In the job's top 4 (R35).")
    captured: int = 0
    hold_id: str | None = None


class NewProposal(Body):
    job_id: Annotated[Text, Field(min_length=1, max_length=64)]
    account_id: Annotated[Text, Field(min_length=1, max_length=64)]
    freelancer_id: Annotated[Text, Field(min_length=1, max_length=64)]
    expected_connects: Annotated[int, Strict(), Field(ge=0, le=1000)]
    boost: Annotated[int, Strict(), Field(ge=1, le=1_000_000)] | None = None  # R35


class ProposalFields(Model):
    """What every answer about a proposal says of it."""

    id: str
    status: str
    connects_spent: int
    account_id: str
    job_id: str
    freelancer_id: str
    submitted_by: str | None = None


class Proposal(ProposalFields):
    balance: int | None = Field(None, description="The pool's balance after the proposal.")
    reward: int | None = Field(None, description="Connects rewarded for an interview (R16).")
    created_at: UtcTime | None = None
    updated_at: UtcTime | None = None
    boost: Boost | None = None  # R35


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


# -- boosts, outcomes, holds (R34-R38) ------------------------------------------------


class Outcome(Model):
    kind: str
    at: UtcTime


class ProposalDetail(ProposalFields):
    created_at: UtcTime | None = None
    boost: Boost | None = None
    outcomes: list[Outcome] = []


class BoostRaise(Body):
    bid: Annotated[int, Strict(), Field(ge=1, le=1_000_000)]


class Auction(Model):
    job_id: str
    closes_at: UtcTime | None = None
    closed_at: UtcTime | None = None
    open: bool
    top: list[int] = Field(description="The top-4 bids, highest first (R35).")


class Hold(Model):
    id: str
    amount: int
    captured: int
    status: str
    reason: str
    held_for: str
    proposal_id: str | None = None
    job_id: str | None = None
    deadline: UtcTime | None = None
    created_at: UtcTime
    ended_at: UtcTime | None = None


class Badge(Model):
    enabled: bool
    weekly_max: int | None = None
    weekly_price: int
    stopped_reason: str | None = None
    next_charge_at: UtcTime | None = None
    instalments: list[int] = Field(description="The week's daily instalments (R37).")


class BadgePut(ChangeBody):
    enabled: Annotated[bool, Strict()] | None = None
    weekly_max: Annotated[int, Strict(), Field(ge=0, le=10_000)] | None = None


class BadgePrice(ChangeBody):
    weekly: Annotated[int, Strict(), Field(ge=0, le=10_000)]


class BadgePriceSet(Model):
    weekly: int
    instalments: list[int]
