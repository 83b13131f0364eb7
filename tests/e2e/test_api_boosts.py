"""Holds and boosted proposals over HTTP (R34-R36, R38), on SQLite and PostgreSQL: the
top 4, captures on the client's interactions, the close at a hire or the deadline,
returns and releases, and each refusal."""

from __future__ import annotations

from typing import Any

from connects.services.verify import verify
from tests.e2e.conftest import Api, error


def _bid(api: Api, who: str, job: str, account: str, boost: int) -> Any:
    price = api.ok("GET", f"/v1/jobs/{job}", who)["connects_required"]
    body = {
        "job_id": job,
        "account_id": account,
        "freelancer_id": api.ids[who],
        "expected_connects": price,
        "boost": boost,
    }
    r = api.call("POST", "/v1/proposals", who, body)
    assert r.status_code == 201, r.text
    return r.json()


def _proposal(api: Api, pid: str, who: str = "olga") -> Any:
    return api.ok("GET", f"/v1/proposals/{pid}", who)


def test_a_boosted_week_top_four_captures_and_the_close(api: Api) -> None:
    # R34 R35 R36 R38
    agency = api.agency("olga", a="member", b="member", c="member", d="member", e="member")
    job = api.job(5)
    first = _bid(api, "a", job, agency, 1)
    assert first["boost"]["status"] == "held" and first["boost"]["rank"] == 1
    overview = api.ok("GET", f"/v1/accounts/{agency}/connects", "olga")
    # R34: the bid is held, not spent: available = 80 - 5 - 1
    assert (overview["available"], overview["held"]) == (74, 1)
    assert overview["next_grant"]["connects"] == 80
    (hold,) = api.ok("GET", f"/v1/accounts/{agency}/holds", "a")["items"]
    assert (hold["amount"], hold["status"], hold["proposal_id"]) == (1, "held", first["id"])
    history = api.ok("GET", f"/v1/accounts/{agency}/connects/history", "olga")["items"]
    assert (history[0]["kind"], history[0]["amount"], history[0]["hold_id"]) == (
        "hold",
        0,
        hold["id"],
    )
    assert history[0]["actor"] == f"user:{api.ids['a']}"
    p = {"a": first["id"]}
    for who, boost in (("b", 2), ("c", 3), ("d", 4), ("e", 5)):
        p[who] = _bid(api, who, job, agency, boost)["id"]
    auction = api.ok("GET", f"/v1/jobs/{job}/auction", "client")
    assert auction["open"] and auction["top"] == [5, 4, 3, 2]
    assert _proposal(api, p["a"])["boost"]["rank"] == 5
    # A view in the top 4 captures at once; out of it, nothing moves.
    viewed = api.ok("POST", f"/v1/proposals/{p['b']}/view", "client")
    assert viewed["boost"]["status"] == "captured" and viewed["outcomes"][0]["kind"] == "viewed"
    assert api.ok("POST", f"/v1/proposals/{p['a']}/view", "client")["boost"]["status"] == "held"
    # Raising: the hold grows; lower or equal is refused; a captured bid cannot grow.
    r = api.call("POST", f"/v1/proposals/{p['a']}/boost", "a", {"bid": 1})
    assert r.status_code == 422 and error(r)["code"] == "invalid_request"
    raised = api.ok("POST", f"/v1/proposals/{p['a']}/boost", "a", {"bid": 6})
    assert (raised["boost"]["bid"], raised["boost"]["rank"]) == (6, 1)
    r = api.call("POST", f"/v1/proposals/{p['b']}/boost", "b", {"bid": 7})
    assert r.status_code == 422
    # b was pushed out after its capture: it stays spent (R35).
    assert _proposal(api, p["b"])["boost"] == {**viewed["boost"], "rank": 5, "boosted": False}
    # A decline in the top 4 captures; the proposal is declined, never refunded.
    declined = api.ok("POST", f"/v1/proposals/{p['c']}/decline", "client")
    assert (declined["status"], declined["boost"]["status"]) == ("declined", "captured")
    # R35: the first hire closes the auction: the top 4 still held are captured.
    api.ok("POST", f"/v1/jobs/{job}/close", "client", {"hired_proposal_id": p["d"]})
    got = {who: _proposal(api, pid)["boost"]["status"] for who, pid in p.items()}
    assert got == {
        "a": "captured",
        "b": "captured",
        "c": "captured",
        "d": "captured",
        "e": "captured",
    }
    assert not api.ok("GET", f"/v1/jobs/{job}/auction", "a")["open"]
    r = api.call("POST", f"/v1/proposals/{p['e']}/boost", "e", {"bid": 99})
    assert r.status_code == 409
    overview = api.ok("GET", f"/v1/accounts/{agency}/connects", "olga")
    # 80, less 5 prices of 5, less the bids captured: 6 + 2 + 3 + 4 + 5
    assert (overview["available"], overview["held"]) == (80 - 25 - 20, 0)
    assert overview["used_this_month"] == 45  # R4: captured boosts count as used
    assert verify(api.ctx) == []


def test_returns_releases_and_refusals(api: Api) -> None:
    # R35 R36: a cancel gives captured bids back with the price; a withdrawal releases
    agency = api.agency("olga", a="member", b="member", c="member")
    job = api.job(2)
    pa = _bid(api, "a", job, agency, 5)["id"]
    pb = _bid(api, "b", job, agency, 6)["id"]
    pc = _bid(api, "c", job, agency, 7)["id"]
    api.ok("POST", f"/v1/proposals/{pa}/view", "client")  # captured: 5 spent
    api.ok("POST", f"/v1/proposals/{pc}/withdraw", "c")  # released, price kept
    assert _proposal(api, pc)["boost"]["status"] == "released"
    assert api.available(agency, "olga") == 80 - 6 - 5 - 6
    ended = api.ok("POST", f"/v1/jobs/{job}/cancel", "client")
    # a's price and captured bid come back, b's price comes back, b's bid is released
    assert ended["refunded_connects"] == 2 + 5 + 2
    assert api.available(agency, "olga") == 80 - 2
    assert _proposal(api, pb)["boost"]["status"] == "released"
    kinds = [o["kind"] for o in _proposal(api, pa)["outcomes"]]
    assert kinds == ["viewed", "returned"]
    holds = api.ok("GET", f"/v1/accounts/{agency}/holds", "olga")["items"]
    assert {h["status"] for h in holds} == {"captured", "released"}
    # Bad input: a bid of 0 or above the maximum, a job whose auction closed.
    job2 = api.job(1)
    for bad in (0, 101, "5"):
        body = {
            "job_id": job2,
            "account_id": agency,
            "freelancer_id": api.ids["a"],
            "expected_connects": 1,
            "boost": bad,
        }
        r = api.call("POST", "/v1/proposals", "a", body)
        assert r.status_code == 422 and error(r)["code"] == "invalid_request", r.text
    # R35: price and bid must both be available
    body = {
        "job_id": job2,
        "account_id": agency,
        "freelancer_id": api.ids["a"],
        "expected_connects": 1,
        "boost": 78,
    }
    r = api.call("POST", "/v1/proposals", "a", body)
    assert r.status_code == 409 and error(r)["code"] == "insufficient_connects"
    assert error(r)["details"] == {"required": 79, "available": 78}  # type: ignore[comparison-overlap]
    # Only the job's client views; the proposal is not shown to strangers.
    api.person("stranger")
    assert api.call("POST", f"/v1/proposals/{pb}/view", "stranger").status_code == 404
    assert api.call("GET", f"/v1/proposals/{pb}", "stranger").status_code == 404
    assert api.ok("GET", f"/v1/proposals/{pb}", "client")["id"] == pb
    assert verify(api.ctx) == []


def test_the_auction_closes_at_its_deadline_by_the_due_work(api: Api) -> None:
    # R35: 7 days after posting, the top 4 held are captured and the rest released
    agency = api.agency("olga", **{n: "member" for n in "abcde"})
    job = api.job(1)
    ids = {
        n: _bid(api, n, job, agency, b)["id"] for n, b in zip("abcde", (1, 2, 3, 4, 5), strict=True)
    }
    api.ok("POST", "/v1/admin/clock", "operator", {"advance": "P6D"})
    assert api.ok("GET", f"/v1/jobs/{job}/auction", "a")["open"]
    api.ok("POST", "/v1/admin/clock", "operator", {"advance": "P1D"})
    auction = api.ok("GET", f"/v1/jobs/{job}/auction", "a")
    assert not auction["open"] and auction["top"] == [5, 4, 3, 2]
    statuses = {n: _proposal(api, pid)["boost"]["status"] for n, pid in ids.items()}
    assert statuses == {
        "a": "released",
        "b": "captured",
        "c": "captured",
        "d": "captured",
        "e": "captured",
    }
    assert api.available(agency, "olga") == 80 - 5 - (2 + 3 + 4 + 5)
    r = api.call("POST", f"/v1/proposals/{ids['a']}/boost", "a", {"bid": 9})
    assert r.status_code == 409 and error(r)["code"] == "auction_closed"
    assert verify(api.ctx) == []


def test_a_new_bids_rank_is_its_place_among_the_bids_before_it(api: Api) -> None:
    # R35: the rank a POST answers (counted by the hold's own INSERT) is the place the
    # auction gives the bid right then: highest, then earliest, then by id, released
    # bids out, other accounts' bids in. Same instant here (simulated clock): ties
    # fall to the hold ids.
    bidders = {f"m{i}": "member" for i in range(8)}
    agency = api.agency("olga", **bidders)
    other = api.agency("pia", q="member")
    job = api.job(1)
    answered: dict[str, int] = {}
    bids = [("m0", agency, 3), ("m1", agency, 5), ("q", other, 3), ("m2", agency, 3)]
    bids += [("m3", agency, 7), ("m4", agency, 5), ("m5", agency, 1), ("m6", agency, 5)]
    for n, (who, account, boost) in enumerate(bids):
        if n == 5:  # a withdrawn bid is released: it no longer ranks
            api.ok("POST", f"/v1/proposals/{next(iter(answered))}/withdraw", "m0")
        made = _bid(api, who, job, account, boost)
        answered[made["id"]] = made["boost"]["rank"]
        owner = "pia" if account == other else "olga"
        assert _proposal(api, made["id"], owner)["boost"]["rank"] == made["boost"]["rank"], n
        assert made["boost"]["boosted"] == (made["boost"]["rank"] <= 4)
    # 3 | 5 3 | 5 3 3q | 5 3 3q 3 | 7 ..., then m0's 3 released: 7 5 5 | 7 5 5 3q 3 1 | 7 5 5 5
    assert list(answered.values()) == [1, 1, 3, 4, 1, 3, 6, 4]
