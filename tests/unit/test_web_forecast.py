"""The dashboard's run-out forecast: the pool's end at the last 30 days' net burn rate."""

from __future__ import annotations

from datetime import date

from connects.web.queries import forecast

TODAY = date(2026, 3, 1)


def test_runs_out_at_the_average_daily_net_spend() -> None:
    f = forecast(available_now=100, net_spent=300, today=TODAY)  # 10 a day
    assert (f.per_day, f.days_left, f.runs_out_on) == (10.0, 10, date(2026, 3, 11))


def test_not_at_this_rate_without_net_spending() -> None:
    assert forecast(50, 0, TODAY).runs_out_on is None
    assert forecast(50, -20, TODAY).runs_out_on is None  # refunds outweighed spends


def test_an_empty_pool_has_run_out_today() -> None:
    f = forecast(0, 30, TODAY)
    assert (f.runs_out_on, f.days_left) == (TODAY, 0)


def test_less_than_a_day_left_is_today() -> None:
    assert forecast(2, 150, TODAY).runs_out_on == TODAY
