"""Jobs and proposals (R5, R13-R16)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from connects.api.answers import AnsweredRoute
from connects.api.common import API_PREFIX, READ_ERRORS, WRITE_ERRORS, JobId, ProposalId
from connects.api.deps import CtxDep, CurrentPerson, CurrentPrincipal, IdempotencyKey
from connects.api.schemas import CloseJob, Job, JobPatch, NewJob, NewProposal, Proposal
from connects.domain.commands import (
    ChangeJobPrice,
    EndJob,
    PostJob,
    StartInterview,
    SubmitProposal,
    WithdrawProposal,
)
from connects.metrics import CONNECTS_SPENT
from connects.services import views

router = APIRouter(prefix=API_PREFIX, tags=["jobs and proposals"], route_class=AnsweredRoute)


def job_out(ctx: Any, job_id: str, ended: dict[str, Any] | None = None) -> Job:
    data = views.job(ctx, job_id)
    if ended is not None:
        data["refunded_connects"] = ended["refunded_connects"]
    return Job.model_validate(data)


@router.post(
    "/jobs", status_code=status.HTTP_201_CREATED, response_model=Job, responses=WRITE_ERRORS
)
def create_job(body: NewJob, ctx: CtxDep, who: CurrentPerson, _key: IdempotencyKey) -> Job:
    """Post a job at a Connects price; the caller is its client."""
    job_id = ctx.handle(PostJob(who.user_id, body.title, body.connects_required))
    return job_out(ctx, job_id)


@router.get("/jobs/{job_id}", response_model=Job, responses=READ_ERRORS)
def get_job(job_id: JobId, ctx: CtxDep, who: CurrentPrincipal) -> Job:
    """A job: title, live Connects price and status (jobs are public on the marketplace)."""
    return job_out(ctx, job_id)


@router.patch("/jobs/{job_id}", response_model=Job, responses=WRITE_ERRORS)
def change_job_price(
    job_id: JobId, body: JobPatch, ctx: CtxDep, who: CurrentPerson, _key: IdempotencyKey
) -> Job:
    """Change the live Connects price of an open job (the job's client, R13)."""
    ctx.handle(ChangeJobPrice(who.user_id, job_id, body.connects_required))
    return job_out(ctx, job_id)


@router.post("/jobs/{job_id}/cancel", response_model=Job, responses=WRITE_ERRORS)
def cancel_job(job_id: JobId, ctx: CtxDep, who: CurrentPerson, _key: IdempotencyKey) -> Job:
    """Cancel the job before a contract: every proposal's Connects come back (R15)."""
    ended = ctx.handle(EndJob(who.actor, job_id, "cancelled"))
    return job_out(ctx, job_id, ended)


@router.post("/jobs/{job_id}/close", response_model=Job, responses=WRITE_ERRORS)
def close_job(
    job_id: JobId,
    ctx: CtxDep,
    who: CurrentPerson,
    _key: IdempotencyKey,
    body: CloseJob | None = None,
) -> Job:
    """Close the job: with `hired_proposal_id` a hire (no refunds), else refunds (R15)."""
    hired = body.hired_proposal_id if body else None
    ended = ctx.handle(EndJob(who.actor, job_id, "closed", hired))
    return job_out(ctx, job_id, ended)


@router.post(
    "/proposals",
    status_code=status.HTTP_201_CREATED,
    response_model=Proposal,
    responses=WRITE_ERRORS,
)
def submit_proposal(
    body: NewProposal, ctx: CtxDep, who: CurrentPerson, _key: IdempotencyKey
) -> Proposal:
    """Submit a proposal, paying the job's price from the account's pool (R5, R13, R14)."""
    result = ctx.handle(
        SubmitProposal(
            who.actor,
            job_id=body.job_id,
            account_id=body.account_id,
            freelancer_id=body.freelancer_id,
            expected_connects=body.expected_connects,
            boost=body.boost,
        )
    )
    CONNECTS_SPENT.inc(result["connects_spent"])
    return Proposal.model_validate(result)


@router.post("/proposals/{proposal_id}/withdraw", response_model=Proposal, responses=WRITE_ERRORS)
def withdraw_proposal(
    proposal_id: ProposalId, ctx: CtxDep, who: CurrentPerson, _key: IdempotencyKey
) -> Proposal:
    """Withdraw a proposal (submitter, freelancer, owner or admin): no refund (R15)."""
    ctx.handle(WithdrawProposal(who.actor, proposal_id))
    return Proposal.model_validate(views.proposal(ctx, proposal_id))


@router.post("/proposals/{proposal_id}/interview", response_model=Proposal, responses=WRITE_ERRORS)
def start_interview(
    proposal_id: ProposalId, ctx: CtxDep, who: CurrentPerson, _key: IdempotencyKey
) -> Proposal:
    """The job's client starts an interview: the plan's reward is credited (R16)."""
    reward = ctx.handle(StartInterview(who.user_id, proposal_id))
    return Proposal.model_validate({**views.proposal(ctx, proposal_id), "reward": reward})
