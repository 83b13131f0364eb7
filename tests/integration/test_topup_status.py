"""Auto top-up an owner can trust, on SQLite and PostgreSQL: its status (R40), recovery
once a cause is gone (R41), declines that wait and pause (R42), cards made default and
removed (R44).

Every agency here is on agency-plus: 80 Connects granted at opening, 100 cents a
Connect. The top-up manager buys with the account's default card.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from connects.domain.clock import SimulatedClock
from connects.domain.commands import (
    AddBillingMethod,
    GrantPermissions,
    RemoveBillingMethod,
    ResumeAutoTopUp,
    RevokeGrant,
    SetAutoTopUp,
    SetDefaultBillingMethod,
)
from connects.domain.errors import Forbidden, NotFound
from connects.domain.policy import PURCHASE_PERMISSION
from connects.services import topup_recovery, views
from connects.services import topups as svc
from connects.services.context import Context
from connects.services.due import run_due
from tests.integration.topup_support import Agency, agency, all_charges, events_of, rows


def _status(a: Agency) -> tuple[str, str | None]:
    got = svc.get_settings(a.world.ctx, a.owner, a.id)
    return got["status"], got["blocked_reason"]


def _revoke(a: Agency) -> None:
    for g in svc.list_grants(a.world.ctx, a.owner, a.id):
        if g["status"] != "revoked":
            a.world.ctx.handle(RevokeGrant(a.owner, a.id, g["id"]))


def _grant(a: Agency) -> None:
    a.world.ctx.handle(GrantPermissions(a.owner, a.id, "topup-manager", [PURCHASE_PERMISSION]))


def _cards(ctx: Context, a: Agency) -> list[dict[str, object]]:
    return views.billing_methods(ctx, a.owner, a.id)


# -- R40: the status ----------------------------------------------------------------------


def test_r40_status_names_each_blocking_reason(any_ctx: Context, clock: SimulatedClock) -> None:
    # R40: "on" is never claimed while nothing can be bought.
    a = agency(any_ctx)
    assert _status(a) == ("active", None)
    assert svc.get_settings(any_ctx, a.owner, a.id)["card"]["last4"] == "4242"
    _revoke(a)
    assert _status(a) == ("blocked", "grant_revoked")
    b = agency(any_ctx, grant=False)
    assert _status(b) == ("blocked", "no_grant")
    c = agency(any_ctx, token=None)
    assert _status(c) == ("blocked", "no_payment_method")
    assert svc.get_settings(any_ctx, c.owner, c.id)["card"] is None
    d = agency(any_ctx, per_month=40)
    d.spend(80)  # buys 40: the month's limit is used up
    got = svc.get_settings(any_ctx, d.owner, d.id)
    assert (got["status"], got["blocked_reason"]) == ("blocked", "monthly_limit_reached")
    assert got["next_try_at"] == clock.now().replace(month=2, day=1, hour=0)
    # A member sees the status but not the card (R44).
    a.world.person("mia")
    from tests.world import add_member

    add_member(any_ctx, a.owner, a.id, a.world.people["mia"], "member")
    seen = svc.get_settings(any_ctx, a.world.actor("mia"), a.id)
    assert seen["blocked_reason"] == "grant_revoked" and "card" not in seen


def test_r40_pending_grant_says_when(any_ctx: Context, clock: SimulatedClock) -> None:
    any_ctx.grant_sync_delay_seconds = 1800
    a = agency(any_ctx)
    got = svc.get_settings(any_ctx, a.owner, a.id)
    assert (got["status"], got["blocked_reason"]) == ("blocked", "grant_pending")
    assert got["next_try_at"] == clock.now() + timedelta(seconds=1800)


# -- R41: recovery ------------------------------------------------------------------------


def test_r41_granted_again_buys_the_failed_top_up_once(any_ctx: Context) -> None:
    # The bug of issue 21: revoke, fail, grant again -> nothing was bought.
    a = agency(any_ctx)
    _revoke(a)
    a.spend(80)
    [failed] = rows(any_ctx, a.id)
    assert (failed.status, failed.reason) == ("failed", "grant_revoked")
    _grant(a)
    assert [t.status for t in rows(any_ctx, a.id)] == ["failed", "succeeded"]
    assert a.available() == 40
    assert _status(a) == ("active", None)
    # Nothing more: the due work and a second recovery find nothing to do (R23).
    run_due(any_ctx)
    assert topup_recovery.recover(any_ctx, a.id) is None
    assert all_charges(any_ctx) == 1
    assert len(events_of(any_ctx, a.id, "topup_succeeded")) == 1


def test_r41_card_added_then_made_default_recovers(any_ctx: Context) -> None:
    a = agency(any_ctx, token=None)
    a.spend(80)
    assert rows(any_ctx, a.id)[-1].reason == "no_billing_method"
    any_ctx.handle(AddBillingMethod(a.owner, a.id, "tok_visa"))  # the first: the default
    assert [t.status for t in rows(any_ctx, a.id)] == ["failed", "succeeded"]
    assert a.available() == 40


def test_r41_pending_grant_recovers_when_it_turns_active(
    any_ctx: Context, clock: SimulatedClock
) -> None:
    any_ctx.grant_sync_delay_seconds = 1800
    a = agency(any_ctx)
    a.spend(80)
    assert rows(any_ctx, a.id)[-1].reason == "grant_pending"
    run_due(any_ctx)
    assert len(rows(any_ctx, a.id)) == 1  # still syncing: nothing tried
    clock.advance(timedelta(seconds=1800))
    run_due(any_ctx)
    assert [t.status for t in rows(any_ctx, a.id)] == ["failed", "succeeded"]
    assert a.available() == 40


def test_r41_raised_limit_and_new_month_recover(any_ctx: Context, clock: SimulatedClock) -> None:
    a = agency(any_ctx, per_month=40)
    a.spend(80)  # buys 40
    a.spend(40)  # back to 0: the month's limit is used up
    assert [t.status for t in rows(any_ctx, a.id)] == ["succeeded", "skipped"]
    any_ctx.handle(SetAutoTopUp(a.owner, a.id, {"per_month": 80}))  # raised
    assert [t.status for t in rows(any_ctx, a.id)] == ["succeeded", "skipped", "succeeded"]
    a.spend(40)
    assert rows(any_ctx, a.id)[-1].status == "skipped"
    clock.set(clock.now().replace(month=2, day=1, hour=0, minute=5))
    run_due(any_ctx)
    assert rows(any_ctx, a.id)[-1].status == "succeeded"
    assert rows(any_ctx, a.id)[-1].month == "2026-02"


def test_r41_no_retry_once_the_balance_is_above_the_threshold(any_ctx: Context) -> None:
    a = agency(any_ctx)
    _revoke(a)
    a.spend(80)
    from connects.domain.commands import BuyConnects, CreditEarnings

    any_ctx.handle(CreditEarnings(a.id, 10_000))
    any_ctx.handle(BuyConnects(a.owner, a.id, 10, "earnings"))  # above 0 again
    _grant(a)
    assert [t.status for t in rows(any_ctx, a.id)] == ["failed"]


def test_r41_switching_on_or_raising_the_threshold_buys_at_once(any_ctx: Context) -> None:
    a = agency(any_ctx)
    any_ctx.handle(SetAutoTopUp(a.owner, a.id, {"enabled": False}))
    a.spend(80)  # auto top-up is off: nothing
    assert rows(any_ctx, a.id) == []
    any_ctx.handle(SetAutoTopUp(a.owner, a.id, {"enabled": True}))
    assert [t.status for t in rows(any_ctx, a.id)] == ["succeeded"]
    assert a.available() == 40
    # At 40 with threshold 0; raising it to 50 buys at once, once.
    any_ctx.handle(SetAutoTopUp(a.owner, a.id, {"threshold": 50}))
    assert a.available() == 80
    any_ctx.handle(SetAutoTopUp(a.owner, a.id, {"threshold": 50}))  # unchanged: nothing
    assert len(rows(any_ctx, a.id)) == 2


# -- R42: declines ------------------------------------------------------------------------


def test_r42_declines_wait_double_then_pause_until_resumed(
    any_ctx: Context, clock: SimulatedClock
) -> None:
    a = agency(any_ctx, token="tok_chargeDeclined")
    a.spend(80)
    got = svc.get_settings(any_ctx, a.owner, a.id)
    assert (got["status"], got["blocked_reason"]) == ("blocked", "payment_declined")
    assert got["next_try_at"] == clock.now() + timedelta(hours=1)
    clock.advance(timedelta(minutes=59))
    run_due(any_ctx)
    assert len(rows(any_ctx, a.id)) == 1  # not before the hour
    clock.advance(timedelta(minutes=1))
    run_due(any_ctx)
    assert [t.status for t in rows(any_ctx, a.id)] == ["failed", "failed"]
    # The second wait is two hours.
    assert svc.get_settings(any_ctx, a.owner, a.id)["next_try_at"] == clock.now() + timedelta(
        hours=2
    )
    clock.advance(timedelta(hours=1))
    run_due(any_ctx)
    assert len(rows(any_ctx, a.id)) == 2
    clock.advance(timedelta(hours=1))
    run_due(any_ctx)
    assert [t.reason for t in rows(any_ctx, a.id)] == ["payment_declined"] * 3
    # The third decline in a row pauses, once, and says so.
    assert _status(a) == ("blocked", "paused")
    [paused] = events_of(any_ctx, a.id, "topup_paused")
    assert paused["topup_id"] == rows(any_ctx, a.id)[-1].id
    clock.advance(timedelta(days=2))
    run_due(any_ctx)
    assert len(rows(any_ctx, a.id)) == 3  # stays paused
    assert all_charges(any_ctx) == 3
    # A member may not resume; the owner may: the card is tried again at once.
    a.world.person("mia")
    from tests.world import add_member

    add_member(any_ctx, a.owner, a.id, a.world.people["mia"], "member")
    with pytest.raises(Forbidden):
        any_ctx.handle(ResumeAutoTopUp(a.world.actor("mia"), a.id))
    any_ctx.handle(AddBillingMethod(a.owner, a.id, "tok_visa"))
    [_, visa] = _cards(any_ctx, a)
    any_ctx.handle(SetDefaultBillingMethod(a.owner, a.id, str(visa["id"])))
    assert _status(a) == ("blocked", "paused")  # a new card does not end the pause
    assert len(rows(any_ctx, a.id)) == 3
    after = any_ctx.handle(ResumeAutoTopUp(a.owner, a.id))
    assert after["status"] == "active"
    assert rows(any_ctx, a.id)[-1].status == "succeeded"
    assert a.available() == 40


def test_r42_the_wait_is_configurable(any_ctx: Context, clock: SimulatedClock) -> None:
    any_ctx.topup_retry_seconds = 600
    a = agency(any_ctx, token="tok_chargeDeclined")
    a.spend(80)
    assert svc.get_settings(any_ctx, a.owner, a.id)["next_try_at"] == clock.now() + timedelta(
        minutes=10
    )


def test_r42_a_new_default_card_is_tried_at_once(any_ctx: Context) -> None:
    # R41: "a payment method was made the default" ends the wait of the declined one.
    a = agency(any_ctx, token="tok_chargeDeclined")
    a.spend(80)
    any_ctx.handle(AddBillingMethod(a.owner, a.id, "tok_visa"))  # not the default yet
    assert len(rows(any_ctx, a.id)) == 1
    visa = next(c for c in _cards(any_ctx, a) if not c["default"])
    any_ctx.handle(SetDefaultBillingMethod(a.owner, a.id, str(visa["id"])))
    assert [t.status for t in rows(any_ctx, a.id)] == ["failed", "succeeded"]
    assert _status(a) == ("active", None)


# -- R44: cards ---------------------------------------------------------------------------


def test_r44_make_default_and_remove(any_ctx: Context) -> None:
    a = agency(any_ctx)
    any_ctx.handle(AddBillingMethod(a.owner, a.id, "tok_mastercard"))
    first, second = _cards(any_ctx, a)
    assert (first["default"], second["default"]) == (True, False)
    made = any_ctx.handle(SetDefaultBillingMethod(a.owner, a.id, str(second["id"])))
    assert made["default"] is True
    assert [c["default"] for c in _cards(any_ctx, a)] == [False, True]
    assert svc.get_settings(any_ctx, a.owner, a.id)["card"]["id"] == second["id"]
    # Auto top-up charges the default.
    a.spend(80)
    [t] = rows(any_ctx, a.id)
    from sqlalchemy import select

    from connects.db.schema import purchases

    with any_ctx.db.read() as conn:
        charged = conn.execute(
            select(purchases.c.billing_method_id).where(purchases.c.id == t.purchase_id)
        ).scalar_one()
    assert charged == second["id"]
    # Removing the default leaves none (decision): blocked, no_payment_method.
    any_ctx.handle(RemoveBillingMethod(a.owner, a.id, str(second["id"])))
    assert [c["id"] for c in _cards(any_ctx, a)] == [first["id"]]
    assert [c["default"] for c in _cards(any_ctx, a)] == [False]
    assert _status(a) == ("blocked", "no_payment_method")
    with pytest.raises(NotFound):
        any_ctx.handle(RemoveBillingMethod(a.owner, a.id, str(second["id"])))
    with pytest.raises(NotFound):
        any_ctx.handle(SetDefaultBillingMethod(a.owner, a.id, "bm_nope"))
    any_ctx.handle(SetDefaultBillingMethod(a.owner, a.id, str(first["id"])))
    assert _status(a) == ("active", None)


def test_r44_only_owner_and_admins_change_cards(any_ctx: Context) -> None:
    a = agency(any_ctx)
    from tests.world import add_member

    a.world.person("mia")
    add_member(any_ctx, a.owner, a.id, a.world.people["mia"], "member")
    [card] = _cards(any_ctx, a)
    mia = a.world.actor("mia")
    with pytest.raises(Forbidden):
        any_ctx.handle(SetDefaultBillingMethod(mia, a.id, str(card["id"])))
    with pytest.raises(Forbidden):
        any_ctx.handle(RemoveBillingMethod(mia, a.id, str(card["id"])))
    assert _cards(any_ctx, a) == [card]
