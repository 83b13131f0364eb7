"""The product's words and the two lifecycles (R13-R16): one enum each, small state
machines that refuse what may not happen."""

from __future__ import annotations

import pytest

from connects.domain import vocabulary as v
from connects.domain.errors import JobNotOpen, ProposalNotActive
from connects.domain.vocabulary import EntryKind, JobStatus, ProposalStatus


def test_only_an_open_job_ends_and_only_once() -> None:
    # R15: a job has one ending; ending it again is job_not_open
    for ending in JobStatus:
        if ending is JobStatus.OPEN:
            with pytest.raises(ValueError):
                v.end_job("open", ending)
            continue
        assert v.end_job("open", ending) is ending
        with pytest.raises(JobNotOpen) as refused:
            v.end_job(ending.value, JobStatus.CANCELLED)
        assert refused.value.details == {"status": ending.value}


def test_which_endings_refund() -> None:
    # R15: cancel, close without a hire and removal give Connects back; a hire or an
    # expiry does not
    refunding = {s for s in JobStatus if s.refunds}
    assert refunding == {JobStatus.CANCELLED, JobStatus.CLOSED, JobStatus.REMOVED}
    assert set(v.JOB_ENDINGS) == set(JobStatus) - {JobStatus.OPEN}


@pytest.mark.parametrize("start", list(ProposalStatus))
@pytest.mark.parametrize("to", list(ProposalStatus))
def test_a_proposal_moves_only_along_its_lifecycle(
    start: ProposalStatus, to: ProposalStatus
) -> None:
    # R15 R16 R38: live proposals may be interviewed, withdrawn, refunded, hired or
    # declined; an
    # ended one never moves again, and an interview happens at most once
    allowed = {
        ProposalStatus.ACTIVE: {"interviewing", "withdrawn", "refunded", "hired", "declined"},
        ProposalStatus.INTERVIEWING: {"withdrawn", "refunded", "hired", "declined"},
    }.get(start, set())
    if to.value in allowed:
        assert v.move_proposal(start.value, to) is to
    else:
        with pytest.raises(ProposalNotActive) as refused:
            v.move_proposal(start.value, to)
        assert refused.value.details == {"status": start.value}
    assert start.live == (start in (ProposalStatus.ACTIVE, ProposalStatus.INTERVIEWING))


def test_usage_is_spends_refunds_and_captured_boosts() -> None:
    # R4 R26 R35: what "used" counts; a captured boost counts as its proposal's
    assert set(EntryKind.usage()) == {EntryKind.SPEND, EntryKind.REFUND, EntryKind.CAPTURE}
