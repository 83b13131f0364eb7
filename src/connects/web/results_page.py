"""The dashboard's Results page (R39): the funnel sent -> viewed -> interviewed ->
hired over a chosen period, Connects and money per interview and per hire by member
and boosted or not. The owner and admins see every member; a manager or a member
sees their own line (the read the API serves, ``services/views/results.py``)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request, Response

from connects.domain.errors import ConnectsError, InvalidRequest
from connects.services import views
from connects.services.context import Context
from connects.services.views import results as results_view
from connects.web.viewer import CtxDep, DashboardRoute, Viewer, ViewerDep, error_view, render

router = APIRouter(route_class=DashboardRoute, include_in_schema=False)
STAGES = ("Sent", "Viewed", "Interviewed", "Hired")


def _day(text: str, name: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(f"{name} must be a date (YYYY-MM-DD)", field=name) from None


def _at(day: date | None) -> datetime | None:
    return None if day is None else datetime(day.year, day.month, day.day, tzinfo=UTC)


def results(ctx: Context, viewer: Viewer, since: str, until: str) -> dict[str, Any]:
    """The page's data; ``to`` is a day included in the period (the API's ``to`` is
    the start of the next day)."""
    start = _at(_day(since, "from"))
    last = _day(until, "to")
    end = _at(last + timedelta(days=1)) if last is not None else None
    by_member = results_view.account_results(
        ctx, viewer.actor, viewer.account_id, since=start, until=end, group_by="member"
    )
    by_boost = results_view.account_results(
        ctx, viewer.actor, viewer.account_id, since=start, until=end, group_by="boost"
    )
    names = views.names(ctx, [g["key"] for g in by_member["groups"]])
    t = by_member["totals"]
    return {
        "totals": t,
        "members": [{**g, "name": names.get(g["key"], g["key"])} for g in by_member["groups"]],
        "boosts": {g["key"]: g for g in by_boost["groups"]},
        "currency": by_member["currency"],
        "funnel": {
            "labels": list(STAGES),
            "counts": [t["proposals"], t["views"], t["interviews"], t["hires"]],
        },
        "period": {
            "from": by_member["from"].date().isoformat(),
            "to": (by_member["to"] - timedelta(microseconds=1)).date().isoformat(),
        },
    }


@router.get("/results")
def results_page(request: Request, ctx: CtxDep, viewer: ViewerDep) -> Response:
    """What the Connects bought: the funnel, per member, boosted or not (R39)."""
    # ?from=&to= (``from`` is a Python keyword: read from the query string itself)
    since = request.query_params.get("from", "")
    until = request.query_params.get("to", "")
    try:
        data = results(ctx, viewer, since, until)
    except ConnectsError as exc:
        data = {**results(ctx, viewer, "", ""), "errors": {"period": error_view(exc)}}
        return render(request, "results.html", data, viewer=viewer, status_code=422)
    return render(request, "results.html", data, viewer=viewer)
