"""Reads of the marketplace: a job and a proposal as they stand."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from connects.db.schema import jobs, proposals
from connects.domain.errors import NotFound
from connects.services.context import Context


def job(ctx: Context, job_id: str) -> dict[str, Any]:
    """A job as anyone on the marketplace sees it: title, live price, status."""
    with ctx.db.read() as conn:
        row = conn.execute(select(jobs).where(jobs.c.id == job_id)).one_or_none()
    if row is None:
        raise NotFound("no such job", job_id=job_id)
    return {
        "id": row.id,
        "client_id": row.client_id,
        "title": row.title,
        "connects_required": row.connects_required,
        "status": row.status,
        "hired_proposal_id": row.hired_proposal_id,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def proposal_row(conn: Connection, proposal_id: str, account_id: str | None = None) -> Any:
    """The proposal's row (``not_found`` if none, or not of ``account_id``).

    Without ``account_id`` it is found by its id alone, as a route ``/proposals/{id}``
    names it: a read on every shard, the one way in that does not know the account
    (docs/architecture.md); every read after it names the account of the row found."""
    query = select(proposals).where(proposals.c.id == proposal_id)
    if account_id is None:
        query = query.execution_options(all_accounts=True)  # by id alone: every shard
    else:
        query = query.where(proposals.c.account_id == account_id)
    row = conn.execute(query).one_or_none()
    if row is None:
        raise NotFound("no such proposal", proposal_id=proposal_id)
    return row


def proposal_fields(row: Any) -> dict[str, Any]:
    """What every answer about a proposal says of it."""
    return {
        "id": row.id,
        "status": row.status,
        "connects_spent": row.connects_spent,
        "account_id": row.account_id,
        "job_id": row.job_id,
        "freelancer_id": row.freelancer_id,
        "submitted_by": row.submitted_by,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def proposal(ctx: Context, proposal_id: str) -> dict[str, Any]:
    """A proposal's current state, found by its id alone (callers check who may see it)."""
    with ctx.db.read() as conn:
        return proposal_fields(proposal_row(conn, proposal_id))
