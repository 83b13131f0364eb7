"""Dates of the Connects world: lot expiry, billing cycles and calendar months.

All inputs and outputs are aware datetimes; month and cycle boundaries are computed in
the account's time zone and returned in UTC.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connects.domain.errors import InvalidRequest

LOT_LIFETIME_YEARS = 1
EXPIRING_WINDOW = timedelta(days=30)


def zone(name: str) -> ZoneInfo:
    """The time zone called ``name``, or ``invalid_request``."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidRequest(f"unknown time zone {name!r}", field="timezone") from exc


def add_years(moment: datetime, years: int = LOT_LIFETIME_YEARS) -> datetime:
    """The same calendar date ``years`` later; Feb 29 becomes Feb 28 (R10)."""
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # Feb 29 in a year that has none
        return moment.replace(year=moment.year + years, day=28)


def lot_expiry(issued_at: datetime) -> datetime:
    """When a lot issued at ``issued_at`` expires: one year later, same date (R10)."""
    return add_years(issued_at, LOT_LIFETIME_YEARS)


def _clamped(year: int, month: int, day: int) -> date:
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def _add_month(year: int, month: int, n: int = 1) -> tuple[int, int]:
    index = year * 12 + (month - 1) + n
    return index // 12, index % 12 + 1


def cycle_start_in(year: int, month: int, anchor_day: int, tz: ZoneInfo) -> datetime:
    """The cycle boundary in a month: the anchor day clamped to the month (R8)."""
    local = datetime.combine(_clamped(year, month, anchor_day), time(0), tzinfo=tz)
    return local.astimezone(UTC)


def _cycle_month(anchor_day: int, cycle_at: datetime, tz: ZoneInfo) -> tuple[int, int]:
    """The billing month whose cycle day in ``tz`` is nearest to ``cycle_at``.

    Cycle days are at least 28 days apart and two zones' midnights at most 26 hours,
    so a cycle start computed in the account's former zone still names its own month.
    """
    local = cycle_at.astimezone(tz)
    months = [_add_month(local.year, local.month, n) for n in (-1, 0, 1)]
    return min(months, key=lambda ym: abs(cycle_start_in(ym[0], ym[1], anchor_day, tz) - cycle_at))


def cycle_key(anchor_day: int, cycle_at: datetime, tz: ZoneInfo) -> str:
    """``YYYY-MM``, the billing cycle starting at ``cycle_at`` (R8).

    A cycle is named by its billing month, not by its instant: the same cycle day seen
    from another time zone (after a zone change) keeps its name, so its grant and
    forfeit dedupe keys refuse a second application.
    """
    year, month = _cycle_month(anchor_day, cycle_at, tz)
    return f"{year:04d}-{month:02d}"


def cycle_after(anchor_day: int, cycle_at: datetime, tz: ZoneInfo) -> datetime:
    """The start of the cycle after the one starting at ``cycle_at``: the next billing
    month's cycle day, at midnight in ``tz`` (R8). Counting by billing month, never
    by instant, a zone change cannot put a second cycle day in the same month."""
    year, month = _add_month(*_cycle_month(anchor_day, cycle_at, tz))
    return cycle_start_in(year, month, anchor_day, tz)


def rezoned_cycle(anchor_day: int, cycle_at: datetime, old: ZoneInfo, new: ZoneInfo) -> datetime:
    """The same billing cycle's start after the account moves from ``old`` to ``new``:
    that cycle day at midnight in the new zone (R8). It moves by hours, never past the
    month's previous cycle, already applied."""
    year, month = _cycle_month(anchor_day, cycle_at, old)
    return cycle_start_in(year, month, anchor_day, new)


def month_start(moment: datetime, tz: ZoneInfo) -> datetime:
    """Midnight on the first of ``moment``'s calendar month in ``tz``, in UTC."""
    local = moment.astimezone(tz)
    return datetime(local.year, local.month, 1, tzinfo=tz).astimezone(UTC)


def next_month_start(moment: datetime, tz: ZoneInfo) -> datetime:
    """Midnight on the first of the month after ``moment``'s, in UTC."""
    local = moment.astimezone(tz)
    year, month = _add_month(local.year, local.month)
    return datetime(year, month, 1, tzinfo=tz).astimezone(UTC)


def month_key(moment: datetime, tz: ZoneInfo) -> str:
    """``YYYY-MM`` of ``moment``'s calendar month in ``tz``."""
    local = moment.astimezone(tz)
    return f"{local.year:04d}-{local.month:02d}"


def month_starts(first: datetime, last: datetime, tz: str) -> list[tuple[str, datetime]]:
    """``(YYYY-MM, its first instant in UTC)`` for each month of the zone ``tz`` from
    the one ``first`` falls in to the one ``last`` falls in (a month starts at local
    midnight on the 1st; where the clocks skip that hour, when they come back)."""
    local = zone(tz)
    at = first.astimezone(local)
    y, m = at.year, at.month
    end = last.astimezone(local)
    out: list[tuple[str, datetime]] = []
    while (y, m) <= (end.year, end.month):
        out.append((f"{y:04d}-{m:02d}", datetime(y, m, 1, tzinfo=local).astimezone(UTC)))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out
