"""The purchase path is ready to distribute by account: every statement it runs on
an account-owned table names the account (tests/account_scope.py), the worker's sweep
of pending purchases aside, which says it runs across shards (R17, R23)."""

from __future__ import annotations

from datetime import timedelta

from connects.domain.clock import SimulatedClock
from connects.services import purchase_steps
from tests.account_scope import report, watching
from tests.e2e.conftest import Api

PURCHASE_TABLES = {"purchases", "gateway_charges"}


def test_purchases_name_their_account_in_every_statement(api: Api, clock: SimulatedClock) -> None:
    agency = api.agency("olga")
    api.earnings(agency, 10_000)
    card = api.ok("POST", f"/v1/accounts/{agency}/billing-methods", "olga", {"token": "tok_visa"})
    slow = api.ok(
        "POST", f"/v1/accounts/{agency}/billing-methods", "olga", {"token": "tok_chargeTimeout"}
    )
    url = f"/v1/accounts/{agency}/purchases"
    grant = {"grantee": "topup-manager", "permissions": ["connects:purchase"]}
    api.ok("POST", f"/v1/accounts/{agency}/grants", "olga", grant)
    auto = {"enabled": True, "per_topup": 40, "per_month": 400, "threshold": 70}
    api.ok("PUT", f"/v1/accounts/{agency}/auto-topup", "olga", {**auto, "just_in_time": False})
    job = api.job(20)
    with watching() as found:
        assert api.propose("olga", job, agency).status_code == 201  # 80 -> 60: a top-up
        api.ok("POST", url, "olga", {"quantity": 2, "pay_with": "earnings"}, key="earn")
        api.ok("POST", url, "olga", {"quantity": 3, "pay_with": card["id"]}, key="card")
        api.ok("POST", url, "olga", {"quantity": 3, "pay_with": card["id"]}, key="card")
        pending = api.ok("POST", url, "olga", {"quantity": 4, "pay_with": slow["id"]})
        assert pending["status"] == "pending"
        clock.advance(timedelta(minutes=1))
        assert purchase_steps.resume_pending(api.ctx) == 1
    ours = [f for f in found if PURCHASE_TABLES & set(f.tables)]
    assert not ours, report(ours)
    topups = api.ok("GET", f"/v1/accounts/{agency}/topups", "olga")["items"]
    assert [t["status"] for t in topups] == ["succeeded"]  # the top-up's purchase ran
