"""Security sweep: no token of account A reads or changes account B's data, and no
secret (bearer tokens, sign-in links, channel secrets) shows in an answer or a log line.

Every operation of the app's OpenAPI document with a path parameter is called by each of
A's people (owner, admin, manager, member, an A freelancer) and the operator, with the
path filled with B's objects and a body that would be valid. The conventions of API.md:
an object of an account the caller is not a member of is 404,
a job of another client is 403 to change (jobs are public to read), /admin is the
operator's alone (403). B's ledger and B's views are the same afterwards.
"""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from connects.logs import JsonFormatter
from tests.e2e.conftest import Api
from tests.e2e.hostile import (
    TwoAccounts,
    assert_error_shape,
    assert_ledger_sound,
    ledger_state,
    two_accounts,
)

# A body each operation would accept from an entitled caller.
BODIES: dict[str, Any] = {
    "update_account": {"low_balance_threshold": 1, "name": "Taken over"},
    "add_member": {"user_id": "{a_person}", "role": "admin"},
    "change_member_role": {"role": "admin"},
    "set_member_budget": {"monthly_connects": 0},
    "add_billing_method": {"token": "tok_visa"},
    "change_billing_method": {"default": True},
    "buy_connects": {"quantity": 10, "pay_with": "earnings"},
    "create_grant": {"grantee": "other-manager", "permissions": ["connects:purchase"]},
    "put_auto_topup": {"enabled": True, "per_month": 300},
    "add_channel": {"kind": "webhook", "target": "http://127.0.0.1:9/evil"},
    "put_notification_settings": {"low_balance": False, "topups": False},
    "change_job_price": {"connects_required": 9},
    "close_job": {},
    "credit_earnings": {"amount": 100},
    "move_clock": {"advance": "PT1M"},
    "raise_boost": {"bid": 2},
    "put_badge": {"weekly_max": 5},
}
# Anyone signed in may read a job post (the marketplace is public to its members).
PUBLIC = {("GET", "get_job"), ("GET", "get_auction")}  # to anyone with a token, the operator too
# The client's own job: another person may not change it, and it is not hidden.
NOT_HIDDEN = {"change_job_price", "cancel_job", "close_job"}

_PARAMS = re.compile(r"{(\w+)}")


def _routes(api: Api) -> list[tuple[str, str, str]]:
    """(method, path template, operation id) of every operation of the app's OpenAPI
    document with a path parameter."""
    spec = api.client.get("/openapi.json").json()
    return [
        (method.upper(), path, op["operationId"])
        for path, ops in spec["paths"].items()
        if _PARAMS.search(path)
        for method, op in ops.items()
    ]


def _fill(path: str, w: TwoAccounts) -> str:
    return _PARAMS.sub(lambda m: w.b.objects[m.group(1)], path)


def _b_views(w: TwoAccounts) -> dict[str, Any]:
    """Everything B's owner can read about B (what A must not have changed)."""
    api, b = w.api, w.b
    owner = b.people["owner"]
    base = f"/v1/accounts/{b.agency}"
    paths = [
        base,
        f"{base}/members",
        f"{base}/connects/history",
        f"{base}/connects/expiring",
        f"{base}/billing-methods",
        f"{base}/grants",
        f"{base}/auto-topup",
        f"{base}/topups",
        f"{base}/channels",
        f"{base}/notification-settings",
        f"/v1/jobs/{b.objects['job_id']}",
    ]
    views = {p: api.ok("GET", p, owner) for p in paths}
    overview = api.ok("GET", f"{base}/connects", owner)
    views["available"] = overview["available"]
    return views


def _callers(w: TwoAccounts) -> list[str]:
    # The business manager is no account's token: B granted it, so it may buy for B
    # (the authorization matrix covers it); A's people and the operator may not.
    return [*w.a.people.values(), "operator"]


def _assert_no_secret(text: str, w: TwoAccounts, where: str) -> None:
    for name, secret in w.secrets.items():
        assert secret not in text, f"{name} leaked in {where}"


def _assert_logs_clean(caplog: pytest.LogCaptureFixture, w: TwoAccounts) -> None:
    """What the app logs, as ``connects.logs`` writes it (JSON, scrubbed), shows no secret;
    the app's own loggers never even hand one to logging. Libraries may (apprise logs
    the Telegram API URL, bot token included, at DEBUG): the formatter scrubs those."""
    formatter = JsonFormatter()
    for record in caplog.records:
        _assert_no_secret(formatter.format(record), w, f"a {record.name} log line")
        if record.name.startswith(("connects", "uvicorn")):
            _assert_no_secret(record.getMessage(), w, f"a raw {record.name} log record")


def test_account_a_cannot_touch_account_b(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    w = two_accounts(api)
    ledger_before = ledger_state(api.ctx)
    views_before = _b_views(w)
    routes = _routes(api)
    assert len(routes) >= 25, routes
    failures = []
    for method, template, name in routes:
        path = _fill(template, w)
        body = BODIES.get(name)
        if isinstance(body, dict) and body.get("user_id") == "{a_person}":
            body = {**body, "user_id": api.ids[w.a.people["member"]]}
        for caller in _callers(w):
            if caller == "operator" and "/admin/" in template:
                continue  # the operator's own routes act on any account by design
            r = api.call(method, path, caller, body)
            _assert_no_secret(r.text, w, f"{method} {path} as {caller}")
            if (method, name) in PUBLIC:
                ok = r.status_code == 200
            elif name in NOT_HIDDEN or "/admin/" in template or caller == "operator":
                ok = r.status_code == 403
            else:
                ok = r.status_code in (403, 404)
            if r.status_code >= 400:
                assert_error_shape(r)
            if not ok:
                failures.append(f"{method} {path} ({name}) as {caller}: {r.status_code} {r.text}")
    assert not failures, "\n".join(failures)
    assert ledger_state(api.ctx) == ledger_before
    assert _b_views(w) == views_before
    assert_ledger_sound(api.ctx)
    _assert_logs_clean(caplog, w)


def test_b_ledger_unchanged_by_a_people(api: Api) -> None:
    """Without the operator: every write of A's people on B leaves B's ledger as it was."""
    w = two_accounts(api)
    before = ledger_state(api.ctx)
    views_before = _b_views(w)
    for method, template, name in _routes(api):
        if method == "GET" or "/admin/" in template:
            continue
        path = _fill(template, w)
        for caller in w.a.people.values():
            r = api.call(method, path, caller, BODIES.get(name))
            assert r.status_code in (403, 404), (method, path, caller, r.status_code, r.text)
            assert_error_shape(r)
    # A proposal drawing on B's pool, submitted by A's people: 404 (not a member of B).
    for caller in w.a.people.values():
        body = {
            "job_id": w.a.objects["job_id"],
            "account_id": w.b.agency,
            "freelancer_id": api.ids[caller],
            "expected_connects": 2,
        }
        r = api.call("POST", "/v1/proposals", caller, body)
        assert r.status_code == 404, r.text
        assert_error_shape(r)
    assert ledger_state(api.ctx) == before
    assert _b_views(w) == views_before
    assert_ledger_sound(api.ctx)


def test_no_secret_in_any_answer(api_sqlite: Api, caplog: pytest.LogCaptureFixture) -> None:
    """Every GET route, read by B's owner on B's own objects, shows no secret whole; the
    only answers that carry a token are the ones that create it."""
    caplog.set_level(logging.DEBUG)
    api = api_sqlite
    w = two_accounts(api)
    owner = w.b.people["owner"]
    for method, template, _name in _routes(api):
        if method != "GET":
            continue
        r = api.call(method, _fill(template, w), owner)
        assert r.status_code == 200, (template, r.status_code, r.text)
        _assert_no_secret(r.text, w, f"GET {template}")
    for path in ("/v1/me", f"/v1/accounts/{w.b.agency}/connects/history?format=csv", "/metrics"):
        r = api.call("GET", path, owner)
        assert r.status_code == 200, r.text
        _assert_no_secret(r.text, w, f"GET {path}")
    # The one-time answers: a new user's token, a generated webhook secret.
    made = api.ok("POST", "/v1/users", None, {"name": "New", "email": "new@sweep.io"})
    assert made["token"]
    hook = api.ok(
        "POST",
        f"/v1/accounts/{w.b.agency}/channels",
        owner,
        {"kind": "webhook", "target": "http://127.0.0.1:9/other"},
    )
    assert hook["secret"]
    listed = api.ok("GET", f"/v1/accounts/{w.b.agency}/channels", owner)
    assert hook["secret"] not in str(listed) and made["token"] not in str(listed)
    # A test-send to a webhook that cannot be reached: the error shown is redacted too.
    # (Not Telegram: that would go out to the internet.)
    r = api.call(
        "POST", f"/v1/accounts/{w.b.agency}/channels/{w.b.objects['channel_id']}/test", owner
    )
    assert r.status_code < 500, r.text
    _assert_no_secret(r.text, w, "a test-send answer")
    notes = api.call("GET", f"/v1/accounts/{w.b.agency}/notifications", owner)
    _assert_no_secret(notes.text, w, "the notifications page")
    _assert_logs_clean(caplog, w)
    assert made["token"] not in "".join(JsonFormatter().format(r) for r in caplog.records)
