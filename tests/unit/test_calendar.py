"""Dates: lot expiry (R10), billing-cycle days (R8) and calendar months in a time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connects.domain.calendar import (
    EXPIRING_WINDOW,
    add_years,
    cycle_after,
    cycle_key,
    cycle_start_in,
    lot_expiry,
    month_key,
    month_start,
    next_month_start,
    rezoned_cycle,
    zone,
)
from connects.domain.errors import InvalidRequest

UTC_Z = zone("UTC")
NY = zone("America/New_York")
TOKYO = zone("Asia/Tokyo")
LA = zone("America/Los_Angeles")


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


# R10: a lot expires one year after issue, on the same calendar date and time.
@pytest.mark.parametrize(
    ("issued", "expires"),
    [
        (at(2026, 1, 15, 9, 0), at(2027, 1, 15, 9, 0)),
        (at(2026, 12, 31, 23, 59), at(2027, 12, 31, 23, 59)),
        (at(2027, 3, 1, 0, 0), at(2028, 3, 1, 0, 0)),
        (at(2028, 2, 28, 12, 0), at(2029, 2, 28, 12, 0)),
    ],
)
def test_lot_expires_one_year_later_same_date(issued: datetime, expires: datetime) -> None:
    assert lot_expiry(issued) == expires  # R10


def test_lot_issued_on_feb_29_expires_feb_28() -> None:
    # R10: Feb 29 -> Feb 28 of the next year
    assert lot_expiry(at(2028, 2, 29, 10, 30)) == at(2029, 2, 28, 10, 30)


def test_add_years_keeps_feb_29_when_the_target_year_has_one() -> None:
    assert add_years(at(2028, 2, 29), 4) == at(2032, 2, 29)
    assert add_years(at(2028, 2, 29), 1) == at(2029, 2, 28)


# R8: the cycle day is the subscription's start day, clamped to the month's last day.
def test_cycle_day_31_clamps_to_feb_28_in_a_common_year() -> None:
    assert cycle_start_in(2026, 2, 31, UTC_Z) == at(2026, 2, 28)  # R8
    assert cycle_after(31, at(2026, 1, 31), UTC_Z) == at(2026, 2, 28)  # R8


def test_cycle_day_31_clamps_to_feb_29_in_a_leap_year() -> None:
    assert cycle_after(31, at(2028, 1, 31), UTC_Z) == at(2028, 2, 29)  # R8


def test_clamping_does_not_stick_after_a_short_month() -> None:
    # R8: Jan 31 -> Feb 28 -> Mar 31 -> Apr 30 -> May 31
    moments = [at(2026, 1, 31)]
    for _ in range(4):
        moments.append(cycle_after(31, moments[-1], UTC_Z))
    assert moments[1:] == [at(2026, 2, 28), at(2026, 3, 31), at(2026, 4, 30), at(2026, 5, 31)]


def test_the_next_cycle_is_the_next_billing_months() -> None:
    # R8: the first cycle starts when the account opens, on its cycle day
    assert cycle_after(15, at(2026, 1, 15), UTC_Z) == at(2026, 2, 15)
    assert cycle_after(15, at(2026, 1, 15, 9), UTC_Z) == at(2026, 2, 15)
    assert cycle_after(15, at(2026, 12, 15), UTC_Z) == at(2027, 1, 15)
    assert cycle_after(1, at(2026, 1, 1, 5), NY) == at(2026, 2, 1, 5)


def test_cycle_boundary_is_midnight_in_the_accounts_zone() -> None:
    # R8: New York midnight is 05:00 UTC in winter, 04:00 UTC in summer
    assert cycle_start_in(2026, 1, 15, NY) == at(2026, 1, 15, 5)
    assert cycle_start_in(2026, 7, 15, NY) == at(2026, 7, 15, 4)


def test_a_cycle_is_named_by_its_billing_month() -> None:
    # R8: the key of one cycle; Tokyo's Mar 1 is still Feb 28 in UTC
    assert cycle_key(15, at(2026, 1, 15, 9), UTC_Z) == "2026-01"
    assert cycle_key(1, at(2026, 2, 28, 15), TOKYO) == "2026-03"
    assert cycle_key(31, at(2026, 2, 28), UTC_Z) == "2026-02"


def test_a_cycle_day_seen_from_another_zone_keeps_its_name_and_successor() -> None:
    # R8: Tokyo's Mar 1 and Mar 15 cycle days, read in Los Angeles (a day behind in
    # UTC terms: Feb 28 / Mar 14 there), are still the March cycles
    for anchor, tokyo_day in ((1, at(2026, 2, 28, 15)), (15, at(2026, 3, 14, 15))):
        assert cycle_key(anchor, tokyo_day, LA) == "2026-03"
        assert cycle_after(anchor, tokyo_day, LA) == cycle_start_in(2026, 4, anchor, LA)


def test_a_zone_change_moves_the_pending_cycle_day_by_hours() -> None:
    # R8: the same billing day, at midnight in the new zone
    assert rezoned_cycle(15, at(2026, 2, 14, 15), TOKYO, LA) == at(2026, 2, 15, 8)
    assert rezoned_cycle(15, at(2026, 2, 15, 8), LA, TOKYO) == at(2026, 2, 14, 15)
    assert rezoned_cycle(1, at(2026, 2, 28, 15), TOKYO, LA) == at(2026, 3, 1, 8)
    assert rezoned_cycle(31, at(2026, 2, 28, 5), NY, UTC_Z) == at(2026, 2, 28)


def test_month_boundaries_in_a_time_zone() -> None:
    # 2026-02-01 02:00 UTC is still January 31 in New York, already Feb 1 in Tokyo
    moment = at(2026, 2, 1, 2)
    assert month_start(moment, NY) == at(2026, 1, 1, 5)
    assert month_key(moment, NY) == "2026-01"
    assert next_month_start(moment, NY) == at(2026, 2, 1, 5)
    assert month_start(moment, TOKYO) == at(2026, 1, 31, 15)
    assert month_key(moment, TOKYO) == "2026-02"
    assert month_start(moment, UTC_Z) == at(2026, 2, 1)
    assert month_key(moment, UTC_Z) == "2026-02"


def test_next_month_start_rolls_the_year() -> None:
    assert next_month_start(at(2026, 12, 31, 23), UTC_Z) == at(2027, 1, 1)
    assert month_key(at(2026, 12, 31, 23), UTC_Z) == "2026-12"


def test_unknown_time_zone_is_invalid_request() -> None:
    with pytest.raises(InvalidRequest) as info:
        zone("Mars/Olympus_Mons")
    assert info.value.code == "invalid_request"
    assert info.value.details == {"field": "timezone"}


def test_expiring_window_is_thirty_days() -> None:
    assert timedelta(days=30) == EXPIRING_WINDOW  # R12
