"""Auto top-up settings and the top-up manager's grant, on SQLite and PostgreSQL
(R3, R6, R19, R32).

Every agency here is on agency-plus: 80 Connects granted at opening, 100 cents a
Connect. The top-up manager buys with the account's default card.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from connects.domain.clock import SimulatedClock
from connects.domain.commands import BuyConnects, GrantPermissions, RevokeGrant, SetAutoTopUp
from connects.domain.errors import Forbidden, InvalidRequest, NotFound
from connects.domain.policy import PURCHASE_PERMISSION
from connects.services import topups as svc
from connects.services.context import Context
from tests.integration.topup_support import agency, rows
from tests.world import World


def test_defaults_and_who_may_change_them(any_ctx: Context) -> None:
    # R19: 40 per top-up and 400 a month by default; R3: owner/admin change them,
    # members may read them.
    w = World(any_ctx)
    acct = w.agency("olga", mia="member", adam="admin")
    # R40: the status comes with the settings; a member does not see the card (R44).
    assert svc.get_settings(any_ctx, w.actor("mia"), acct) == {
        "enabled": False,
        "per_topup": 40,
        "per_month": 400,
        "threshold": 0,
        "just_in_time": False,
        "mode": "fixed",
        "target": None,
        "status": "blocked",
        "blocked_reason": "no_grant",
        "next_try_at": None,
        "paused_at": None,
    }
    with pytest.raises(Forbidden):
        any_ctx.handle(SetAutoTopUp(w.actor("mia"), acct, {"enabled": True}))
    on = any_ctx.handle(SetAutoTopUp(w.actor("adam"), acct, {"enabled": True}))
    assert (on["enabled"], on["per_topup"], on["per_month"]) == (True, 40, 400)
    assert on.pop("card") is None
    assert svc.get_settings(any_ctx, w.actor("mia"), acct) == on


def test_bad_settings_change_nothing(any_ctx: Context) -> None:
    # R32: invalid_request names the fields and nothing changes.
    a = agency(any_ctx, per_month=100)
    with pytest.raises(InvalidRequest) as err:
        any_ctx.handle(SetAutoTopUp(a.owner, a.id, {"per_topup": 0, "mode": "percent"}))
    assert set(err.value.details["fields"]) == {"per_topup", "mode"}
    with pytest.raises(InvalidRequest):
        any_ctx.handle(SetAutoTopUp(a.owner, a.id, {"mode": "target"}))  # no target
    assert svc.get_settings(any_ctx, a.owner, a.id)["per_month"] == 100
    assert svc.get_settings(any_ctx, a.owner, a.id)["mode"] == "fixed"


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
    any_ctx.handle(BuyConnects(a.owner, a.id, 5, "default"))
    a.spend(5)
    assert rows(any_ctx, a.id)[-1].status == "succeeded"
    assert a.available() == 40


def test_grants_are_for_owners_and_admins_with_known_permissions(any_ctx: Context) -> None:
    # R3, R6: only the owner and admins grant; only known permissions exist.
    w = World(any_ctx)
    acct = w.agency("olga", mia="member", adam="admin")
    with pytest.raises(Forbidden):
        any_ctx.handle(
            GrantPermissions(w.actor("mia"), acct, "topup-manager", [PURCHASE_PERMISSION])
        )
    with pytest.raises(InvalidRequest) as err:
        any_ctx.handle(
            GrantPermissions(w.actor("adam"), acct, "topup-manager", ["connects:read_card"])
        )
    assert err.value.details["field"] == "permissions"
    with pytest.raises(InvalidRequest):
        any_ctx.handle(GrantPermissions(w.actor("adam"), acct, "topup-manager", []))
    with pytest.raises(InvalidRequest):
        any_ctx.handle(GrantPermissions(w.actor("adam"), acct, "", [PURCHASE_PERMISSION]))
    grant = any_ctx.handle(
        GrantPermissions(w.actor("adam"), acct, "topup-manager", [PURCHASE_PERMISSION])
    )
    assert set(grant) >= {"id", "grantee", "permissions", "status", "active_at", "created_at"}
    assert (grant["status"], grant["permissions"]) == ("active", [PURCHASE_PERMISSION])
    with pytest.raises(Forbidden):
        any_ctx.handle(RevokeGrant(w.actor("mia"), acct, grant["id"]))
    with pytest.raises(NotFound):
        any_ctx.handle(RevokeGrant(w.actor("olga"), acct, "grt_nope"))
    any_ctx.handle(RevokeGrant(w.actor("olga"), acct, grant["id"]))
    any_ctx.handle(RevokeGrant(w.actor("olga"), acct, grant["id"]))  # twice: still revoked
    assert [g["status"] for g in svc.list_grants(any_ctx, w.actor("olga"), acct)] == ["revoked"]
