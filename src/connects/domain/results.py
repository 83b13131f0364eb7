"""Results (R39): what the Connects bought, from the sums over proposals.

The database sums the proposals of each group (``services/views/results.py``: one
``GROUP BY`` statement); this turns those integer sums into R: the totals are the sum
of the groups' sums, and a ratio is taken from sums, never averaged. Connects and
cents stay integers; a ratio is a number rounded to 2 places, and money per hire is
whole cents rounded half up, ``None`` where there is nothing to divide by.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any

from connects.domain.vocabulary import EntryKind, OutcomeKind


class GroupBy(StrEnum):
    MEMBER = "member"
    BOOST = "boost"
    MONTH = "month"


BOOSTED, NOT_BOOSTED = "boosted", "not_boosted"

_USAGE = frozenset(EntryKind.usage())


def entry_figures(
    kind: str, amount: int, on_hold: bool, cost_cents: int
) -> tuple[int, int, int] | None:
    """What an entry naming a proposal adds to the proposal's figures (R39), as
    ``(price, boost, cost cents)``; ``None`` if it adds nothing.

    A spend, capture or refund moves the price (no hold) or the boost (its hold's
    entries) by what it took or gave back, and the cost by the cents it carried out of
    the lots (``cost_cents``, never negative) or back into them. (Boosted or not is
    fixed when the proposal is sent: a boost is placed with it or never, R35.)
    """
    if kind in _USAGE:
        cents = cost_cents if amount < 0 else -cost_cents
        return (0, -amount, cents) if on_hold else (-amount, 0, cents)
    return None


# What each outcome marks on its proposal (R38): the client looking at it in any way
# means it was viewed.
OUTCOME_MARKS: dict[OutcomeKind, tuple[str, ...]] = {
    OutcomeKind.VIEWED: ("viewed",),
    OutcomeKind.DECLINED: ("viewed",),
    OutcomeKind.INTERVIEWED: ("viewed", "interviewed"),
    OutcomeKind.HIRED: ("viewed", "hired"),
}


@dataclass(frozen=True, slots=True)
class Sums:
    """What the proposals of one group came to, summed."""

    proposals: int = 0
    connects: int = 0  # their prices, net of returns
    boost_connects: int = 0  # their captured bids, net of returns
    cost_cents: int = 0  # the cost of both, net of returns (R39 cost basis)
    views: int = 0  # proposals the client looked at
    interviews: int = 0
    hires: int = 0

    def __add__(self, other: Sums) -> Sums:
        return Sums(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(Sums)))


def _ratio(top: int, bottom: int) -> float | None:
    return None if bottom == 0 else round(top / bottom, 2)


def _cents(top: int, bottom: int) -> int | None:
    return None if bottom == 0 else (2 * top + bottom) // (2 * bottom)  # half up


def summarize(s: Sums, currency: str) -> dict[str, Any]:
    """R for these sums: counts, Connects spent (price and boosts apart), the outcomes,
    Connects per interview and per hire, and money per hire at cost."""
    spent = s.connects + s.boost_connects
    per_hire = _cents(s.cost_cents, s.hires)
    return {
        "proposals": s.proposals,
        "connects_spent": s.connects,
        "boost_connects_spent": s.boost_connects,
        "views": s.views,
        "interviews": s.interviews,
        "hires": s.hires,
        "connects_per_interview": _ratio(spent, s.interviews),
        "connects_per_hire": _ratio(spent, s.hires),
        "cost_per_hire": None if per_hire is None else {"amount": per_hire, "currency": currency},
        # beside R, for the dashboard: what was spent at cost, and per interview
        "cost_cents": s.cost_cents,
        "cost_per_interview_cents": _cents(s.cost_cents, s.interviews),
    }


def results(
    groups: Iterable[tuple[str, Sums]], currency: str, listed: bool = True
) -> dict[str, Any]:
    """``{totals: R, groups: [{key, ...R}]}`` from each group's sums (keys distinct):
    the totals from all of them, the groups in key order (none unless ``listed``)."""
    rows = sorted(groups, key=lambda g: g[0])
    total = sum((s for _, s in rows), Sums())
    return {
        "totals": summarize(total, currency),
        "groups": [{"key": k, **summarize(s, currency)} for k, s in rows] if listed else [],
        "currency": currency,
    }
