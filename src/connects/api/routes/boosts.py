"""Holds (R34), boosted proposals and their auction (R35, R36), the client's view and
decline of a proposal (R38), and the availability badge (R37)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from connects.api.answers import AnsweredRoute
from connects.api.common import (
    API_PREFIX,
    READ_ERRORS,
    WRITE_ERRORS,
    AccountId,
    Cursor,
    JobId,
    Limit,
    ProposalId,
)
from connects.api.deps import AccountActor, CtxDep, CurrentPerson, CurrentPrincipal, IdempotencyKey
from connects.api.schemas import Auction, Badge, BadgePut, BoostRaise, Hold, Page, ProposalDetail
from connects.domain.commands import RaiseBoost, RecordOutcome, SetBadge
from connects.services import badge, views

router = APIRouter(prefix=API_PREFIX, tags=["boosts and holds"], route_class=AnsweredRoute)


@router.get("/accounts/{account_id}/holds", response_model=Page[Hold], responses=READ_ERRORS)
def list_holds(
    account_id: AccountId,
    ctx: CtxDep,
    who: AccountActor,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """The account's holds, newest first: held, captured or released, and why (R34)."""
    return views.holds_of(ctx, who, account_id, limit=limit, cursor=cursor)


@router.get("/jobs/{job_id}/auction", response_model=Auction, responses=READ_ERRORS)
def get_auction(job_id: JobId, ctx: CtxDep, who: CurrentPrincipal) -> dict[str, Any]:
    """A job's boost auction: the top-4 bids (amounts, not bidders) and its close (R35)."""
    return views.auction(ctx, job_id)


@router.get("/proposals/{proposal_id}", response_model=ProposalDetail, responses=READ_ERRORS)
def get_proposal(proposal_id: ProposalId, ctx: CtxDep, who: CurrentPerson) -> dict[str, Any]:
    """A proposal with its boost and outcomes (its submitter, account, or job's client)."""
    return views.proposal_seen_by(ctx, who.actor, proposal_id)


@router.post(
    "/proposals/{proposal_id}/boost", response_model=ProposalDetail, responses=WRITE_ERRORS
)
def raise_boost(
    proposal_id: ProposalId,
    body: BoostRaise,
    ctx: CtxDep,
    who: CurrentPerson,
    _key: IdempotencyKey,
) -> dict[str, Any]:
    """Raise a proposal's bid while the auction is open; never lower it (R35)."""
    return ctx.handle(RaiseBoost(who.actor, proposal_id, body.bid))


@router.post("/proposals/{proposal_id}/view", response_model=ProposalDetail, responses=WRITE_ERRORS)
def view_proposal(
    proposal_id: ProposalId, ctx: CtxDep, who: CurrentPerson, _key: IdempotencyKey
) -> dict[str, Any]:
    """The job's client viewed the proposal (R38); a top-4 boost is captured (R35)."""
    return ctx.handle(RecordOutcome(who.user_id, proposal_id, "viewed"))


@router.post(
    "/proposals/{proposal_id}/decline", response_model=ProposalDetail, responses=WRITE_ERRORS
)
def decline_proposal(
    proposal_id: ProposalId, ctx: CtxDep, who: CurrentPerson, _key: IdempotencyKey
) -> dict[str, Any]:
    """The job's client declines the proposal: no refund (R15, R38); a top-4 boost is
    captured, any other held bid released (R35, R36)."""
    return ctx.handle(RecordOutcome(who.user_id, proposal_id, "declined"))


@router.get("/accounts/{account_id}/badge", response_model=Badge, responses=READ_ERRORS)
def get_badge(account_id: AccountId, ctx: CtxDep, who: AccountActor) -> dict[str, Any]:
    """The availability badge: on or off, the weekly maximum and price, why it stopped."""
    return badge.get_badge(ctx, who, account_id)


@router.put("/accounts/{account_id}/badge", response_model=Badge, responses=WRITE_ERRORS)
def put_badge(
    account_id: AccountId,
    body: BadgePut,
    ctx: CtxDep,
    who: AccountActor,
    _key: IdempotencyKey,
) -> dict[str, Any]:
    """The owner switches the badge and sets its weekly maximum (R37); switching it on
    charges the first daily instalment."""
    return ctx.handle(SetBadge(who, account_id, body.enabled, body.weekly_max))
