"""What triggers an auto top-up and how much it buys, on SQLite and PostgreSQL
(R20, R21, R23).

Every agency here is on agency-plus: 80 Connects granted at opening, 100 cents a
Connect. The top-up manager buys with the account's default card.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connects.domain.clock import SimulatedClock
from connects.domain.commands import BuyConnects, UpdateAccount
from connects.services import cycles, topup_runner, views
from connects.services.context import Context
from tests.integration.topup_support import (
    agency,
    all_charges,
    charges,
    events_of,
    purchase_entries,
    rows,
)


def test_balance_hits_zero_buys_one_top_up_of_40(any_ctx: Context) -> None:
    # R20: the balance hits zero -> one top-up of per_topup, bought by the business
    # manager with the default card (R6), credited as a purchase lot (R10), R23.
    a = agency(any_ctx)
    result = a.spend(80)
    assert result["balance"] == 0  # the proposal's own answer, before the top-up
    assert a.available() == 40
    [t] = rows(any_ctx, a.id)
    assert (t.status, t.trigger, t.quantity, t.amount_cents, t.currency) == (
        "succeeded",
        "balance_zero",
        40,
        4000,
        "USD",
    )
    assert t.purchase_id == topup_runner.purchase_id_for(t.id)
    assert charges(any_ctx, t.purchase_id) == 1
    [entry] = purchase_entries(any_ctx, a.id)
    assert (entry.amount, entry.topup_id, entry.purchase_id) == (40, t.id, t.purchase_id)
    assert (entry.actor_kind, entry.actor_id) == ("business_manager", "topup-manager")
    [ok] = events_of(any_ctx, a.id, "topup_succeeded")
    assert (ok["topup_id"], ok["quantity"], ok["amount_cents"]) == (t.id, 40, 4000)
    assert events_of(any_ctx, a.id, "topup_failed") == []
    # Spending from 40 down to 1 crosses nothing; the pool is not empty.
    a.spend(39)
    assert len(rows(any_ctx, a.id)) == 1
    # Running the worker afterwards finds nothing to do and charges nothing more.
    assert topup_runner.run_pending(any_ctx) == 0
    assert all_charges(any_ctx) == 1


def test_nothing_happens_while_auto_top_up_is_off(any_ctx: Context) -> None:
    a = agency(any_ctx, enabled=False)
    a.spend(80)
    assert rows(any_ctx, a.id) == []
    assert a.available() == 0


def test_monthly_limit_cuts_then_skips_with_one_event(any_ctx: Context) -> None:
    # R21: per_topup cut to what is left of the month; with nothing left nothing is
    # bought and monthly_limit_reached is sent once that month.
    a = agency(any_ctx, per_month=100)
    a.spend(80)  # 80 -> 0: buys 40 (40 of 100)
    a.spend(40)  # 40 -> 0: buys 40 (80 of 100)
    a.spend(40)  # 40 -> 0: buys 20, what is left
    assert [(t.status, t.quantity) for t in rows(any_ctx, a.id)] == [
        ("succeeded", 40),
        ("succeeded", 40),
        ("succeeded", 20),
    ]
    a.spend(20)  # 20 -> 0: nothing left
    last = rows(any_ctx, a.id)[-1]
    assert (last.status, last.quantity, last.reason, last.amount_cents) == (
        "skipped",
        0,
        "monthly_limit_reached",
        0,
    )
    assert a.available() == 0
    # A manual purchase and another trip to zero: skipped again, still one event.
    any_ctx.handle(BuyConnects(a.owner, a.id, 5, "default"))
    a.spend(5)
    assert [t.status for t in rows(any_ctx, a.id)][-2:] == ["skipped", "skipped"]
    [event] = events_of(any_ctx, a.id, "monthly_limit_reached")
    assert (event["month"], event["per_month"], event["bought_this_month"]) == ("2026-01", 100, 100)
    assert all_charges(any_ctx) == 4  # three top-ups and the manual purchase


def test_new_month_in_the_accounts_time_zone_resets_the_limit(
    any_ctx: Context, clock: SimulatedClock
) -> None:
    # R21: the month is the calendar month in the account's time zone.
    a = agency(any_ctx, per_month=40)
    any_ctx.handle(UpdateAccount(a.owner, a.id, timezone="Asia/Tokyo"))
    a.spend(80)  # buys the month's 40
    a.spend(40)  # skipped: limit reached
    assert [t.status for t in rows(any_ctx, a.id)] == ["succeeded", "skipped"]
    # 2026-01-31 15:00 UTC is February 1st in Tokyo (UTC+9), still January in UTC.
    clock.set(datetime(2026, 1, 31, 15, 0, tzinfo=UTC))
    any_ctx.handle(BuyConnects(a.owner, a.id, 5, "default"))
    a.spend(5)
    last = rows(any_ctx, a.id)[-1]
    assert (last.status, last.quantity, last.month) == ("succeeded", 40, "2026-02")
    ov = views.overview(any_ctx, a.owner, a.id)
    assert ov["auto_topup"]["bought_this_month"] == 40
    assert ov["auto_topup"]["left_this_month"] == 0


def test_threshold_above_zero(any_ctx: Context) -> None:
    # R20 beyond the seed: top up when the balance falls to T or below.
    a = agency(any_ctx, threshold=10)
    a.spend(65)  # 80 -> 15: above T
    assert rows(any_ctx, a.id) == []
    a.spend(5)  # 15 -> 10: at T
    [t] = rows(any_ctx, a.id)
    assert (t.status, t.trigger, t.quantity) == ("succeeded", "threshold", 40)
    assert a.available() == 50


def test_target_mode_buys_up_to_the_target(any_ctx: Context) -> None:
    # R20 beyond the seed: target mode buys what brings the balance to the target.
    a = agency(any_ctx, threshold=10, mode="target", target=100)
    a.spend(75)  # 80 -> 5: buys 95
    [t] = rows(any_ctx, a.id)
    assert (t.status, t.quantity, t.amount_cents) == ("succeeded", 95, 9500)
    assert a.available() == 100


def test_expiry_that_empties_the_pool_triggers_a_top_up(
    any_ctx: Context, clock: SimulatedClock
) -> None:
    # R20 with R10/R12: expiry bringing the balance to zero is a trigger too; the
    # decision is executed once the sweep's transaction has committed, as every other
    # writer's is, and nothing is left for the pending top-ups job.
    a = agency(any_ctx)
    clock.advance(timedelta(days=366))
    assert cycles.sweep_expired(any_ctx) == 80
    [t] = rows(any_ctx, a.id)
    assert (t.status, t.trigger) == ("succeeded", "balance_zero")
    assert topup_runner.run_pending(any_ctx) == 0
    assert a.available() == 40
