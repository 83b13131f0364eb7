"""The dashboard's run-out forecast: the pool's end at the last 30 days' net burn rate."""

from __future__ import annotations

from datetime import date

from connects.web.forecast import Inflows, TopUpPlan, forecast

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


def test_the_next_cycles_grant_pushes_the_end_back() -> None:
    # 10 a day from 100 runs out on Mar 11; 80 arriving on Mar 5 buys 8 more days.
    grants = Inflows(grants=((date(2026, 3, 5), 80),))
    f = forecast(100, 300, TODAY, inflows=grants)
    assert (f.days_left, f.runs_out_on, f.counted) == (18, date(2026, 3, 19), ("grants",))


def test_a_grant_after_the_run_out_day_changes_nothing() -> None:
    f = forecast(100, 300, TODAY, inflows=Inflows(grants=((date(2026, 3, 20), 80),)))
    assert f.runs_out_on == date(2026, 3, 11)


def test_auto_top_up_buys_what_is_left_of_the_month_then_again_next_month() -> None:
    # 10 a day from 100; at 20 or below it buys 40, with 80 left in March and 100 a month.
    plan = TopUpPlan(
        threshold=20, per_topup=40, per_month=100, left=80, month_starts=(date(2026, 4, 1),)
    )
    f = forecast(100, 300, TODAY, inflows=Inflows(topup=plan))
    # March: 100 + 40 + 40 lasts 18 days (to Mar 19); nothing left until Apr 1, so it runs
    # out on Mar 19 with auto top-up counted.
    assert (f.days_left, f.runs_out_on, f.counted) == (18, date(2026, 3, 19), ("auto top-up",))


def test_target_mode_buys_up_to_the_target() -> None:
    plan = TopUpPlan(
        threshold=20, per_topup=40, per_month=1000, left=60, month_starts=(), target=50
    )
    # At 20 it buys 30 (up to 50), then again 30: 60 in all, 160 Connects for 16 days.
    assert forecast(100, 300, TODAY, inflows=Inflows(topup=plan)).days_left == 16


def test_enough_coming_in_does_not_run_out_within_a_year() -> None:
    months = [(2026, m) for m in range(3, 13)] + [(2027, 1), (2027, 2)]
    monthly = tuple((date(y, m, 5), 400) for y, m in months)  # 400 a month, 300 spent
    f = forecast(100, 300, TODAY, inflows=Inflows(grants=monthly))
    assert f.runs_out_on is None and f.per_day == 10.0


def test_a_grant_due_later_today_counts() -> None:
    f = forecast(100, 300, TODAY, inflows=Inflows(grants=((TODAY, 80),)))
    assert f.runs_out_on == date(2026, 3, 19)
