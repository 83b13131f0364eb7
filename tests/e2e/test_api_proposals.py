"""The job and proposal endpoints of API.md over HTTP (refunds and rewards), on SQLite
and PostgreSQL, with each refusal code.
"""

from __future__ import annotations

from tests.e2e.conftest import Api, error


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
