"""Auto top-up over HTTP (v1.1): its status, the pause and its resume, cards made the
default and removed (R40-R42, R44), on SQLite and PostgreSQL.

The rules themselves are tested in tests/integration/test_topup_status.py; here the
contract: the fields, the codes, who may do what, and one story end to end on the
simulated clock that the operator moves (R33).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from tests.e2e.conftest import Api, error


def _setup(api: Api, token: str) -> tuple[str, str]:
    """An agency of olga (mia a member) whose top-up manager holds an active grant,
    with one card from ``token``; returns the account and the card."""
    agency = api.agency("olga", mia="member")
    grant = {"grantee": "topup-manager", "permissions": ["connects:purchase"]}
    api.ok("POST", f"/v1/accounts/{agency}/grants", "olga", grant)
    card = api.ok("POST", f"/v1/accounts/{agency}/billing-methods", "olga", {"token": token})
    return agency, str(card["id"])


def _status(api: Api, agency: str, who: str = "olga") -> dict[str, object]:
    return dict(api.ok("GET", f"/v1/accounts/{agency}/auto-topup", who))


def _now(api: Api) -> datetime:
    return api.ctx.now()


def test_r40_status_fields_and_the_card_shown_to_owners_only(api: Api) -> None:
    agency = api.agency("olga", mia="member")
    s = _status(api, agency)
    # Off: nothing to buy with yet; the status says what is missing first (R40).
    assert (s["status"], s["blocked_reason"], s["next_try_at"]) == ("blocked", "no_grant", None)
    assert s["card"] is None and s["paused_at"] is None
    grant = {"grantee": "topup-manager", "permissions": ["connects:purchase"]}
    api.ok("POST", f"/v1/accounts/{agency}/grants", "olga", grant)
    assert _status(api, agency)["blocked_reason"] == "no_payment_method"
    card = api.ok("POST", f"/v1/accounts/{agency}/billing-methods", "olga", {"token": "tok_visa"})
    s = _status(api, agency)
    assert (s["status"], s["blocked_reason"]) == ("active", None)
    assert s["card"] == {"id": card["id"], "brand": card["brand"], "last4": card["last4"]}
    member_view = _status(api, agency, "mia")
    assert member_view["status"] == "active"
    assert member_view.get("card") is None  # a member never sees payment details (R44)


def test_r42_declines_wait_then_pause_resume_and_r41_recovery(api: Api) -> None:
    agency, declined = _setup(api, "tok_chargeDeclined")
    balance = api.available(agency, "olga")
    # Switching on at or below the threshold buys at once (R41): the card declines.
    on = {"enabled": True, "threshold": balance, "per_topup": 40, "per_month": 400}
    assert api.ok("PUT", f"/v1/accounts/{agency}/auto-topup", "olga", on)["enabled"] is True
    t0 = _now(api)
    s = _status(api, agency)  # the answer above is the settings saved; the top-up followed
    assert (s["status"], s["blocked_reason"]) == ("blocked", "payment_declined")
    assert datetime.fromisoformat(s["next_try_at"]) == t0 + timedelta(hours=1)
    # The wait doubles (1 h, then 2 h); the third decline in a row pauses (R42).
    api.ok("POST", "/v1/admin/clock", "operator", {"advance": "PT1H"})
    s = _status(api, agency)
    assert s["blocked_reason"] == "payment_declined"
    assert datetime.fromisoformat(s["next_try_at"]) == t0 + timedelta(hours=3)
    api.ok("POST", "/v1/admin/clock", "operator", {"advance": "PT2H"})
    s = _status(api, agency)
    assert (s["status"], s["blocked_reason"], s["next_try_at"]) == ("blocked", "paused", None)
    assert datetime.fromisoformat(s["paused_at"]) == t0 + timedelta(hours=3)
    # Paused, a day's wait buys nothing, and a new card does not end the pause.
    api.ok("POST", "/v1/admin/clock", "operator", {"advance": "P1D"})
    visa = api.ok("POST", f"/v1/accounts/{agency}/billing-methods", "olga", {"token": "tok_visa"})
    assert visa["default"] is False
    made = api.ok(
        "PATCH", f"/v1/accounts/{agency}/billing-methods/{visa['id']}", "olga", {"default": True}
    )
    assert made["default"] is True and made["id"] == visa["id"]
    s = _status(api, agency)
    assert s["blocked_reason"] == "paused" and s["card"]["id"] == visa["id"]  # type: ignore[index]
    assert api.available(agency, "olga") == balance
    # Only an owner or admin resumes (R42); then the waiting top-up buys, once (R41, R23).
    r = api.call("POST", f"/v1/accounts/{agency}/auto-topup/resume", "mia")
    assert r.status_code == 403 and error(r)["code"] == "forbidden"
    s = api.ok("POST", f"/v1/accounts/{agency}/auto-topup/resume", "olga")
    assert (s["status"], s["paused_at"]) == ("active", None)
    assert api.available(agency, "olga") == balance + 40
    again = api.ok("POST", f"/v1/accounts/{agency}/auto-topup/resume", "olga")
    assert again["status"] == "active"  # resuming what is not paused changes nothing
    assert api.available(agency, "olga") == balance + 40
    items = api.ok("GET", f"/v1/accounts/{agency}/topups", "olga")["items"]
    assert [(t["status"], t["reason"]) for t in items] == [
        ("succeeded", None),
        ("failed", "payment_declined"),
        ("failed", "payment_declined"),
        ("failed", "payment_declined"),
    ]
    assert [t["charged"] for t in items] == [4000, 0, 0, 0]
    assert {t["amount"] for t in items} == {4000}  # the price; nothing charged on failure (R44)
    cards = api.ok("GET", f"/v1/accounts/{agency}/billing-methods", "olga")["items"]
    assert {c["id"]: c["default"] for c in cards} == {declined: False, visa["id"]: True}


def test_r44_cards_made_default_and_removed(api: Api) -> None:
    agency, first = _setup(api, "tok_visa")
    second = api.ok("POST", f"/v1/accounts/{agency}/billing-methods", "olga", {"token": "tok_visa"})
    url = f"/v1/accounts/{agency}/billing-methods"
    # Bad input changes nothing and names what is wrong.
    r = api.call("PATCH", f"{url}/{second['id']}", "olga", {"default": False})
    assert r.status_code == 422 and error(r)["code"] == "invalid_request"
    assert "default" in error(r)["details"]["fields"]  # type: ignore[operator]
    r = api.call("PATCH", f"{url}/{second['id']}", "olga", {"default": True, "brand": "x"})
    assert r.status_code == 422 and "brand" in error(r)["details"]["fields"]  # type: ignore[operator]
    r = api.call("PATCH", f"{url}/bm_nope", "olga", {"default": True})
    assert r.status_code == 404 and error(r)["code"] == "not_found"
    # Members may not touch cards; an outsider is not told the account exists.
    r = api.call("PATCH", f"{url}/{second['id']}", "mia", {"default": True})
    assert r.status_code == 403
    api.person("eve")
    assert api.call("DELETE", f"{url}/{second['id']}", "eve").status_code == 404
    assert {c["id"]: c["default"] for c in api.ok("GET", url, "olga")["items"]} == {
        first: True,
        second["id"]: False,
    }
    # Removing the default leaves none until one is chosen (R44, decision).
    assert api.call("DELETE", f"{url}/{first}", "olga").status_code == 204
    assert [(c["id"], c["default"]) for c in api.ok("GET", url, "olga")["items"]] == [
        (second["id"], False)
    ]
    s = _status(api, agency)
    assert (s["blocked_reason"], s["card"]) == ("no_payment_method", None)
    buy = {"quantity": 1, "pay_with": "default"}
    r = api.call("POST", f"/v1/accounts/{agency}/purchases", "olga", buy)
    assert r.status_code == 409 and error(r)["code"] == "no_billing_method"
    # A removed card is gone for good: not listed, not chargeable, not made the default.
    assert api.call("DELETE", f"{url}/{first}", "olga").status_code == 404
    r = api.call("PATCH", f"{url}/{first}", "olga", {"default": True})
    assert r.status_code == 404
    buy_removed = {"quantity": 1, "pay_with": first}
    r = api.call("POST", f"/v1/accounts/{agency}/purchases", "olga", buy_removed)
    assert r.status_code == 409 and error(r)["code"] == "no_billing_method"
    api.ok("PATCH", f"{url}/{second['id']}", "olga", {"default": True})
    assert _status(api, agency)["status"] == "active"
