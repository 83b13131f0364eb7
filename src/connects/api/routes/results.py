"""Results (R39): what the Connects bought, per member, boosted or not, at cost."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response

from connects.api.answers import AnsweredRoute
from connects.api.common import API_PREFIX, READ_ERRORS, AccountId
from connects.api.deps import AccountActor, CtxDep
from connects.api.schemas import Results
from connects.services.views import results as results_view

router = APIRouter(prefix=API_PREFIX, tags=["results"], route_class=AnsweredRoute)


@router.get(
    "/accounts/{account_id}/results",
    response_model=Results,
    responses={
        **READ_ERRORS,
        200: {
            "description": "Totals and groups (JSON), or the groups and a total row as CSV.",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        },
    },
)
def get_results(
    account_id: AccountId,
    ctx: CtxDep,
    who: AccountActor,
    since: Annotated[
        datetime | None,
        Query(
            alias="from", description="Proposals sent at or after (default: 30 days before `to`)."
        ),
    ] = None,
    until: Annotated[
        datetime | None, Query(alias="to", description="Proposals sent before (default: now).")
    ] = None,
    group_by: Annotated[
        Literal["member", "boost", "month"] | None, Query(description="How to group.")
    ] = None,
    format: Annotated[
        Literal["json", "csv"], Query(description="`csv` gives the groups and a total row.")
    ] = "json",
) -> Any:
    """Proposals sent in the period and what their Connects bought: views, interviews,
    hires, Connects per interview and per hire, money per hire at cost (R39). The owner
    and admins see every member; a manager or a member their own proposals."""
    answer: dict[str, Any] = results_view.account_results(
        ctx, who, account_id, since=since, until=until, group_by=group_by
    )
    if format == "csv":
        return Response(
            results_view.results_csv(answer),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{account_id}-results.csv"'},
        )
    return answer
