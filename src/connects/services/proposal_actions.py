"""What the bidder and the job's client do to a proposal after it is sent: raise its
boost (R35), view or decline it (R38, which may capture the boost, R35, R36).

Lock order as everywhere: the job, then the account. Raising a bid takes the job
``FOR SHARE`` (bids on one job go side by side); a view or a decline takes it ``FOR
UPDATE``, so the top 4 it judges cannot move under it.
"""

from __future__ import annotations

from typing import Any

from connects.domain.commands import RaiseBoost, RecordOutcome
from connects.domain.errors import Forbidden, InvalidRequest, NotFound
from connects.domain.policy import Action, Actor, allows
from connects.domain.vocabulary import HoldStatus, OutcomeKind, ProposalStatus
from connects.services import boosts, holds
from connects.services.jobs import load_job, load_proposal, set_proposal
from connects.services.uow import UnitOfWork
from connects.services.views.holds import proposal_detail

_CLIENT_OUTCOMES = {"viewed": OutcomeKind.VIEWED, "declined": OutcomeKind.DECLINED}


def raise_boost(cmd: RaiseBoost, uow: UnitOfWork) -> dict[str, Any]:
    """Raise a proposal's bid while the auction is open; lower or equal is refused
    (``invalid_request``), as is a proposal with no boost or an ended one (R35)."""
    bid = boosts.check_bid(cmd.bid, uow.ctx.boost_max_bid, field="bid")
    with uow.begin() as tx:
        prop = load_proposal(tx.conn, cmd.proposal_id)
        job = load_job(tx.conn, prop.job_id, lock="share")
        actor = tx.authorize(prop.account_id, cmd.who, Action.VIEW)
        if actor.id not in (prop.submitted_by, prop.freelancer_id) and not allows(
            actor.role, Action.MANAGE
        ):
            raise Forbidden("only the submitter, the freelancer, the owner or an admin bids")
        prop = load_proposal(tx.conn, prop.id, prop.account_id)  # as it is under the locks
        if not ProposalStatus(prop.status).live:
            raise InvalidRequest(f"the proposal is {prop.status}", field="bid")
        boosts.refuse_closed(job, tx.now)
        hold = holds.of_proposal(tx.conn, prop.account_id, prop.id)
        if hold is None:
            raise InvalidRequest("the proposal has no boost", field="bid")
        book = tx.book(prop.account_id)
        book.sweep_expired()
        hold = holds.load(tx.conn, hold.id, book.id)
        if hold.status != HoldStatus.HELD:
            raise InvalidRequest(f"the boost is {hold.status}: it cannot grow", field="bid")
        holds.raise_to(book, hold, bid, actor=Actor("user", cmd.who.id))
        return proposal_detail(tx.conn, prop.id, prop.account_id)


def record_outcome(cmd: RecordOutcome, uow: UnitOfWork) -> dict[str, Any]:
    """The job's client views or declines a proposal (R38). In the top 4 of an open
    auction its boost is captured (R35); a declined one's held bid is released (R36)."""
    kind = _CLIENT_OUTCOMES.get(cmd.kind)
    if kind is None:
        raise InvalidRequest("unknown outcome", field="kind")
    with uow.begin() as tx:
        prop = load_proposal(tx.conn, cmd.proposal_id)
        job = load_job(tx.conn, prop.job_id, lock="update")
        if job.client_id != cmd.client_id:
            raise NotFound("no such proposal", proposal_id=cmd.proposal_id)
        tx.book(prop.account_id)
        prop = load_proposal(tx.conn, prop.id, prop.account_id)  # as it is under the locks
        if kind is OutcomeKind.DECLINED and prop.status != ProposalStatus.DECLINED:
            set_proposal(tx, prop, ProposalStatus.DECLINED)
        boosts.record(tx, prop, kind, cmd.client_id)  # once per kind (R38)
        # Every look is an interaction: a bid that climbed into the top 4 since an
        # earlier view is captured by the next one (R35).
        boosts.on_interaction(tx, job, prop, kind, Actor("user", cmd.client_id))
        return proposal_detail(tx.conn, prop.id, prop.account_id)
