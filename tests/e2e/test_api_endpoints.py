"""Every endpoint of API.md over HTTP, on SQLite and PostgreSQL, with each refusal code."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from fastapi.testclient import TestClient

from connects.api.app import create_app
from connects.bootstrap import build
from tests.conftest import MakeCtx
from tests.e2e.conftest import Api, settings_for


def error(r: object) -> dict[str, object]:
    body = r.json()  # type: ignore[attr-defined]
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]  # type: ignore[no-any-return]


def test_users_and_me(api: Api) -> None:
    uid = api.person("olga")
    r = api.call("POST", "/v1/users", None, {"name": "Olga", "email": "o@x.io"})
    assert r.status_code == 201 and r.json()["token"].startswith("cx_")
    # The same e-mail again: refused with a stable code.
    r = api.call("POST", "/v1/users", None, {"name": "Olga 2", "email": "O@x.io"})
    assert r.status_code == 409 and error(r)["code"] == "email_taken"
    # R32: bad input names the field.
    r = api.call("POST", "/v1/users", None, {"name": "Olga", "email": "not-an-email"})
    assert r.status_code == 422 and error(r)["details"]["fields"] == ["email"]  # type: ignore[index]
    agency = api.agency("olga")
    solo = api.freelancer("olga")
    me = api.ok("GET", "/v1/me", "olga")
    assert me["id"] == uid and me["email"].startswith("olga.")
    assert {a["id"] for a in me["accounts"]} == {agency, solo}
    assert {(m["account_id"], m["role"]) for m in me["memberships"]} == {
        (agency, "owner"),
        (solo, "owner"),
    }
    assert api.call("GET", "/v1/me", None).status_code == 401
    assert api.call("GET", "/v1/me", None).headers["www-authenticate"] == "Bearer"
    r = api.client.get("/v1/me", headers={"Authorization": "Bearer nobody-has-this"})
    assert r.status_code == 401 and error(r)["code"] == "unauthorized"


def test_accounts(api: Api) -> None:
    agency = api.agency("olga")
    a = api.ok("GET", f"/v1/accounts/{agency}", "olga")
    assert a["kind"] == "agency" and a["plan"] == "agency-plus" and a["balance"] == 80  # R7, R8
    assert a["role"] == "owner" and a["currency"] == "USD" and a["earnings"] == 0
    assert a["created_at"] == "2026-01-15T09:00:00Z"  # RFC 3339 UTC
    # R2: a person owns at most one agency, and has one freelancer account.
    r = api.call("POST", "/v1/accounts", "olga", {"kind": "agency", "name": "Again"})
    assert r.status_code == 409 and error(r)["code"] == "already_owns_agency"
    api.freelancer("olga")
    r = api.call("POST", "/v1/accounts", "olga", {"kind": "freelancer", "name": "Again"})
    assert r.status_code == 409 and error(r)["code"] == "already_has_freelancer_account"
    # R7: plans per account kind.
    r = api.call("PATCH", f"/v1/accounts/{agency}", "olga", {"plan": "freelancer-plus"})
    assert r.status_code == 409 and error(r)["code"] == "plan_not_allowed"
    body = {"timezone": "Europe/Berlin", "low_balance_threshold": 5, "name": "Renamed"}
    a = api.ok("PATCH", f"/v1/accounts/{agency}", "olga", body)
    assert (a["timezone"], a["low_balance_threshold"], a["name"]) == ("Europe/Berlin", 5, "Renamed")
    r = api.call("PATCH", f"/v1/accounts/{agency}", "olga", {"timezone": "Mars/Olympus"})
    assert r.status_code == 422 and error(r)["details"]["fields"] == ["timezone"]  # type: ignore[index]
    r = api.call("GET", "/v1/accounts/acct_nope", "olga")
    assert r.status_code == 404 and error(r)["code"] == "not_found"


def test_members_budgets_and_budget_refusal(api: Api) -> None:
    agency = api.agency("olga", ada="admin", max="manager", mia="member")
    members = api.ok("GET", f"/v1/accounts/{agency}/members", "mia")
    assert [m["role"] for m in members["items"]] == ["owner", "admin", "manager", "member"]
    assert members["next_cursor"] is None
    page = api.ok("GET", f"/v1/accounts/{agency}/members", "mia", params={"limit": 3})
    assert len(page["items"]) == 3 and page["next_cursor"] is not None
    rest = api.ok(
        "GET",
        f"/v1/accounts/{agency}/members",
        "mia",
        params={"limit": 3, "cursor": page["next_cursor"]},
    )
    assert [m["user_id"] for m in rest["items"]] == [api.ids["mia"]] and rest["next_cursor"] is None
    m = api.ok("PATCH", f"/v1/accounts/{agency}/members/{api.ids['max']}", "ada", {"role": "admin"})
    assert m["role"] == "admin"
    r = api.call(
        "PATCH", f"/v1/accounts/{agency}/members/{api.ids['olga']}", "ada", {"role": "member"}
    )
    assert r.status_code == 409 and error(r)["code"] == "owner_is_permanent"
    r = api.call(
        "POST",
        f"/v1/accounts/{agency}/members",
        "olga",
        {"user_id": api.ids["mia"], "role": "member"},
    )
    assert r.status_code == 409 and error(r)["code"] == "already_member"
    # R4: a member's monthly budget.
    url = f"/v1/accounts/{agency}/members/{api.ids['mia']}/budget"
    m = api.ok("PUT", url, "olga", {"monthly_connects": 10})
    assert m["monthly_budget"] == 10
    assert api.propose("mia", api.job(8), agency).status_code == 201
    r = api.propose("mia", api.job(4), agency)
    assert r.status_code == 409 and error(r)["code"] == "member_budget_exceeded"
    spent = {
        x["user_id"]: x["spent_this_month"]
        for x in api.ok("GET", f"/v1/accounts/{agency}/members", "olga")["items"]
    }
    assert spent[api.ids["mia"]] == 8 and spent[api.ids["olga"]] == 0
    assert api.ok("PUT", url, "olga", {"monthly_connects": None})["monthly_budget"] is None
    r = api.call("DELETE", f"/v1/accounts/{agency}/members/{api.ids['mia']}", "olga")
    assert r.status_code == 204 and r.content == b""
    assert api.call("GET", f"/v1/accounts/{agency}", "mia").status_code == 404
    r = api.call("DELETE", f"/v1/accounts/{agency}/members/{api.ids['olga']}", "olga")
    assert r.status_code == 409 and error(r)["code"] == "owner_is_permanent"
    solo = api.freelancer("olga")
    r = api.call("GET", f"/v1/accounts/{solo}/members", "olga")
    assert r.status_code == 200
    r = api.call(
        "POST",
        f"/v1/accounts/{solo}/members",
        "olga",
        {"user_id": api.ids["ada"], "role": "member"},
    )
    assert r.status_code == 409 and error(r)["code"] == "agency_only"


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


def test_jobs_proposals_refunds_and_rewards(api: Api) -> None:
    agency = api.agency("olga", mia="member", max="manager")
    job = api.job(30)
    r = api.call(
        "POST",
        "/v1/proposals",
        "mia",
        {
            "job_id": job,
            "account_id": agency,
            "freelancer_id": api.ids["mia"],
            "expected_connects": 20,
        },
    )
    # R13: the live price differs: refused, with the current price.
    assert r.status_code == 409 and error(r)["code"] == "price_changed"
    assert error(r)["details"]["connects_required"] == 30  # type: ignore[index]
    p = api.propose("mia", job, agency).json()
    assert (p["status"], p["connects_spent"], p["balance"]) == ("active", 30, 50)
    r = api.propose("mia", job, agency)
    assert r.status_code == 409 and error(r)["code"] == "already_applied"
    # R14: never a negative balance.
    r = api.propose("max", api.job(60), agency)
    assert r.status_code == 409 and error(r)["code"] == "insufficient_connects"
    # R5: a manager on agency-plus submits for a member; a member cannot for others.
    assert api.propose("max", api.job(5), agency, freelancer="mia").status_code == 201
    r = api.propose("mia", api.job(5), agency, freelancer="max")
    assert r.status_code == 403 and error(r)["code"] == "cannot_submit_on_behalf"
    r = api.propose("mia", api.job(5), agency, freelancer="client")
    assert r.status_code in (403, 409)
    # R13: the client changes the price while the job is open.
    j = api.ok("PATCH", f"/v1/jobs/{job}", "client", {"connects_required": 12})
    assert j["connects_required"] == 12
    r = api.call("PATCH", f"/v1/jobs/{job}", "mia", {"connects_required": 1})
    assert r.status_code == 403 and error(r)["code"] == "forbidden"
    # R16: interview by the client; a second interview earns nothing.
    iv = api.ok("POST", f"/v1/proposals/{p['id']}/interview", "client")
    assert iv["status"] == "interviewing" and iv["reward"] == 0
    r = api.call("POST", f"/v1/proposals/{p['id']}/interview", "mia")
    assert r.status_code == 404
    # R15: cancel refunds every proposal into the pool.
    before = api.available(agency, "olga")
    j = api.ok("POST", f"/v1/jobs/{job}/cancel", "client")
    assert j["status"] == "cancelled" and j["refunded_connects"] == 30
    assert api.available(agency, "olga") == before + 30
    r = api.call("POST", f"/v1/jobs/{job}/cancel", "client")
    assert r.status_code == 409 and error(r)["code"] == "job_not_open"
    # Withdrawn: no refund.
    j2 = api.job(4)
    p2 = api.propose("mia", j2, agency).json()
    w = api.ok("POST", f"/v1/proposals/{p2['id']}/withdraw", "mia")
    assert w["status"] == "withdrawn"
    r = api.call("POST", f"/v1/proposals/{p2['id']}/withdraw", "mia")
    assert r.status_code == 409 and error(r)["code"] == "proposal_not_active"
    assert api.ok("POST", f"/v1/jobs/{j2}/close", "client")["refunded_connects"] == 0
    # Close with a hire: no refunds; close without a hire: refunds.
    j3 = api.job(3)
    p3 = api.propose("mia", j3, agency).json()
    closed = api.ok("POST", f"/v1/jobs/{j3}/close", "client", {"hired_proposal_id": p3["id"]})
    assert (closed["status"], closed["refunded_connects"]) == ("filled", 0)
    j4 = api.job(3)
    api.propose("mia", j4, agency)
    assert api.ok("POST", f"/v1/jobs/{j4}/close", "client", {})["refunded_connects"] == 3
    # The operator removes (refunds) or expires (no refunds) a post.
    j5, j6 = api.job(2), api.job(2)
    api.propose("mia", j5, agency)
    api.propose("mia", j6, agency)
    removed = api.ok("POST", f"/v1/admin/jobs/{j5}/remove", "operator")
    assert (removed["status"], removed["refunded_connects"]) == ("removed", 2)
    expired = api.ok("POST", f"/v1/admin/jobs/{j6}/expire", "operator")
    assert (expired["status"], expired["refunded_connects"]) == ("expired", 0)
    assert api.call("POST", "/v1/admin/jobs/job_nope/remove", "operator").status_code == 404
    got = api.ok("GET", f"/v1/jobs/{j6}", "mia")
    assert got["status"] == "expired" and got["client_id"] == api.ids["client"]


def test_validation_never_500(api: Api) -> None:
    api.person("olga")
    agency = api.agency("olga")
    h = {**api.headers("olga"), "Content-Type": "application/json"}
    url = f"/v1/accounts/{agency}/purchases"
    cases = [
        (b"{not json", ["body"]),
        (b"", ["body"]),
        (b"[]", ["body"]),
        (b'{"quantity": "5", "pay_with": "earnings"}', ["quantity"]),
        (b'{"quantity": true, "pay_with": "earnings"}', ["quantity"]),
        (b'{"quantity": 5.5, "pay_with": "earnings"}', ["quantity"]),
        (b'{"quantity": 0, "pay_with": "earnings"}', ["quantity"]),
        (b'{"quantity": 1' + b"0" * 60 + b', "pay_with": "earnings"}', ["quantity"]),
        (b'{"quantity": 1' + b"0" * 5000 + b', "pay_with": "earnings"}', ["body"]),
        (b'{"quantity": 1e400, "pay_with": "earnings"}', ["quantity"]),
        (b'{"pay_with": "earnings"}', ["quantity"]),
        (b'{"quantity": 1, "pay_with": "earn\\u0000ings"}', ["pay_with"]),
    ]
    for raw, fields in cases:
        r = api.client.post(url, content=raw, headers=h)
        assert r.status_code == 422, (raw[:40], r.status_code, r.text)
        err = error(r)
        assert err["code"] == "invalid_request"
        assert err["details"]["fields"] == fields, (raw[:40], err)  # type: ignore[index]
    r = api.call("POST", "/v1/jobs", "olga", {"title": "x\x00y", "connects_required": 1})
    assert r.status_code == 422 and error(r)["details"]["fields"] == ["title"]  # type: ignore[index]
    r = api.call("POST", "/v1/jobs", "olga", {"title": "ok", "connects_required": 2**70})
    assert r.status_code == 422
    r = api.call("GET", f"/v1/accounts/{agency}/connects/history", "olga", params={"limit": 0})
    assert r.status_code == 422 and error(r)["details"]["fields"] == ["limit"]  # type: ignore[index]
    r = api.call(
        "GET", f"/v1/accounts/{agency}/connects/history", "olga", params={"limit": "9" * 40}
    )
    assert r.status_code == 422
    r = api.call("GET", "/v1/accounts/acct%00x", "olga")
    assert r.status_code == 422
    r = api.call("GET", "/v1/no-such-thing", "olga")
    assert r.status_code == 404 and error(r)["code"] == "not_found"
    r = api.call("PUT", "/v1/me", "olga", {})
    assert r.status_code == 405 and error(r)["code"] == "method_not_allowed"


def test_grants_auto_topup_and_topups(api: Api) -> None:
    agency = api.agency("olga", mia="member")
    api.earnings(agency, 10_000)
    buy = {"quantity": 2, "pay_with": "earnings"}
    url = f"/v1/accounts/{agency}/purchases"
    # R6: without a grant the business manager can do nothing.
    assert api.call("POST", url, "bm", buy).status_code == 403
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
    assert api.call("POST", url, "bm", buy).status_code == 403  # revoked: stops at once
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


def test_admin_clock_runs_what_falls_due(api: Api) -> None:
    solo = api.freelancer("fred")
    r = api.call("POST", "/v1/admin/clock", "fred", {"advance": "P31D"})
    assert r.status_code == 403
    moved = api.ok("POST", "/v1/admin/clock", "operator", {"advance": "P31D"})  # R33
    assert moved["now"] == "2026-02-15T09:00:00Z"
    assert moved["ran"]["cycles"] == 1 and set(moved["ran"]) >= {"cycles", "expired"}
    grants = api.ok(
        "GET", f"/v1/accounts/{solo}/connects/history", "fred", params={"kind": "grant"}
    )
    assert len(grants["items"]) == 2  # R8: the February cycle's grant
    moved = api.ok("POST", "/v1/admin/clock", "operator", {"to": "2026-03-15T10:00:00+01:00"})
    assert moved["now"] == "2026-03-15T09:00:00Z" and moved["ran"]["cycles"] == 1
    for body, field in [
        ({"to": "2026-01-01T00:00:00Z"}, "to"),
        ({"advance": "31 days"}, "advance"),
        ({"advance": "P"}, "advance"),
        ({"advance": "P99999Y"}, "advance"),
        ({}, "advance"),
        ({"advance": "P1D", "to": "2027-01-01T00:00:00Z"}, "advance"),
        ({"to": "yesterday"}, "to"),
    ]:
        r = api.call("POST", "/v1/admin/clock", "operator", body)
        assert r.status_code == 422, (body, r.text)
        assert error(r)["details"]["fields"] == [field], body  # type: ignore[index]


def test_admin_clock_absent_on_the_system_clock(make_ctx: MakeCtx, sqlite_url: str) -> None:
    make_ctx(sqlite_url)  # migrated
    settings = settings_for(sqlite_url)
    ctx = build(settings)  # the system clock
    try:
        with TestClient(create_app(ctx, settings)) as client:
            h = {"Authorization": f"Bearer {settings.operator_token}"}
            r = client.post("/v1/admin/clock", json={"advance": "P1D"}, headers=h)
            assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"  # R33
            assert "/v1/admin/clock" not in client.get("/openapi.json").json()["paths"]
    finally:
        ctx.db.dispose()


def test_simulated_clock_is_shared_through_the_database(make_ctx: MakeCtx, sqlite_url: str) -> None:
    """R33: two processes (two contexts here) on one database see one simulated time."""
    make_ctx(sqlite_url)
    one = build(settings_for(sqlite_url, clock="simulated"))
    two = build(settings_for(sqlite_url, clock="simulated"))
    try:
        start = one.now()
        assert abs((start - datetime.now(UTC)).total_seconds()) < 60
        assert two.now() == start
        with TestClient(create_app(one, settings_for(sqlite_url, clock="simulated"))) as client:
            h = {"Authorization": f"Bearer {one_token()}"}
            r = client.post("/v1/admin/clock", json={"advance": "P2D"}, headers=h)
            assert r.status_code == 200
        assert (two.now() - start).days == 2
        clock = two.clock
        assert clock.simulated
    finally:
        one.db.dispose()
        two.db.dispose()


def one_token() -> str:
    from tests.e2e.conftest import OPERATOR_TOKEN

    return OPERATOR_TOKEN


def test_health_metrics_openapi_docs(api: Api) -> None:
    for path in ("/healthz", "/v1/healthz"):
        h = api.client.get(path)
        assert h.status_code == 200 and h.json()["status"] == "ok"
    agency = api.agency("olga")
    api.propose("olga", api.job(3), agency)
    m = api.client.get("/metrics")
    assert m.status_code == 200 and m.headers["content-type"].startswith("text/plain")
    text = m.text
    assert 'connects_http_requests_total{method="POST",route="/v1/proposals",status="201"}' in text
    assert "connects_http_request_duration_seconds_bucket" in text
    assert "connects_spent_total" in text and "connects_topups_total" in text
    spec = api.client.get("/openapi.json").json()
    ids = [op["operationId"] for p in spec["paths"].values() for op in p.values()]
    assert len(ids) == len(set(ids))
    assert "submit_proposal" in ids and "buy_connects" in ids
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            assert op.get("summary") or op.get("description"), (method, path)
    assert api.client.get("/docs").status_code == 200
