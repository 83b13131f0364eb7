"""The operator's endpoints (``/admin``): removals, expiries, earnings, the clock."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter

from connects.api.answers import AnsweredRoute
from connects.api.common import API_PREFIX, WRITE_ERRORS, AccountId, JobId
from connects.api.deps import CtxDep, IdempotencyKey, OperatorDep
from connects.api.routes.jobs import job_out
from connects.api.schemas import (
    BadgePrice,
    BadgePriceSet,
    ClockMove,
    ClockState,
    Earnings,
    EarningsBalance,
    Job,
)
from connects.domain.clock import ensure_utc
from connects.domain.commands import CreditEarnings, EndJob, SetBadgePrice
from connects.domain.errors import InvalidRequest
from connects.domain.policy import OPERATOR
from connects.services import views
from connects.services.due import run_due_after_commit

router = APIRouter(prefix=f"{API_PREFIX}/admin", tags=["operator"], route_class=AnsweredRoute)

# The simulated clock moves at most this far per call (a decade of cycles still runs fast).
MAX_MOVE = timedelta(days=3660)
_DURATION = re.compile(
    r"^P(?!$)(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)


def parse_duration(text: str) -> timedelta:
    """An ISO 8601 duration (``P31D``, ``PT12H``, ``P1Y2M``); a year is 365 days, a month 30."""
    match = _DURATION.match(text.strip().upper())
    if match is None:
        raise InvalidRequest(
            "advance must be an ISO 8601 duration such as P31D or PT12H", field="advance"
        )
    parts = {k: int(v) if v else 0 for k, v in match.groupdict().items()}
    if any(v > 100_000 for v in parts.values()):
        raise InvalidRequest("advance is too far", field="advance")
    return timedelta(
        days=parts["years"] * 365 + parts["months"] * 30 + parts["weeks"] * 7 + parts["days"],
        hours=parts["hours"],
        minutes=parts["minutes"],
        seconds=parts["seconds"],
    )


@router.post("/jobs/{job_id}/remove", response_model=Job, responses=WRITE_ERRORS)
def remove_job(job_id: JobId, ctx: CtxDep, _op: OperatorDep, _key: IdempotencyKey) -> Job:
    """Take the post down for breaking the rules: every proposal is refunded (R15)."""
    ended = ctx.handle(EndJob(OPERATOR, job_id, "removed"))
    return job_out(ctx, job_id, ended)


@router.post("/jobs/{job_id}/expire", response_model=Job, responses=WRITE_ERRORS)
def expire_job(job_id: JobId, ctx: CtxDep, _op: OperatorDep, _key: IdempotencyKey) -> Job:
    """The post expires without a hire: nothing is refunded (R15)."""
    ended = ctx.handle(EndJob(OPERATOR, job_id, "expired"))
    return job_out(ctx, job_id, ended)


@router.put("/badge-price", response_model=BadgePriceSet, responses=WRITE_ERRORS)
def put_badge_price(
    body: BadgePrice, ctx: CtxDep, _op: OperatorDep, _key: IdempotencyKey
) -> dict[str, Any]:
    """The availability badge's weekly price; it applies from the next charge (R37)."""
    return ctx.handle(SetBadgePrice(body.weekly))


@router.post(
    "/accounts/{account_id}/earnings", response_model=EarningsBalance, responses=WRITE_ERRORS
)
def credit_earnings(
    account_id: AccountId,
    body: Earnings,
    ctx: CtxDep,
    _op: OperatorDep,
    _key: IdempotencyKey,
) -> dict[str, Any]:
    """Credit earnings (cents) the account made on contracts; they can pay purchases (R17)."""
    total = ctx.handle(CreditEarnings(account_id, body.amount))
    currency = views.account(ctx, OPERATOR, account_id)["currency"]
    return {"account_id": account_id, "earnings": total, "currency": currency}


clock_router = APIRouter(prefix=f"{API_PREFIX}/admin", tags=["operator"], route_class=AnsweredRoute)


@clock_router.post("/clock", response_model=ClockState, responses=WRITE_ERRORS)
def move_clock(
    body: ClockMove, ctx: CtxDep, _op: OperatorDep, _key: IdempotencyKey
) -> dict[str, Any]:
    """Move the simulated clock forward and run what falls due (R33; simulated clock only)."""
    clock: Any = ctx.clock
    now = ctx.now()
    if (body.advance is None) == (body.to is None):
        raise InvalidRequest("send exactly one of advance or to", field="advance")
    field = "advance" if body.advance is not None else "to"
    if body.advance is not None:
        delta = parse_duration(body.advance)
    else:
        assert body.to is not None
        delta = ensure_utc(body.to) - now
    if delta < timedelta(0):
        raise InvalidRequest("the simulated clock only moves forward", field=field, now=now)
    if delta > MAX_MOVE:
        raise InvalidRequest("move the clock at most ten years at a time", field=field)
    # Moved under the clock's own lock: a concurrent move (another request, another
    # process) between our read of ``now`` and the write is not a 500. An advance adds
    # to whatever time it finds; a ``to`` another move has already passed is refused.
    try:
        moved: datetime = clock.advance(delta) if field == "advance" else clock.set(now + delta)
    except ValueError:
        raise InvalidRequest(
            "the simulated clock only moves forward", field=field, now=ctx.now()
        ) from None
    # Keyed: the due work runs after the move and its answer commit (R31), each job in
    # its own transactions as the worker runs it; the answer's ``ran`` is then empty.
    return {"now": moved, "ran": run_due_after_commit(ctx)}
