"""Results (R39): what the Connects bought, summed over proposals.

Plain Python over one :class:`Sent` per proposal (what the read side loads): totals
and groups by member, by boosted or not, by month. Connects and cents stay integers;
a ratio is a number rounded to 2 places, and money per hire is whole cents rounded
half up, ``None`` where there is nothing to divide by.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class GroupBy(StrEnum):
    MEMBER = "member"
    BOOST = "boost"
    MONTH = "month"


BOOSTED, NOT_BOOSTED = "boosted", "not_boosted"


@dataclass(frozen=True, slots=True)
class Sent:
    """One proposal sent in the period, and what it came to."""

    member_id: str
    month: str  # YYYY-MM of when it was sent, in the account's time zone
    boosted: bool
    connects: int  # its price, net of returns
    boost_connects: int  # its captured bid, net of returns
    cost_cents: int  # the cost of both, net of returns (R39 cost basis)
    viewed: bool
    interviewed: bool
    hired: bool


def _ratio(top: int, bottom: int) -> float | None:
    return None if bottom == 0 else round(top / bottom, 2)


def _cents(top: int, bottom: int) -> int | None:
    return None if bottom == 0 else (2 * top + bottom) // (2 * bottom)  # half up


def summarize(sent: Iterable[Sent], currency: str) -> dict[str, Any]:
    """R for these proposals: counts, Connects spent (price and boosts apart), the
    outcomes, Connects per interview and per hire, and money per hire at cost."""
    rows = list(sent)
    connects = sum(s.connects for s in rows)
    boost = sum(s.boost_connects for s in rows)
    cost = sum(s.cost_cents for s in rows)
    interviews = sum(s.interviewed for s in rows)
    hires = sum(s.hired for s in rows)
    per_hire = _cents(cost, hires)
    return {
        "proposals": len(rows),
        "connects_spent": connects,
        "boost_connects_spent": boost,
        "views": sum(s.viewed for s in rows),
        "interviews": interviews,
        "hires": hires,
        "connects_per_interview": _ratio(connects + boost, interviews),
        "connects_per_hire": _ratio(connects + boost, hires),
        "cost_per_hire": None if per_hire is None else {"amount": per_hire, "currency": currency},
        # beside R, for the dashboard: what was spent at cost, and per interview
        "cost_cents": cost,
        "cost_per_interview_cents": _cents(cost, interviews),
    }


_KEYS: dict[GroupBy, Callable[[Sent], str]] = {
    GroupBy.MEMBER: lambda s: s.member_id,
    GroupBy.BOOST: lambda s: BOOSTED if s.boosted else NOT_BOOSTED,
    GroupBy.MONTH: lambda s: s.month,
}


def results(sent: Iterable[Sent], group_by: GroupBy | None, currency: str) -> dict[str, Any]:
    """``{totals: R, groups: [{key, ...R}]}``, groups in key order (none unless asked)."""
    rows = list(sent)
    groups: list[dict[str, Any]] = []
    if group_by is not None:
        key = _KEYS[group_by]
        by: dict[str, list[Sent]] = {}
        for s in rows:
            by.setdefault(key(s), []).append(s)
        groups = [{"key": k, **summarize(by[k], currency)} for k in sorted(by)]
    return {"totals": summarize(rows, currency), "groups": groups, "currency": currency}
