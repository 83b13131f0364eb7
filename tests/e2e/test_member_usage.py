"""A member's use this month over HTTP: the members list, the overview and the budget
check count the same Connects (R4, R26)."""

from __future__ import annotations

from datetime import UTC, datetime

from connects.domain.clock import SimulatedClock
from tests.e2e.conftest import Api


# R4 # R26
def test_a_refund_of_last_months_proposal_over_http(api: Api, clock: SimulatedClock) -> None:
    """R4, R26: a 10-Connect budget, 10 spent in January and 10 in February, the January
    job cancelled in February. ``GET /members`` and the overview show 10 used this
    month, never less, and the next proposal is refused ``member_budget_exceeded``."""
    agency = api.agency("olga", mia="member")
    mia = api.ids["mia"]
    api.ok("PUT", f"/v1/accounts/{agency}/members/{mia}/budget", "olga", {"monthly_connects": 10})
    january = api.job(10)
    assert api.propose("mia", january, agency).status_code == 201  # Jan 15
    clock.set(datetime(2026, 2, 3, 9, 0, tzinfo=UTC))
    assert api.propose("mia", api.job(10), agency).status_code == 201
    cancelled = api.ok("POST", f"/v1/jobs/{january}/cancel", "client")
    assert cancelled["refunded_connects"] == 10

    members = api.ok("GET", f"/v1/accounts/{agency}/members", "olga")["items"]
    assert {m["user_id"]: m["spent_this_month"] for m in members} == {
        api.ids["olga"]: 0,
        mia: 10,
    }
    over = api.ok("GET", f"/v1/accounts/{agency}/connects", "mia")
    assert over["used_this_month"] == 10
    r = api.propose("mia", api.job(1), agency)
    assert r.status_code == 409
    refusal = r.json()["error"]
    assert refusal["code"] == "member_budget_exceeded"
    assert refusal["details"]["spent_this_month"] == 10
