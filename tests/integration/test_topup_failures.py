"""Auto top-ups that fail, with their reason, on SQLite and PostgreSQL (R24, R17, R7).

Every agency here is on agency-plus: 80 Connects granted at opening, 100 cents a
Connect. The top-up manager buys with the account's default card.
"""

from __future__ import annotations

import pytest

from connects.domain.commands import RevokeGrant, UpdateAccount
from connects.services import topups as svc
from connects.services import views
from connects.services.context import Context
from tests.integration.topup_support import agency, all_charges, events_of, purchase_entries, rows


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
        any_ctx.handle(RevokeGrant(a.owner, a.id, grant["id"]))
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
    any_ctx.handle(UpdateAccount(a.owner, a.id, plan="agency-basic"))
    a.spend(80)
    [t] = rows(any_ctx, a.id)
    assert (t.status, t.reason) == ("failed", "plan_cannot_purchase")
