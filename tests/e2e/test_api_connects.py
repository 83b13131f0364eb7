"""The Connects endpoints of API.md over HTTP (overview, history, expiring, purchases,
grants and auto top-up), on SQLite and PostgreSQL, with each refusal code.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime

from connects.services.views import entries_csv
from tests.e2e.conftest import Api, error


def test_overview_history_csv_expiring(api: Api) -> None:
    agency = api.agency("olga", mia="member")
    for price in (3, 5, 7):
        assert api.propose("mia", api.job(price), agency).status_code == 201
    assert api.propose("olga", api.job(2), agency).status_code == 201
    o = api.ok("GET", f"/v1/accounts/{agency}/connects", "mia")  # R26
    assert o["available"] == 80 - 17 and o["used_this_month"] == 17
    assert o["purchased_this_month"] == 0 and o["expiring_30d"] == 0
    assert o["auto_topup"]["enabled"] is False
    hist = api.ok("GET", f"/v1/accounts/{agency}/connects/history", "mia", params={"limit": 2})
    assert [e["kind"] for e in hist["items"]] == ["spend", "spend"]
    assert hist["items"][0]["amount"] == -2 and hist["items"][0]["balance_after"] == 63
    assert hist["next_cursor"] is not None
    seen = list(hist["items"])
    cursor = hist["next_cursor"]
    while cursor:
        nxt = api.ok(
            "GET",
            f"/v1/accounts/{agency}/connects/history",
            "mia",
            params={"limit": 2, "cursor": cursor},
        )
        seen += nxt["items"]
        cursor = nxt["next_cursor"]
    assert [e["kind"] for e in seen] == ["spend"] * 4 + ["grant"]
    assert len({e["id"] for e in seen}) == 5
    only_mia = api.ok(
        "GET",
        f"/v1/accounts/{agency}/connects/history",
        "olga",
        params={"member_id": api.ids["mia"]},
    )
    assert [e["amount"] for e in only_mia["items"]] == [-7, -5, -3]
    grants = api.ok(
        "GET", f"/v1/accounts/{agency}/connects/history", "olga", params={"kind": "grant"}
    )
    assert [e["amount"] for e in grants["items"]] == [80]
    r = api.call("GET", f"/v1/accounts/{agency}/connects/history", "olga", params={"kind": "gift"})
    assert r.status_code == 422 and error(r)["details"]["fields"] == ["kind"]  # type: ignore[index]
    r = api.call("GET", f"/v1/accounts/{agency}/connects/history", "olga", params={"cursor": "abc"})
    assert r.status_code == 422 and error(r)["details"]["fields"] == ["cursor"]  # type: ignore[index]
    # CSV: every matching entry, the same columns as the CLI's.
    r = api.call(
        "GET",
        f"/v1/accounts/{agency}/connects/history",
        "mia",
        params={"format": "csv", "limit": 1},
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [int(x["amount"]) for x in rows] == [-2, -7, -5, -3, 80]
    assert rows[0]["actor"] == f"user:{api.ids['olga']}"
    r = api.call(
        "GET",
        f"/v1/accounts/{agency}/connects/history",
        "mia",
        params={"format": "csv", "kind": "spend", "member_id": api.ids["mia"]},
    )
    assert len(list(csv.DictReader(io.StringIO(r.text)))) == 3
    exp = api.ok("GET", f"/v1/accounts/{agency}/connects/expiring", "mia")
    assert exp == {"within_30d": 0, "lots": []}


def test_csv_history_never_starts_a_spreadsheet_formula(api: Api) -> None:
    # R32: a job title that a spreadsheet would run is defused; amounts stay numbers
    solo = api.freelancer("fred")
    api.person("client")
    titles = ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "ok -1"]
    for title in titles:
        job = api.ok("POST", "/v1/jobs", "client", {"title": title, "connects_required": 1})
        assert api.propose("fred", job["id"], solo).status_code == 201
    r = api.call("GET", f"/v1/accounts/{solo}/connects/history", "fred", params={"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(r.text)))
    notes = [row["note"] for row in rows if row["kind"] == "spend"]
    assert sorted(notes) == sorted(["'" + t for t in titles[:-1]] + ["ok -1"])
    assert [row["amount"] for row in rows] == ["-1"] * len(titles) + ["10"]
    assert all(row["balance_after"].isdigit() for row in rows)
    # Titles are stripped, but a note starting with a tab or CR is defused all the same.
    entry = api.ok("GET", f"/v1/accounts/{solo}/connects/history", "fred")["items"][0]
    entry["at"] = datetime.fromisoformat(entry["at"])
    for note in ("\tcmd", "\rcmd"):
        (row,) = csv.DictReader(io.StringIO(entries_csv([{**entry, "note": note}]), newline=""))
        assert row["note"] == "'" + note and row["amount"] == "-1"
    # A CR or LF inside a note is quoted: it never starts a row of its own.
    (row,) = csv.DictReader(io.StringIO(entries_csv([{**entry, "note": "a\rb\nc"}]), newline=""))
    assert row["note"] == "a\rb\nc"


def test_expiring_within_30_days(api: Api) -> None:
    solo = api.freelancer("fred")  # 10 Connects, expiring 2027-01-15 (R10)
    api.ok("POST", "/v1/admin/clock", "operator", {"to": "2026-12-20T00:00:00Z"})
    exp = api.ok("GET", f"/v1/accounts/{solo}/connects/expiring", "fred")
    lots = [lot for lot in exp["lots"] if lot["expires_at"] == "2027-01-15T09:00:00Z"]
    assert lots and lots[0]["remaining"] == 10 and exp["within_30d"] >= 10  # R12


def test_purchases_and_payment_refusals(api: Api) -> None:
    agency = api.agency("olga", ada="admin")
    url = f"/v1/accounts/{agency}/purchases"
    # R17: earnings pay whole or not at all.
    r = api.call("POST", url, "olga", {"quantity": 5, "pay_with": "earnings"})
    assert r.status_code == 409 and error(r)["code"] == "insufficient_earnings"
    api.earnings(agency, 1000)
    p = api.ok("POST", url, "ada", {"quantity": 5, "pay_with": "earnings"})
    assert (p["quantity"], p["amount"], p["currency"], p["status"]) == (5, 500, "USD", "succeeded")
    assert api.available(agency, "olga") == 85
    r = api.call("POST", url, "olga", {"quantity": 6, "pay_with": "earnings"})
    assert r.status_code == 409 and error(r)["code"] == "insufficient_earnings"
    # Cards: only brand and last4 ever come back.
    r = api.call("POST", url, "olga", {"quantity": 1, "pay_with": "default"})
    assert r.status_code == 409 and error(r)["code"] == "no_billing_method"
    bm = api.ok("POST", f"/v1/accounts/{agency}/billing-methods", "olga", {"token": "tok_visa"})
    assert set(bm) == {"id", "brand", "last4", "default", "created_at"}
    assert (bm["brand"], bm["last4"], bm["default"]) == ("visa", "4242", True)
    declined = api.ok(
        "POST", f"/v1/accounts/{agency}/billing-methods", "olga", {"token": "tok_chargeDeclined"}
    )
    assert declined["default"] is False
    listed = api.ok("GET", f"/v1/accounts/{agency}/billing-methods", "ada")["items"]
    assert [m["last4"] for m in listed] == ["4242", "0002"]
    assert all(set(m) == {"id", "brand", "last4", "default", "created_at"} for m in listed)
    p = api.ok("POST", url, "olga", {"quantity": 10, "pay_with": bm["id"]})
    assert (p["status"], p["amount"], p["billing_method_id"]) == ("succeeded", 1000, bm["id"])
    assert api.available(agency, "olga") == 95
    r = api.call("POST", url, "olga", {"quantity": 10, "pay_with": declined["id"]})
    assert r.status_code == 402 and error(r)["code"] == "payment_declined"
    assert api.available(agency, "olga") == 95  # nothing credited
    r = api.call(
        "POST", f"/v1/accounts/{agency}/billing-methods", "olga", {"token": "4242424242424242"}
    )
    assert r.status_code == 422 and error(r)["details"]["fields"] == ["token"]  # type: ignore[index]
    basic = api.agency("bob", plan="agency-basic")
    r = api.call(
        "POST", f"/v1/accounts/{basic}/purchases", "bob", {"quantity": 1, "pay_with": "earnings"}
    )
    assert r.status_code == 409 and error(r)["code"] == "plan_cannot_purchase"


def test_grants_auto_topup_and_topups(api: Api) -> None:
    agency = api.agency("olga", mia="member")
    api.earnings(agency, 10_000)
    api.ok("POST", f"/v1/accounts/{agency}/billing-methods", "olga", {"token": "tok_visa"})
    buy = {"quantity": 2, "pay_with": "default"}
    url = f"/v1/accounts/{agency}/purchases"
    # R6: without a grant the business manager can do nothing, and is not told that the
    # account exists.
    assert api.call("POST", url, "bm", buy).status_code == 404
    g = api.ok(
        "POST",
        f"/v1/accounts/{agency}/grants",
        "olga",
        {"grantee": "topup-manager", "permissions": ["connects:purchase"]},
    )
    assert g["status"] == "active" and g["permissions"] == ["connects:purchase"]
    listed = api.ok("GET", f"/v1/accounts/{agency}/grants", "olga")["items"]
    assert [x["id"] for x in listed] == [g["id"]]
    p = api.ok("POST", url, "bm", buy)
    assert p["status"] == "succeeded"
    assert api.call("GET", f"/v1/accounts/{agency}/connects", "bm").status_code == 403
    assert api.call("GET", f"/v1/accounts/{agency}/billing-methods", "bm").status_code == 403
    r = api.call("DELETE", f"/v1/accounts/{agency}/grants/{g['id']}", "olga")
    assert r.status_code == 204
    assert api.call("POST", url, "bm", buy).status_code == 404  # revoked: stops at once
    r = api.call("DELETE", f"/v1/accounts/{agency}/grants/grt_nope", "olga")
    assert r.status_code == 404
    r = api.call(
        "POST",
        f"/v1/accounts/{agency}/grants",
        "olga",
        {"grantee": "topup-manager", "permissions": ["connects:everything"]},
    )
    assert r.status_code == 422 and "permissions" in error(r)["details"]["fields"]  # type: ignore[operator]
    # R19-R22: settings.
    s = api.ok("GET", f"/v1/accounts/{agency}/auto-topup", "mia")
    assert (s["enabled"], s["per_topup"], s["per_month"], s["threshold"]) == (False, 40, 400, 0)
    s = api.ok(
        "PUT",
        f"/v1/accounts/{agency}/auto-topup",
        "olga",
        {"enabled": True, "per_topup": 20, "threshold": 5},
    )
    assert (s["enabled"], s["per_topup"], s["per_month"], s["threshold"]) == (True, 20, 400, 5)
    r = api.call("PUT", f"/v1/accounts/{agency}/auto-topup", "olga", {"per_topup": 0})
    assert r.status_code == 422 and error(r)["details"]["fields"] == ["per_topup"]  # type: ignore[index]
    r = api.call("PUT", f"/v1/accounts/{agency}/auto-topup", "mia", {"enabled": False})
    assert r.status_code == 403
    overview = api.ok("GET", f"/v1/accounts/{agency}/connects", "mia")
    assert overview["auto_topup"]["enabled"] is True  # R26
    page = api.ok("GET", f"/v1/accounts/{agency}/topups", "mia")
    assert set(page) == {"items", "next_cursor"}
    for item in page["items"]:
        assert {"id", "at", "quantity", "amount", "trigger", "status", "reason"} <= set(item)
