"""Lots: every credit is a lot with its own expiry; spending draws them down.

Pure functions over :class:`Lot` values. The storage layer loads an account's open
lots under the account's lock, asks these functions what to take, and writes the
answer back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from connects.domain.calendar import EXPIRING_WINDOW
from connects.domain.errors import InsufficientConnects
from connects.domain.vocabulary import LotSource

# Where a lot came from. Only ``grant`` lots are subject to the rollover cap (R9).
SOURCES = tuple(LotSource)


@dataclass(frozen=True, slots=True)
class Lot:
    id: str
    source: str
    issued_at: datetime
    expires_at: datetime
    remaining: int
    cost_left: int = 0  # R39: cents of cost still in the lot's remaining Connects

    def live(self, now: datetime) -> bool:
        """Spendable now: not expired (R12) and not used up."""
        return self.remaining > 0 and self.expires_at > now


Take = tuple[str, int]  # (lot id, Connects taken from it)


def moved(
    lots: dict[str, Lot], takes: Sequence[Take], costs: Sequence[int], sign: int
) -> dict[str, Lot] | None:
    """The open lots by id once ``takes`` (with their cents) are taken out of them
    (``sign`` -1) or given back (+1); None when a give-back reaches a lot that was
    used up, which is not among them: read the lots again."""
    after = dict(lots)
    for (lot_id, take), cost in zip(takes, costs, strict=True):
        lot = after.get(lot_id)
        if lot is None:
            if sign > 0:
                return None
            continue
        left = lot.remaining + sign * take
        if left:
            after[lot_id] = replace(lot, remaining=left, cost_left=lot.cost_left + sign * cost)
        else:
            del after[lot_id]
    return after


def cost_share(lot: Lot, take: int) -> int:
    """The cents of cost that ``take`` of the lot's remaining Connects carry (R39).

    The floor of the lot's cost left, pro rata; the draw that empties the lot takes
    all that is left, so a lot's cost is never lost nor made up, and is never below
    zero: ``0 <= share <= cost_left``.
    """
    if take <= 0 or lot.remaining <= 0:
        return 0
    if take >= lot.remaining:
        return lot.cost_left
    return lot.cost_left * take // lot.remaining


def draw_costs(lots: Iterable[Lot], takes: Sequence[Take]) -> list[int]:
    """The cents each of ``takes`` carries out of its lot (:func:`cost_share`), in
    order; a second draw on the same lot sees the first one's effect."""
    by_id = {lot.id: lot for lot in lots}
    costs: list[int] = []
    for lot_id, take in takes:
        lot = by_id[lot_id]
        cost = cost_share(lot, take)
        costs.append(cost)
        by_id[lot_id] = Lot(
            lot.id,
            lot.source,
            lot.issued_at,
            lot.expires_at,
            lot.remaining - take,
            lot.cost_left - cost,
        )
    return costs


def spending_order(lot: Lot) -> tuple[datetime, datetime, str]:
    """Soonest expiry first, then the oldest (R11)."""
    return (lot.expires_at, lot.issued_at, lot.id)


def available(lots: Iterable[Lot], now: datetime, held: int = 0) -> int:
    """Connects spendable now: what is left in unexpired lots (R12), less what open
    holds keep (R34; the same rule as :func:`connects.db.measures.available`)."""
    return sum(lot.remaining for lot in lots if lot.live(now)) - held


def allocate(lots: Iterable[Lot], amount: int, now: datetime, held: int = 0) -> list[Take]:
    """Which lots pay for ``amount`` Connects, soonest-expiring first (R11).

    Raises :class:`InsufficientConnects` when the live lots hold less than ``amount``
    beside the ``held`` Connects (R34): the balance never goes below zero and a hold
    is never spent by anyone but its capture.
    """
    if amount < 0:
        raise ValueError("amount must be >= 0")
    live = [lot for lot in lots if lot.live(now)]
    have = sum(lot.remaining for lot in live) - held
    if have < amount:
        raise InsufficientConnects(
            f"this needs {amount} Connects and {max(have, 0)} are available",
            required=amount,
            available=max(have, 0),
        )
    takes: list[Take] = []
    need = amount
    for lot in sorted(live, key=spending_order):
        if need == 0:
            break
        take = min(need, lot.remaining)
        takes.append((lot.id, take))
        need -= take
    return takes


def expired(lots: Iterable[Lot], now: datetime) -> list[Take]:
    """What the expiry sweep removes: everything left in lots expired by ``now``."""
    return [(lot.id, lot.remaining) for lot in lots if lot.remaining > 0 and lot.expires_at <= now]


def rollover_forfeit(
    lots: Sequence[Lot],
    cap: int | None,
    now: datetime,
    refunded: Mapping[str, int] | None = None,
) -> list[Take]:
    """Plan-grant Connects above the rollover cap, forfeited before a new grant (R9).

    Only ``grant`` lots count and only they are cut; purchased and rewarded Connects
    never are. Refunded Connects go back into the grant lots they came from (R15) but
    are never forfeited by rollover either (R9): ``refunded`` maps a lot id to the
    Connects refunded into it, and up to that much of what is left in the lot is kept
    out of the count and the cut. The cut takes from the soonest-expiring grant lots
    first. ``cap=None`` means everything rolls over.
    """
    if cap is None:
        return []
    kept = refunded or {}
    grants = [
        Lot(
            lot.id,
            lot.source,
            lot.issued_at,
            lot.expires_at,
            lot.remaining - min(lot.remaining, kept.get(lot.id, 0)),
        )
        for lot in lots
        if lot.source == LotSource.GRANT and lot.live(now)
    ]
    excess = sum(lot.remaining for lot in grants) - cap
    if excess <= 0:
        return []
    return allocate(grants, excess, now)


def expires_soon(expires_at: datetime, now: datetime) -> bool:
    """Whether a live lot's expiry falls inside the 30-day window, (now, now + 30 days]
    (R12; the same window as :func:`connects.db.measures.expiring`)."""
    return now < expires_at <= now + EXPIRING_WINDOW


def expiring_soon(lots: Iterable[Lot], now: datetime) -> list[Lot]:
    """Live lots whose expiry falls in (now, now + 30 days] (R12), soonest first."""
    return sorted(
        (lot for lot in lots if lot.live(now) and expires_soon(lot.expires_at, now)),
        key=spending_order,
    )
