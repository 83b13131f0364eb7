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


def next_cycle_start(anchor_day: int, after: datetime, tz: ZoneInfo) -> datetime:
    """The first billing-cycle boundary strictly after ``after`` (R8).

    The cycle day is the subscription's start day, clamped to the month's last day
    (Jan 31 -> Feb 28/29), at midnight in the account's time zone.
    """
    local = after.astimezone(tz)
    year, month = local.year, local.month
    for _ in range(3):
        candidate = cycle_start_in(year, month, anchor_day, tz)
        if candidate > after:
            return candidate
        year, month = _add_month(year, month)
    raise AssertionError("unreachable: a cycle boundary falls in every month")


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
