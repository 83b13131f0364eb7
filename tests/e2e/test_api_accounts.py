"""The user, account and member endpoints of API.md over HTTP, on SQLite and
PostgreSQL, with each refusal code.
"""

from __future__ import annotations

from tests.e2e.conftest import Api, error


def test_users_and_me(api: Api) -> None:
    uid = api.person("olga")
    r = api.call("POST", "/v1/users", None, {"name": "Olga", "email": "o@x.io"})
    assert r.status_code == 201 and r.json()["token"].startswith("cx_")
    # The same e-mail again: a new person like any other (R49; test_consent.py)
    r = api.call("POST", "/v1/users", None, {"name": "Olga 2", "email": "O@x.io"})
    assert r.status_code == 201
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
