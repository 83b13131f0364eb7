"""The availability badge over HTTP (R37), on SQLite and PostgreSQL: daily instalments
by the due work, a new price from the next charge, the switch-off with its reason."""

from __future__ import annotations

import json

from sqlalchemy import select

from connects.db.schema import events
from connects.services.verify import verify
from tests.e2e.conftest import Api, error


def _stopped(api: Api, account: str) -> list[dict[str, object]]:
    with api.ctx.db.read() as conn:
        rows = conn.execute(
            select(events.c.payload).where(
                events.c.account_id == account, events.c.kind == "badge_stopped"
            )
        ).scalars()
        return [json.loads(p) for p in rows]


def _day(api: Api) -> None:
    api.ok("POST", "/v1/admin/clock", "operator", {"advance": "P1D"})


def test_a_badge_week_instalments_a_new_price_and_the_stop(api: Api) -> None:
    # R37: 7 a week is 1 a day; 10 is 1, 1, 1, 1, 2, 2, 2 from the next charge
    account = api.freelancer("fay")  # 10 Connects a cycle
    shown = api.ok("GET", f"/v1/accounts/{account}/badge", "fay")
    assert (shown["enabled"], shown["weekly_price"]) == (False, 7)
    on = api.ok("PUT", f"/v1/accounts/{account}/badge", "fay", {"enabled": True, "weekly_max": 10})
    assert on["enabled"] and on["instalments"] == [1] * 7
    assert api.available(account, "fay") == 9  # the first day's instalment at once
    _day(api)
    assert api.available(account, "fay") == 8
    set_price = api.ok("PUT", "/v1/admin/badge-price", "operator", {"weekly": 10})
    assert set_price["instalments"] == [1, 1, 1, 1, 2, 2, 2]
    for _ in range(4):  # days 3 to 6 at the new price: 1, 1, 2, 2
        _day(api)
    assert api.available(account, "fay") == 8 - 6
    history = api.ok("GET", f"/v1/accounts/{account}/connects/history", "fay")["items"]
    assert [e["amount"] for e in history if e["kind"] == "badge"] == [-2, -2, -1, -1, -1, -1]
    # The price rises above the owner's maximum: the next charge switches it off.
    api.ok("PUT", "/v1/admin/badge-price", "operator", {"weekly": 11})
    _day(api)
    shown = api.ok("GET", f"/v1/accounts/{account}/badge", "fay")
    assert (shown["enabled"], shown["stopped_reason"]) == (False, "price_above_maximum")
    assert api.available(account, "fay") == 2
    (stopped,) = _stopped(api, account)
    assert stopped["reason"] == "price_above_maximum" and stopped["weekly_price"] == 11
    # Switching on above the maximum is refused, naming the field.
    r = api.call("PUT", f"/v1/accounts/{account}/badge", "fay", {"enabled": True})
    assert r.status_code == 422 and error(r)["code"] == "invalid_request"
    assert verify(api.ctx) == []


def test_too_few_connects_stop_the_badge_and_refusals(api: Api) -> None:
    # R37: a charge that finds too few Connects switches the badge off
    api.ok("PUT", "/v1/admin/badge-price", "operator", {"weekly": 70})  # 10 a day
    account = api.freelancer("finn")
    api.ok("PUT", f"/v1/accounts/{account}/badge", "finn", {"enabled": True, "weekly_max": 70})
    assert api.available(account, "finn") == 0
    _day(api)
    shown = api.ok("GET", f"/v1/accounts/{account}/badge", "finn")
    assert (shown["enabled"], shown["stopped_reason"]) == (False, "insufficient_connects")
    assert [s["reason"] for s in _stopped(api, account)] == ["insufficient_connects"]
    # Too few to switch on: refused, nothing changes.
    r = api.call("PUT", f"/v1/accounts/{account}/badge", "finn", {"enabled": True})
    assert r.status_code == 409 and error(r)["code"] == "insufficient_connects"
    # Freelancer accounts only; the owner writes; bad input is refused.
    agency = api.agency("olga", mia="member")
    r = api.call("PUT", f"/v1/accounts/{agency}/badge", "olga", {"enabled": True})
    assert r.status_code == 409 and error(r)["code"] == "freelancer_only"
    r = api.call("PUT", f"/v1/accounts/{account}/badge", "finn", {"weekly_max": -1})
    assert r.status_code == 422 and error(r)["code"] == "invalid_request"
    r = api.call("PUT", "/v1/admin/badge-price", "finn", {"weekly": 3})
    assert r.status_code == 403
    assert verify(api.ctx) == []
