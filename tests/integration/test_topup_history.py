"""The auto top-up history and overview, on SQLite and PostgreSQL (R25, R26).

Every agency here is on agency-plus: 80 Connects granted at opening, 100 cents a
Connect. The top-up manager buys with the account's default card.
"""

from __future__ import annotations

import pytest

from connects.domain.commands import BuyConnects
from connects.domain.errors import InvalidRequest
from connects.services import topups as svc
from connects.services import views
from connects.services.context import Context
from tests.integration.topup_support import agency


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
    any_ctx.handle(BuyConnects(a.owner, a.id, 5, "default"))
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
