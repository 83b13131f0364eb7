"""GET /accounts/{id}/results (R39) over HTTP, on SQLite and PostgreSQL: an agency's
week worked out by hand, who sees which lines (R3), CSV, and the refusals."""

from __future__ import annotations

from typing import Any

from connects.services.verify import verify
from tests.e2e.conftest import Api, error

URL = "/v1/accounts/{}/results"


def _bid(api: Api, who: str, job: str, account: str, boost: int | None = None) -> str:
    price = api.ok("GET", f"/v1/jobs/{job}", who)["connects_required"]
    body: dict[str, Any] = {
        "job_id": job,
        "account_id": account,
        "freelancer_id": api.ids[who],
        "expected_connects": price,
    }
    if boost is not None:
        body["boost"] = boost
    r = api.call("POST", "/v1/proposals", who, body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def _week(api: Api) -> tuple[str, dict[str, str]]:
    """The agency's week. agency-plus: 80 Connects granted at cost 0 (lot G, the
    soonest to expire), 30 bought at $1.00 each, $30.00 (lot P, after G)."""
    agency = api.agency("olga", mo="member", ann="member", max="manager", ada="admin")
    api.earnings(agency, 10_000)
    bought = api.ok(
        "POST", f"/v1/accounts/{agency}/purchases", "olga", {"quantity": 30, "pay_with": "earnings"}
    )
    assert (bought["amount"], bought["currency"]) == (3000, "USD")
    j1, j2, j3 = api.job(30), api.job(30), api.job(25)
    p = {
        "j1": _bid(api, "mo", j1, agency),  # 30 from G (0 cents): G 50 left
        "j2": _bid(api, "ann", j2, agency, boost=5),  # 30 from G: G 20; 5 held
        "j3": _bid(api, "mo", j3, agency),  # 20 from G, 5 from P: 500 cents
    }
    api.ok("POST", f"/v1/proposals/{p['j1']}/view", "client")
    # ann's bid is the top of its auction: the view captures it, 5 from P: 500 cents
    api.ok("POST", f"/v1/proposals/{p['j2']}/view", "client")
    api.ok("POST", f"/v1/proposals/{p['j3']}/interview", "client")
    api.ok("POST", f"/v1/jobs/{j3}/close", "client", {"hired_proposal_id": p["j3"]})
    api.ok("POST", f"/v1/jobs/{j1}/cancel", "client")  # mo's 30 come back into G
    return agency, p


# Worked by hand from _week. Spent net of returns: j1 30 - 30 = 0, j2 30, j3 25; the
# boost 5. Cost: j1 0; j2 0 + the boost's 5 x 100 = 500; j3 5 x 100 = 500. Seen by the
# client: j1, j2 (viewed), j3 (interviewed, hired).
MO = {
    "proposals": 2,
    "connects_spent": 25,
    "boost_connects_spent": 0,
    "views": 2,
    "interviews": 1,
    "hires": 1,
    "connects_per_interview": 25.0,
    "connects_per_hire": 25.0,
    "cost_per_hire": {"amount": 500, "currency": "USD"},
}
ANN = {
    "proposals": 1,
    "connects_spent": 30,
    "boost_connects_spent": 5,
    "views": 1,
    "interviews": 0,
    "hires": 0,
    "connects_per_interview": None,
    "connects_per_hire": None,
    "cost_per_hire": None,
}
TOTALS = {
    "proposals": 3,
    "connects_spent": 55,
    "boost_connects_spent": 5,
    "views": 3,
    "interviews": 1,
    "hires": 1,
    "connects_per_interview": 60.0,  # (55 + 5) / 1
    "connects_per_hire": 60.0,
    "cost_per_hire": {"amount": 1000, "currency": "USD"},  # 500 + 500, one hire
}
NOTHING = {**ANN, "proposals": 0, "connects_spent": 0, "boost_connects_spent": 0, "views": 0}


def test_an_agencys_week_worked_by_hand(api: Api) -> None:
    # R39 (R38 outcomes, the R39 cost basis)
    agency, _ = _week(api)
    url = URL.format(agency)
    whole = api.ok("GET", url, "olga")
    assert whole["totals"] == TOTALS and whole["groups"] == []
    by_member = api.ok("GET", url, "olga", params={"group_by": "member"})
    assert by_member["totals"] == TOTALS
    assert {g.pop("key"): g for g in by_member["groups"]} == {
        api.ids["mo"]: MO,
        api.ids["ann"]: ANN,
    }
    by_boost = api.ok("GET", url, "ada", params={"group_by": "boost"})  # an admin sees all
    assert [g.pop("key") for g in by_boost["groups"]] == ["boosted", "not_boosted"]
    assert by_boost["groups"] == [ANN, MO]
    (month,) = api.ok("GET", url, "olga", params={"group_by": "month"})["groups"]
    assert month["key"] == whole["from"][:7] or month["key"] == whole["to"][:7]
    # The period holds the proposals sent in it: one that ends before them holds none.
    empty = api.ok("GET", url, "olga", params={"to": whole["from"]})
    assert empty["totals"] == NOTHING
    assert verify(api.ctx) == []


def test_a_member_or_manager_sees_their_own_line(api: Api) -> None:
    # R39, R3: owner and admins all; a manager or member their own proposals
    agency, _ = _week(api)
    url = URL.format(agency)
    mine = api.ok("GET", url, "mo", params={"group_by": "member"})
    assert mine["totals"] == MO
    assert [g["key"] for g in mine["groups"]] == [api.ids["mo"]]
    assert api.ok("GET", url, "ann")["totals"] == ANN
    assert api.ok("GET", url, "max", params={"group_by": "member"}) == {
        **api.ok("GET", url, "max"),
        "groups": [],
    }
    assert api.ok("GET", url, "max")["totals"] == NOTHING
    api.person("stranger")
    for who in ("stranger", None):
        r = api.call("GET", url, who)
        assert r.status_code in (401, 404), r.text


def test_results_as_csv(api: Api) -> None:
    agency, _ = _week(api)
    r = api.call("GET", URL.format(agency), "olga", params={"group_by": "boost", "format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.text.splitlines() == [
        "key,proposals,connects_spent,boost_connects_spent,views,interviews,hires,"
        "connects_per_interview,connects_per_hire,cost_per_hire,currency",
        "boosted,1,30,5,1,0,0,,,,",
        "not_boosted,2,25,0,2,1,1,25.0,25.0,500,USD",
        "total,3,55,5,3,1,1,60.0,60.0,1000,USD",
    ]


def test_bad_periods_and_groupings_are_refused(api: Api) -> None:
    agency = api.agency("olga")
    url = URL.format(agency)
    for params in (
        {"group_by": "planet"},
        {"from": "yesterday"},
        {"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
        {"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
        {"format": "xml"},
    ):
        r = api.call("GET", url, "olga", params=params)
        assert r.status_code == 422, (params, r.text)
        assert error(r)["code"] == "invalid_request"
    ok = api.ok("GET", url, "olga", params={"from": "2026-01-01", "to": "2026-02-01"})
    assert (ok["from"], ok["to"]) == ("2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z")
