"""Just-in-time auto top-up for a proposal, on SQLite and PostgreSQL (R22, R24).

Every agency here is on agency-plus: 80 Connects granted at opening, 100 cents a
Connect. The top-up manager buys with the account's default card.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from connects.domain.clock import SimulatedClock
from connects.domain.errors import InsufficientConnects
from connects.services.context import Context
from tests.integration.topup_support import agency, all_charges, events_of, rows


def test_just_in_time_lets_a_proposal_through(any_ctx: Context) -> None:
    # R22: the proposal needs more than the balance; the top-up runs first and the
    # proposal goes through in the same request, in one purchase.
    a = agency(any_ctx, just_in_time=True)
    result = a.spend(100)  # 80 there, 100 needed: buys max(40, 20) = 40
    assert result["status"] == "active"
    [t] = rows(any_ctx, a.id)
    assert (t.status, t.trigger, t.quantity) == ("succeeded", "just_in_time", 40)
    assert a.available() == 20
    a.spend(140)  # 20 there: buys the 120 short in one purchase
    assert rows(any_ctx, a.id)[1].quantity == 120
    # The pool hit zero on that spend: the ordinary trigger buys 40 more.
    assert [t.trigger for t in rows(any_ctx, a.id)] == [
        "just_in_time",
        "just_in_time",
        "balance_zero",
    ]
    assert a.available() == 40


def test_just_in_time_refusals_say_why(any_ctx: Context) -> None:
    # R22 within the limits, R24: when the top-up cannot buy, the proposal is refused
    # with insufficient_connects and nothing is spent.
    a = agency(any_ctx, just_in_time=True, per_topup=10, per_month=10)
    with pytest.raises(InsufficientConnects) as err:
        a.spend(100)
    assert err.value.details["topup_reason"] == "monthly_limit_too_low"
    assert a.available() == 80
    assert rows(any_ctx, a.id)[0].status == "skipped"
    assert events_of(any_ctx, a.id, "monthly_limit_reached") == []  # 10 are still left


def test_just_in_time_with_a_declined_card(any_ctx: Context, clock: SimulatedClock) -> None:
    a = agency(any_ctx, just_in_time=True, token="tok_chargeDeclined")
    with pytest.raises(InsufficientConnects) as err:
        a.spend(100)
    assert err.value.details["topup_reason"] == "payment_declined"
    assert err.value.details["topup_status"] == "failed"
    assert a.available() == 80
    # R42: within the hour after a decline the card is not tried again: the proposal
    # is refused naming the wait, and nothing is charged.
    with pytest.raises(InsufficientConnects) as err:
        a.spend(100)
    assert (err.value.details["topup_status"], err.value.details["topup_reason"]) == (
        "skipped",
        "payment_declined",
    )
    assert all_charges(any_ctx) == 1
    # After the wait the card is tried again (a new attempt, not the old row).
    clock.advance(timedelta(hours=1))
    with pytest.raises(InsufficientConnects):
        a.spend(100)
    assert [t.status for t in rows(any_ctx, a.id)] == ["failed", "skipped", "failed"]
    assert all_charges(any_ctx) == 2


def test_just_in_time_off_keeps_the_plain_refusal(any_ctx: Context) -> None:
    a = agency(any_ctx)
    with pytest.raises(InsufficientConnects) as err:
        a.spend(100)
    assert "topup_reason" not in err.value.details
    assert rows(any_ctx, a.id) == []


def test_refused_just_in_time_proposals_share_one_history_row(any_ctx: Context) -> None:
    # R25: each refusal says why, but the history keeps one row for the reason and
    # month, however often a member submits (no flooding the top-up history)
    a = agency(any_ctx, just_in_time=True, per_topup=10, per_month=10)
    for _ in range(5):
        with pytest.raises(InsufficientConnects) as err:
            a.spend(100)
        assert err.value.details["topup_reason"] == "monthly_limit_too_low"
        assert err.value.details["topup_status"] == "skipped"
    [row] = rows(any_ctx, a.id)
    assert (row.status, row.reason, row.trigger) == (
        "skipped",
        "monthly_limit_too_low",
        "just_in_time",
    )
    assert a.available() == 80
