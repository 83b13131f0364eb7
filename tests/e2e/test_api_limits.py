"""Limits that make sense and one message per happening, over HTTP (R43, R45)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from connects.db.schema import events
from tests.e2e.conftest import Api, error


def _fields(r: Any) -> Any:
    return error(r)["details"]["fields"]  # type: ignore[index]


def test_r43_contradictory_auto_topup_limits_are_refused_naming_the_fields(api: Api) -> None:
    agency = api.agency("olga", mia="member")
    url = f"/v1/accounts/{agency}/auto-topup"
    r = api.call("PUT", url, "olga", {"per_topup": 500, "per_month": 400})
    assert r.status_code == 422 and error(r)["code"] == "invalid_request"
    assert set(_fields(r)) == {"per_topup", "per_month"}
    assert "400" in _fields(r)["per_topup"]
    r = api.call("PUT", url, "olga", {"enabled": True, "per_month": 0})
    assert r.status_code == 422 and set(_fields(r)) == {"per_month"}
    r = api.call("PUT", url, "olga", {"per_month": 30})  # below the stored 40 per top-up
    assert r.status_code == 422 and set(_fields(r)) == {"per_topup", "per_month"}
    body = {"mode": "target", "target": 20, "threshold": 20}
    r = api.call("PUT", url, "olga", body)
    assert r.status_code == 422 and set(_fields(r)) == {"target", "threshold"}
    r = api.call("PUT", url, "olga", {"per_topup": 10_001})  # one top-up is one purchase
    assert r.status_code == 422 and set(_fields(r)) == {"per_topup"}
    # Nothing changed by any of them.
    s = api.ok("GET", url, "mia")
    assert (s["enabled"], s["per_topup"], s["per_month"], s["mode"]) == (False, 40, 400, "fixed")
    s = api.ok("PUT", url, "olga", {"per_topup": 30, "per_month": 30, **body, "target": 21})
    assert (s["per_topup"], s["per_month"], s["target"]) == (30, 30, 21)


def test_r43_a_purchase_above_max_purchase_is_refused_naming_quantity(api: Api) -> None:
    agency = api.agency("olga")
    api.earnings(agency, 10**9)
    url = f"/v1/accounts/{agency}/purchases"
    before = api.available(agency, "olga")
    r = api.call("POST", url, "olga", {"quantity": 10_001, "pay_with": "earnings"})
    assert r.status_code == 422 and error(r)["code"] == "invalid_request"
    assert "quantity" in _fields(r)
    assert error(r)["details"]["max_purchase"] == 10_000  # type: ignore[index]
    assert "10,000" in str(error(r)["message"])
    assert api.available(agency, "olga") == before
    bought = api.ok("POST", url, "olga", {"quantity": 10_000, "pay_with": "earnings"})
    assert bought["quantity"] == 10_000


def test_r43_max_purchase_is_configurable(api: Api) -> None:
    api.ctx.max_purchase = 50
    agency = api.agency("olga")
    api.earnings(agency, 10**6)
    url = f"/v1/accounts/{agency}/purchases"
    r = api.call("POST", url, "olga", {"quantity": 51, "pay_with": "earnings"})
    assert r.status_code == 422 and "quantity" in _fields(r)
    assert api.ok("POST", url, "olga", {"quantity": 50, "pay_with": "earnings"})["quantity"] == 50
    r = api.call("PUT", f"/v1/accounts/{agency}/auto-topup", "olga", {"per_topup": 60})
    assert r.status_code == 422 and set(_fields(r)) == {"per_topup"}


def test_r45_low_balance_levels_are_set_shown_and_validated(api: Api) -> None:
    agency = api.agency("olga")
    url = f"/v1/accounts/{agency}/notification-settings"
    assert api.ok("GET", url, "olga")["low_balance_levels"] == []
    s = api.ok("PUT", url, "olga", {"low_balance_levels": [20, 50]})
    assert (s["low_balance_levels"], s["low_balance_threshold"]) == ([50, 20], 50)
    assert api.ok("GET", url, "olga")["low_balance_levels"] == [50, 20]
    for bad in ([0], [10, 10], [1, 2, 3, 4, 5, 6], [-1], ["5"], [2.5], 7):
        r = api.call("PUT", url, "olga", {"low_balance_levels": bad})
        assert r.status_code == 422 and error(r)["code"] == "invalid_request", bad
        assert "low_balance_levels" in str(_fields(r)), (bad, r.text)
    assert api.ok("GET", url, "olga")["low_balance_levels"] == [50, 20]
    # The older single threshold is one level.
    s = api.ok("PUT", url, "olga", {"low_balance_threshold": 30})
    assert (s["low_balance_levels"], s["low_balance_threshold"]) == ([30], 30)


def test_r45_one_message_per_happening_over_http(api: Api) -> None:
    # R45: 80 -> 45 crosses 50 once; 45 -> 40 does not; an auto top-up's purchase
    # sends topup_succeeded alone.
    agency = api.agency("olga")
    api.ok("POST", f"/v1/accounts/{agency}/billing-methods", "olga", {"token": "tok_visa"})
    api.ok(
        "PUT",
        f"/v1/accounts/{agency}/notification-settings",
        "olga",
        {"low_balance_levels": [50]},
    )
    grant = {"grantee": "topup-manager", "permissions": ["connects:purchase"]}
    api.ok("POST", f"/v1/accounts/{agency}/grants", "olga", grant)
    api.ok("PUT", f"/v1/accounts/{agency}/auto-topup", "olga", {"enabled": True})
    for price in (35, 5, 40):  # 80 -> 45 -> 40 -> 0, then auto top-up buys 40
        assert api.propose("olga", api.job(price), agency).status_code == 201
    kinds = _event_kinds(api, agency)
    assert kinds.count("balance_low") == 1
    assert kinds.count("balance_empty") == 1
    assert kinds.count("topup_succeeded") == 1
    assert "connects_purchased" not in kinds


def _event_kinds(api: Api, account_id: str) -> list[str]:
    with api.ctx.db.read() as conn:
        return list(
            conn.execute(select(events.c.kind).where(events.c.account_id == account_id)).scalars()
        )
