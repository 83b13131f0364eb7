"""Every list takes back only a ``next_cursor`` it gave: anything else is a 422.

A cursor this API never gave out (junk, another list's id, a Unicode digit, a number
too large for the database, an overlong string) gets 422 ``invalid_request`` naming
``cursor``: never a 200 with some other page, never a 500. The cursors the API does
give still page through every item exactly once, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from connects.notify.fanout import fan_out
from tests.e2e.conftest import Api
from tests.e2e.hostile import assert_error_shape

SLACK = "https://hooks.slack.com/services/T0ABCDEF1/B0ABCDEF2/s3cr3tT0kenValue42"

# Cursors no list ever gives out.
JUNK = [
    "junk",
    "",
    " ",
    "-1",
    "1e3",
    " 1",
    "١٢",  # Arabic-Indic digits: str.isdigit() says yes
    "²",  # a superscript two: isdigit() says yes, int() says no
    "9" * 19,  # more than a BIGINT holds
    "9" * 40,
    "x" * 199,
    "\x00",
    "tup_01kx",  # an id of another list
    "dlv_",
    "dlv_ZZZZ",  # not the id alphabet
    "dlv_0123456789abcdefghjkmnpqrstvwxyz01",  # longer than any id
    "chn_'; drop table channels; --",
]

# Each list endpoint that takes ?cursor=, and the lists it is paged through.
LISTS = [
    "members",
    "grants",
    "billing-methods",
    "topups",
    "connects/history",
    "channels",
    "notifications",
    "holds",  # R34
]
# Lists of the caller themselves (R49: the invitations waiting for their answer).
PERSON_LISTS = ("/v1/me/invitations",)


def _list(api: Api, path: str, who: str, **params: Any) -> Any:
    return api.client.get(path, params=params, headers=api.headers(who))


def _all_pages(api: Api, path: str, who: str, limit: int) -> list[dict[str, Any]]:
    """Every item of a list, following ``next_cursor`` one small page at a time."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(100):
        params: dict[str, Any] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        r = _list(api, path, who, **params)
        assert r.status_code == 200, (path, cursor, r.text)
        body = r.json()
        assert len(body["items"]) <= limit
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError(f"{path} never ended")


def test_every_list_with_a_cursor_is_covered(api_sqlite: Api) -> None:
    """The lists below are every operation whose OpenAPI takes a ``cursor``."""
    spec = api_sqlite.client.app.openapi()  # type: ignore[attr-defined]
    with_cursor = {
        path
        for path, ops in spec["paths"].items()
        for op in ops.values()
        if any(p["name"] == "cursor" for p in op.get("parameters", []))
    }
    accounts = {f"/v1/accounts/{{account_id}}/{name}" for name in LISTS}
    assert with_cursor == accounts | set(PERSON_LISTS)


def test_a_cursor_the_api_never_gave_is_a_422(api: Api) -> None:
    # R32
    agency = api.agency("olga")
    for name in LISTS:
        path = f"/v1/accounts/{agency}/{name}"
        for junk in JUNK:
            r = _list(api, path, "olga", cursor=junk)
            assert r.status_code == 422, (name, repr(junk), r.status_code, r.text[:300])
            assert assert_error_shape(r) == "invalid_request", (name, repr(junk))
            assert r.json()["error"]["details"]["fields"] == ["cursor"], (name, repr(junk))
        # The id of another list is not a cursor of this one.
        r = _list(api, path, "olga", cursor="acct_" + agency.partition("_")[2])
        assert r.status_code == 422 and r.json()["error"]["details"]["fields"] == ["cursor"]
    for path in PERSON_LISTS:
        for junk in JUNK:
            r = _list(api, path, "olga", cursor=junk)
            assert r.status_code == 422, (path, repr(junk), r.status_code, r.text[:300])
            assert r.json()["error"]["details"]["fields"] == ["cursor"], (path, repr(junk))


def test_notifications_and_channels_page_with_their_own_cursors(api: Api) -> None:
    # R28 R29
    agency = api.agency("olga", ada="admin")
    base = f"/v1/accounts/{agency}"
    made = [
        api.ok("POST", f"{base}/channels", "olga", {"kind": "slack", "target": SLACK}, key=f"c{i}")
        for i in range(3)
    ]
    channels = _all_pages(api, f"{base}/channels", "ada", limit=2)
    assert [c["id"] for c in channels] == [c["id"] for c in made]  # oldest first
    first = _list(api, f"{base}/channels", "ada", limit=1).json()
    assert first["next_cursor"] == made[0]["id"]

    api.earnings(agency, 1000)
    for i in range(2):
        body = {"quantity": 1, "pay_with": "earnings"}
        api.ok("POST", f"{base}/purchases", "olga", body, key=f"p{i}")
    assert fan_out(api.ctx) > 0  # each event: one pending delivery per channel
    notes = _all_pages(api, f"{base}/notifications", "ada", limit=2)
    ids = [n["id"] for n in notes]
    assert len(ids) == len(set(ids)) == 6 and ids == sorted(ids, reverse=True)  # newest first
    assert all(n["kind"] == "connects_purchased" for n in notes)
    # A channel's id is no notification cursor, and the other way round.
    r = _list(api, f"{base}/notifications", "ada", cursor=made[0]["id"])
    assert r.status_code == 422 and r.json()["error"]["details"]["fields"] == ["cursor"]
    r = _list(api, f"{base}/channels", "ada", cursor=ids[0])
    assert r.status_code == 422 and r.json()["error"]["details"]["fields"] == ["cursor"]


def test_numbered_lists_still_page(api: Api) -> None:
    # R30
    agency = api.agency("olga", ada="admin", mia="member", max="member")
    base = f"/v1/accounts/{agency}"
    members = _all_pages(api, f"{base}/members", "olga", limit=3)
    assert len(members) == 4 and len({m["user_id"] for m in members}) == 4
    api.earnings(agency, 1000)
    for i in range(3):
        body = {"quantity": 1, "pay_with": "earnings"}
        api.ok("POST", f"{base}/purchases", "olga", body, key=f"p{i}")
    whole = _list(api, f"{base}/connects/history", "olga", limit=1000).json()["items"]
    paged = _all_pages(api, f"{base}/connects/history", "olga", limit=2)
    assert [e["id"] for e in paged] == [e["id"] for e in whole] and len(paged) >= 4
