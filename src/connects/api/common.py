"""Pieces every router shares: path parameters, documented error answers, paging."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query

from connects.api.schemas import ErrorBody
from connects.domain.cursors import number_cursor

API_PREFIX = "/v1"

_ID = {"min_length": 1, "max_length": 64, "pattern": r"^[A-Za-z0-9_\-]+$"}

AccountId = Annotated[str, Path(description="An account id (acct_...).", **_ID)]
UserId = Annotated[str, Path(description="A person's id (usr_...).", **_ID)]
JobId = Annotated[str, Path(description="A job id (job_...).", **_ID)]
ProposalId = Annotated[str, Path(description="A proposal id (prop_...).", **_ID)]
InvitationId = Annotated[str, Path(description="An invitation id (inv_...).", **_ID)]
GrantId = Annotated[str, Path(description="A grant id.", **_ID)]
BillingMethodId = Annotated[str, Path(description="A billing method id (bm_...).", **_ID)]
Limit = Annotated[int, Query(ge=1, le=1000, description="Items per page.")]
Cursor = Annotated[
    str | None,
    Query(max_length=200, description="The `next_cursor` of the previous page."),
]


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# Documented on every route under /v1 (the conventions of API.md).
READ_ERRORS: dict[int | str, dict[str, Any]] = {
    401: _error("No token, or one nobody holds (`unauthorized`)."),
    403: _error("The caller may see this but not do it (`forbidden`)."),
    404: _error("No such object, or the caller may not see it (`not_found`)."),
    422: _error("Bad input (`invalid_request`, `details.fields` names the fields)."),
}
WRITE_ERRORS: dict[int | str, dict[str, Any]] = {
    **READ_ERRORS,
    409: _error(
        "Refused by a rule (`insufficient_connects`, `price_changed`, ...), or the "
        "Idempotency-Key was reused with another body (`idempotency_key_reused`)."
    ),
}
RATE_LIMITED: dict[int | str, dict[str, Any]] = {
    429: _error("Too many attempts (`rate_limited`); the `Retry-After` header says when."),
}
PAYMENT_ERRORS: dict[int | str, dict[str, Any]] = {
    **WRITE_ERRORS,
    402: _error("The card was declined; nothing was bought (`payment_declined`)."),
}


def page(items: list[Any], limit: int, cursor: str | None) -> dict[str, Any]:
    """One page of an in-memory list (short lists: members, cards, grants)."""
    start = number_cursor(cursor, max_digits=9) or 0  # an offset into the list
    chunk = items[start : start + limit]
    more = start + limit < len(items)
    return {"items": chunk, "next_cursor": str(start + limit) if more else None}
