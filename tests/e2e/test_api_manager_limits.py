"""The business manager buys only within the owner's auto top-up limits (R48), and an
account it holds no grant on is hidden from it like one that does not exist."""

from __future__ import annotations

from tests.e2e.conftest import Api, error


def _agency_with_limits(api: Api) -> tuple[str, str]:
    agency = api.agency("olga")
    api.earnings(agency, 1_000_000)
    api.ok("POST", f"/v1/accounts/{agency}/billing-methods", "olga", {"token": "tok_visa"})
    grant = {"grantee": "topup-manager", "permissions": ["connects:purchase"]}
    api.ok("POST", f"/v1/accounts/{agency}/grants", "olga", grant)
    limits = {"enabled": True, "per_topup": 5, "per_month": 23, "threshold": 0}
    api.ok("PUT", f"/v1/accounts/{agency}/auto-topup", "olga", limits)
    return agency, f"/v1/accounts/{agency}/purchases"


def _bought(api: Api, agency: str) -> tuple[int, int]:
    auto = api.ok("GET", f"/v1/accounts/{agency}/connects", "olga")["auto_topup"]
    return auto["bought_this_month"], auto["left_this_month"]


def test_business_manager_stays_within_per_topup_and_pays_by_card(api: Api) -> None:
    # R48: the probe's 5,000 by card and 4,000 from earnings are both refused.
    agency, url = _agency_with_limits(api)
    earnings = api.ok("GET", f"/v1/accounts/{agency}", "olga")["earnings"]
    r = api.call("POST", url, "bm", {"quantity": 5000, "pay_with": "default"})
    assert r.status_code == 409 and error(r)["code"] == "per_topup_exceeded"
    assert error(r)["details"]["per_topup"] == 5  # type: ignore[index]
    r = api.call("POST", url, "bm", {"quantity": 6, "pay_with": "default"})
    assert r.status_code == 409 and error(r)["code"] == "per_topup_exceeded"
    r = api.call("POST", url, "bm", {"quantity": 4000, "pay_with": "earnings"})
    assert r.status_code == 403 and error(r)["code"] == "forbidden"
    r = api.call("POST", url, "bm", {"quantity": 5, "pay_with": "earnings"})
    assert r.status_code == 403 and error(r)["details"]["fields"] == ["pay_with"]  # type: ignore[index]
    assert api.ok("GET", f"/v1/accounts/{agency}", "olga")["earnings"] == earnings
    assert _bought(api, agency) == (0, 23)
    # The owner still buys as much as they like, from either source.
    api.ok("POST", url, "olga", {"quantity": 500, "pay_with": "earnings"})
    api.ok("POST", url, "olga", {"quantity": 500, "pay_with": "default"})
    assert _bought(api, agency) == (0, 23)


def test_business_manager_and_auto_topup_share_the_monthly_limit(api: Api) -> None:
    # R48, R21: the manager's purchases and auto top-up's count together in the month.
    agency, url = _agency_with_limits(api)
    job = api.job(api.available(agency, "olga"))
    assert api.propose("olga", job, agency).status_code == 201  # to 0: auto top-up buys 5
    assert api.available(agency, "olga") == 5
    assert _bought(api, agency) == (5, 18)
    for _ in range(3):
        p = api.ok("POST", url, "bm", {"quantity": 5, "pay_with": "default"})
        assert p["status"] == "succeeded" and p["pay_with"] == "card"
    r = api.call("POST", url, "bm", {"quantity": 5, "pay_with": "default"})
    assert r.status_code == 409 and error(r)["code"] == "monthly_limit_reached"
    details = error(r)["details"]
    assert (details["per_month"], details["left_this_month"]) == (23, 3)  # type: ignore[index]
    api.ok("POST", url, "bm", {"quantity": 3, "pay_with": "default"})
    assert _bought(api, agency) == (23, 0)
    r = api.call("POST", url, "bm", {"quantity": 1, "pay_with": "default"})
    assert r.status_code == 409 and error(r)["code"] == "monthly_limit_reached"
    # Auto top-up sees the manager's purchases too: the next crossing is skipped.
    job = api.job(api.available(agency, "olga"))
    assert api.propose("olga", job, agency).status_code == 201
    latest = api.ok("GET", f"/v1/accounts/{agency}/topups", "olga")["items"]
    assert [(t["status"], t["reason"]) for t in latest][:1] == [
        ("skipped", "monthly_limit_reached")
    ]
    assert api.available(agency, "olga") == 0
    # A new month in the account's time zone starts a new limit.
    api.ok("POST", "/v1/admin/clock", "operator", {"advance": "P32D"})
    api.ok("POST", url, "bm", {"quantity": 5, "pay_with": "default"})


def test_business_manager_is_not_told_an_account_exists(api: Api) -> None:
    # R6 with the API's convention: no grant on an account answers as if it did not exist.
    agency, _ = _agency_with_limits(api)
    other = api.agency("otto")
    for account in (other, "acc_doesnotexist"):
        for method, path, body in (
            ("POST", f"/v1/accounts/{account}/purchases", {"quantity": 1, "pay_with": "default"}),
            ("GET", f"/v1/accounts/{account}", None),
            ("GET", f"/v1/accounts/{account}/connects", None),
        ):
            r = api.call(method, path, "bm", body)
            assert r.status_code == 404 and error(r)["code"] == "not_found", (account, path)
    # On the account it holds a grant on, what it may not do stays 403.
    assert api.call("GET", f"/v1/accounts/{agency}/connects", "bm").status_code == 403
