"""Boosted proposals and the availability badge, as plain rules (R35, R37).

A job's boost auction ranks its bids highest first, then earliest; the top
:data:`TOP` are boosted. The badge's weekly price is charged in daily instalments of
whole Connects, the remainder on the last days.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

TOP = 4  # R35: a job's boosted proposals
DEFAULT_MAX_BID = 100  # R35, configurable
DEFAULT_AUCTION_DAYS = 7  # R35: the auction closes 7 days after posting, configurable
DEFAULT_BADGE_PRICE = 7  # R37: Connects a week, set by the operator
BADGE_DAYS = 7


@dataclass(frozen=True, slots=True)
class Bid:
    """One boost in a job's auction: its hold, the bid and when it reached it."""

    hold_id: str
    amount: int
    bid_at: datetime


def ranking_key(bid: Bid) -> tuple[int, datetime, str]:
    """Highest first, then earliest, then by id (R35)."""
    return (-bid.amount, bid.bid_at, bid.hold_id)


def top(bids: Iterable[Bid]) -> list[Bid]:
    """The boosted bids of an auction, in rank order (R35)."""
    return sorted(bids, key=ranking_key)[:TOP]


def rank_of(bids: Iterable[Bid], hold_id: str) -> int | None:
    """A bid's place in its auction, 1 first (None if it is not bidding)."""
    for place, bid in enumerate(sorted(bids, key=ranking_key), start=1):
        if bid.hold_id == hold_id:
            return place
    return None


def auction_closes_at(posted_at: datetime, days: int = DEFAULT_AUCTION_DAYS) -> datetime:
    """When a job's auction closes if nobody is hired first (R35)."""
    return posted_at + timedelta(days=days)


def auction_open(closes_at: datetime | None, closed_at: datetime | None, now: datetime) -> bool:
    """Whether bids may be placed or raised now (R35)."""
    return closed_at is None and closes_at is not None and now < closes_at


def instalments(weekly: int) -> list[int]:
    """The weekly price spread over 7 days in whole Connects, the remainder on the last
    days: 7 -> [1]*7; 10 -> [1, 1, 1, 1, 2, 2, 2] (R37)."""
    if weekly < 0:
        raise ValueError("a weekly price is at least 0")
    base, extra = divmod(weekly, BADGE_DAYS)
    return [base + (1 if day >= BADGE_DAYS - extra else 0) for day in range(BADGE_DAYS)]
