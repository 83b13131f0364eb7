"""Auto top-up, worked from seed 000, on SQLite and PostgreSQL (R6, R19-R26).

Every agency here is on agency-plus: 80 Connects granted at opening, 100 cents a
Connect. The top-up manager buys with the account's default card.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connects.domain.clock import SimulatedClock
from connects.domain.errors import Forbidden, InsufficientConnects, InvalidRequest, NotFound
from connects.domain.policy import PURCHASE_PERMISSION
from connects.services import accounts, cycles, purchases, topup_runner, views
from connects.services import topups as svc
from connects.services.context import Context
from tests.integration.topup_support import (
    agency,
    all_charges,
    charges,
    events_of,
    purchase_entries,
    rows,
)
from tests.world import World


def test_defaults_and_who_may_change_them(any_ctx: Context) -> None:
    # R19: 40 per top-up and 400 a month by default; R3: owner/admin change them,
    # members may read them.
    w = World(any_ctx)
    acct = w.agency("olga", mia="member", adam="admin")
    assert svc.get_settings(any_ctx, w.actor("mia"), acct) == {
        "enabled": False,
        "per_topup": 40,
        "per_month": 400,
        "threshold": 0,
        "just_in_time": False,
        "mode": "fixed",
        "target": None,
    }
    with pytest.raises(Forbidden):
        svc.put_settings(any_ctx, w.actor("mia"), acct, enabled=True)
    on = svc.put_settings(any_ctx, w.actor("adam"), acct, enabled=True)
    assert (on["enabled"], on["per_topup"], on["per_month"]) == (True, 40, 400)
    assert svc.get_settings(any_ctx, w.actor("mia"), acct) == on


def test_bad_settings_change_nothing(any_ctx: Context) -> None:
    # R32: invalid_request names the fields and nothing changes.
    a = agency(any_ctx, per_month=100)
    with pytest.raises(InvalidRequest) as err:
        svc.put_settings(any_ctx, a.owner, a.id, per_topup=0, mode="percent")
    assert set(err.value.details["fields"]) == {"per_topup", "mode"}
    with pytest.raises(InvalidRequest):
        svc.put_settings(any_ctx, a.owner, a.id, mode="target")  # no target
    assert svc.get_settings(any_ctx, a.owner, a.id)["per_month"] == 100
    assert svc.get_settings(any_ctx, a.owner, a.id)["mode"] == "fixed"


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
    assert svc.run_pending(any_ctx) == 0
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
    purchases.buy(any_ctx, a.owner, a.id, 5, "default")
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
    accounts.update_account(any_ctx, a.owner, a.id, timezone="Asia/Tokyo")
    a.spend(80)  # buys the month's 40
    a.spend(40)  # skipped: limit reached
    assert [t.status for t in rows(any_ctx, a.id)] == ["succeeded", "skipped"]
    # 2026-01-31 15:00 UTC is February 1st in Tokyo (UTC+9), still January in UTC.
    clock.set(datetime(2026, 1, 31, 15, 0, tzinfo=UTC))
    purchases.buy(any_ctx, a.owner, a.id, 5, "default")
    a.spend(5)
    last = rows(any_ctx, a.id)[-1]
    assert (last.status, last.quantity, last.month) == ("succeeded", 40, "2026-02")
    ov = views.overview(any_ctx, a.owner, a.id)
    assert ov["auto_topup"]["bought_this_month"] == 40
    assert ov["auto_topup"]["left_this_month"] == 0


def test_declined_card_fails_with_reason_and_credits_nothing(any_ctx: Context) -> None:
    # R24, R17: a declined card is a failed top-up with its reason, topup_failed is
    # sent, and no Connects are credited.
    a = agency(any_ctx, token="tok_chargeDeclined")
    a.spend(80)
    [t] = rows(any_ctx, a.id)
    assert (t.status, t.reason, t.quantity, t.amount_cents) == (
        "failed",
        "payment_declined",
        40,
        4000,
    )
    assert a.available() == 0
    assert purchase_entries(any_ctx, a.id) == []
    [failed] = events_of(any_ctx, a.id, "topup_failed")
    assert (failed["reason"], failed["decline_code"], failed["topup_id"]) == (
        "payment_declined",
        "card_declined",
        t.id,
    )
    assert events_of(any_ctx, a.id, "topup_succeeded") == []
    # A failed top-up does not use up the month's limit.
    assert views.overview(any_ctx, a.owner, a.id)["auto_topup"]["bought_this_month"] == 0


@pytest.mark.parametrize(
    ("setup", "reason"),
    [
        ("no_grant", "no_grant"),
        ("revoked", "grant_revoked"),
        ("no_card", "no_billing_method"),
    ],
)
def test_top_up_that_cannot_be_done_fails_with_its_reason(
    any_ctx: Context, setup: str, reason: str
) -> None:
    # R24: no grant, a revoked grant (R6: revoking stops it at once), no payment method.
    a = agency(
        any_ctx,
        grant=setup != "no_grant",
        token=None if setup == "no_card" else "tok_visa",
    )
    if setup == "revoked":
        [grant] = svc.list_grants(any_ctx, a.owner, a.id)
        svc.revoke_grant(any_ctx, a.owner, a.id, grant["id"])
        assert svc.list_grants(any_ctx, a.owner, a.id)[0]["status"] == "revoked"
    a.spend(80)
    [t] = rows(any_ctx, a.id)
    assert (t.status, t.reason, t.purchase_id) == ("failed", reason, None)
    [failed] = events_of(any_ctx, a.id, "topup_failed")
    assert failed["reason"] == reason
    assert all_charges(any_ctx) == 0
    assert a.available() == 0


def test_plan_without_purchases_fails_the_top_up(any_ctx: Context) -> None:
    # R24, R7: agency-basic sells no extra Connects.
    a = agency(any_ctx)
    accounts.update_account(any_ctx, a.owner, a.id, plan="agency-basic")
    a.spend(80)
    [t] = rows(any_ctx, a.id)
    assert (t.status, t.reason) == ("failed", "plan_cannot_purchase")


def test_grant_is_pending_during_the_sync_delay(any_ctx: Context, clock: SimulatedClock) -> None:
    # R19, seed 000: "the update to your permission status may take up to 30 minutes".
    any_ctx.grant_sync_delay_seconds = 1800
    a = agency(any_ctx)
    [grant] = svc.list_grants(any_ctx, a.owner, a.id)
    assert grant["status"] == "pending"
    assert grant["active_at"] == clock.now() + timedelta(minutes=30)
    a.spend(80)
    assert [(t.status, t.reason) for t in rows(any_ctx, a.id)] == [("failed", "grant_pending")]
    clock.advance(timedelta(minutes=30))
    assert svc.list_grants(any_ctx, a.owner, a.id)[0]["status"] == "active"
    purchases.buy(any_ctx, a.owner, a.id, 5, "default")
    a.spend(5)
    assert rows(any_ctx, a.id)[-1].status == "succeeded"
    assert a.available() == 40


def test_grants_are_for_owners_and_admins_with_known_permissions(any_ctx: Context) -> None:
    # R3, R6: only the owner and admins grant; only known permissions exist.
    w = World(any_ctx)
    acct = w.agency("olga", mia="member", adam="admin")
    with pytest.raises(Forbidden):
        svc.create_grant(any_ctx, w.actor("mia"), acct, "topup-manager", [PURCHASE_PERMISSION])
    with pytest.raises(InvalidRequest) as err:
        svc.create_grant(any_ctx, w.actor("adam"), acct, "topup-manager", ["connects:read_card"])
    assert err.value.details["field"] == "permissions"
    with pytest.raises(InvalidRequest):
        svc.create_grant(any_ctx, w.actor("adam"), acct, "topup-manager", [])
    with pytest.raises(InvalidRequest):
        svc.create_grant(any_ctx, w.actor("adam"), acct, "", [PURCHASE_PERMISSION])
    grant = svc.create_grant(any_ctx, w.actor("adam"), acct, "topup-manager", [PURCHASE_PERMISSION])
    assert set(grant) >= {"id", "grantee", "permissions", "status", "active_at", "created_at"}
    assert (grant["status"], grant["permissions"]) == ("active", [PURCHASE_PERMISSION])
    with pytest.raises(Forbidden):
        svc.revoke_grant(any_ctx, w.actor("mia"), acct, grant["id"])
    with pytest.raises(NotFound):
        svc.revoke_grant(any_ctx, w.actor("olga"), acct, "grt_nope")
    svc.revoke_grant(any_ctx, w.actor("olga"), acct, grant["id"])
    svc.revoke_grant(any_ctx, w.actor("olga"), acct, grant["id"])  # twice: still revoked
    assert [g["status"] for g in svc.list_grants(any_ctx, w.actor("olga"), acct)] == ["revoked"]


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
    # worker executes the decision.
    a = agency(any_ctx)
    clock.advance(timedelta(days=366))
    assert cycles.sweep_expired(any_ctx) == 80
    [t] = rows(any_ctx, a.id)
    assert (t.status, t.trigger) == ("pending", "balance_zero")
    assert svc.run_pending(any_ctx) == 1
    assert rows(any_ctx, a.id)[0].status == "succeeded"
    assert a.available() == 40


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
    a = agency(any_ctx, just_in_time=True, per_month=10)
    with pytest.raises(InsufficientConnects) as err:
        a.spend(100)
    assert err.value.details["topup_reason"] == "monthly_limit_too_low"
    assert a.available() == 80
    assert rows(any_ctx, a.id)[0].status == "skipped"
    assert events_of(any_ctx, a.id, "monthly_limit_reached") == []  # 10 are still left


def test_just_in_time_with_a_declined_card(any_ctx: Context) -> None:
    a = agency(any_ctx, just_in_time=True, token="tok_chargeDeclined")
    with pytest.raises(InsufficientConnects) as err:
        a.spend(100)
    assert err.value.details["topup_reason"] == "payment_declined"
    assert err.value.details["topup_status"] == "failed"
    assert a.available() == 80
    # A retry of the same proposal tries the card again (a new attempt, not the old row).
    with pytest.raises(InsufficientConnects):
        a.spend(100)
    assert [t.status for t in rows(any_ctx, a.id)] == ["failed", "failed"]


def test_just_in_time_off_keeps_the_plain_refusal(any_ctx: Context) -> None:
    a = agency(any_ctx)
    with pytest.raises(InsufficientConnects) as err:
        a.spend(100)
    assert "topup_reason" not in err.value.details
    assert rows(any_ctx, a.id) == []


def test_history_lists_every_attempt(any_ctx: Context) -> None:
    # R25: each attempt's time, quantity, cost, trigger, status, reason.
    a = agency(any_ctx, per_month=40)
    a.spend(80)
    a.spend(40)  # skipped
    page = svc.history(any_ctx, a.owner, a.id)
    assert page["next_cursor"] is None
    skipped, bought = page["items"]
    assert set(bought) >= {
        "id",
        "at",
        "quantity",
        "amount",
        "currency",
        "trigger",
        "status",
        "reason",
        "purchase_id",
    }
    assert (bought["status"], bought["quantity"], bought["amount"], bought["currency"]) == (
        "succeeded",
        40,
        4000,
        "USD",
    )
    assert (bought["trigger"], bought["reason"]) == ("balance_zero", None)
    assert bought["at"] == any_ctx.now()
    assert (skipped["status"], skipped["reason"], skipped["quantity"]) == (
        "skipped",
        "monthly_limit_reached",
        0,
    )
    first = svc.history(any_ctx, a.owner, a.id, limit=1)
    assert [i["id"] for i in first["items"]] == [skipped["id"]]
    second = svc.history(any_ctx, a.owner, a.id, limit=1, cursor=first["next_cursor"])
    assert [i["id"] for i in second["items"]] == [bought["id"]]
    assert second["next_cursor"] is None
    with pytest.raises(InvalidRequest):
        svc.history(any_ctx, a.owner, a.id, cursor="42")
    with pytest.raises(InvalidRequest):
        svc.history(any_ctx, a.owner, a.id, limit=0)


def test_overview_shows_the_auto_top_up(any_ctx: Context) -> None:
    # R26: available, used this month, bought this month (auto and manual), expiring
    # in 30 days, and the auto top-up settings.
    a = agency(any_ctx, per_month=100)
    a.spend(80)
    purchases.buy(any_ctx, a.owner, a.id, 5, "default")
    ov = views.overview(any_ctx, a.owner, a.id)
    assert ov["available"] == 45
    assert ov["used_this_month"] == 80
    assert (ov["purchased_this_month_auto"], ov["purchased_this_month_manual"]) == (40, 5)
    assert ov["purchased_this_month"] == 45
    assert ov["expiring_30d"] == 0
    assert ov["auto_topup"] == {
        "enabled": True,
        "per_topup": 40,
        "per_month": 100,
        "threshold": 0,
        "just_in_time": False,
        "mode": "fixed",
        "target": None,
        "bought_this_month": 40,
        "left_this_month": 60,
    }
