"""Helpers for the hostile-input and security tests: a two-account world, the ledger's
state before and after, and the error shape every refusal must have.

``CONNECTS_LONG_TESTS=1`` turns on the long variants (many more generated examples).
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from connects.db.schema import accounts, entries, lots
from connects.services.context import Context
from connects.services.verify import verify
from tests.e2e.conftest import Api

LONG = os.environ.get("CONNECTS_LONG_TESTS", "") not in ("", "0")

TELEGRAM_BOT_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ"  # test-shaped, not real
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"sweep-0123456789abcdef-never-shown").decode()


def assert_error_shape(response: Any) -> str:
    """A 4xx answer is ``{"error": {"code", "message", "details"}}``; its code."""
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:300])
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    assert isinstance(error["code"], str) and error["code"].replace("_", "").isalpha()
    assert error["code"] == error["code"].lower()
    assert isinstance(error["message"], str) and isinstance(error["details"], dict)
    return str(error["code"])


def ledger_state(ctx: Context) -> dict[str, tuple[int, int, int, int]]:
    """Per account: balance, sequence, number of entries, Connects left in lots."""
    with ctx.db.read() as conn:
        n_entries = dict(
            conn.execute(
                select(entries.c.account_id, func.count()).group_by(entries.c.account_id)
            ).all()
        )
        left = dict(
            conn.execute(
                select(lots.c.account_id, func.sum(lots.c.remaining)).group_by(lots.c.account_id)
            ).all()
        )
        rows = conn.execute(select(accounts.c.id, accounts.c.balance, accounts.c.seq)).all()
    return {
        r.id: (int(r.balance), int(r.seq), int(n_entries.get(r.id, 0)), int(left.get(r.id) or 0))
        for r in rows
    }


def assert_ledger_sound(ctx: Context) -> None:
    breaches = verify(ctx)
    assert not breaches, [str(b) for b in breaches]


@dataclass
class Side:
    """One account's people and objects: ``people`` maps role -> cast name."""

    agency: str
    freelancer: str
    people: dict[str, str]
    objects: dict[str, str] = field(default_factory=dict)


@dataclass
class TwoAccounts:
    api: Api
    a: Side
    b: Side
    secrets: dict[str, str] = field(default_factory=dict)


def _side(api: Api, p: str) -> Side:
    """An agency with a person in every role, a freelancer account, a card, a grant,
    channels, an open invitation, a job posted by the owner and a proposal on it;
    earnings to spend."""
    people = {
        "owner": f"{p}own",
        "admin": f"{p}adm",
        "manager": f"{p}man",
        "member": f"{p}mem",
        "freelancer": f"{p}fre",
    }
    agency = api.agency(
        people["owner"],
        **{people["admin"]: "admin", people["manager"]: "manager", people["member"]: "member"},
    )
    freelancer = api.freelancer(people["freelancer"])
    api.earnings(agency, 100_000)
    owner = people["owner"]
    base = f"/v1/accounts/{agency}"
    side = Side(agency, freelancer, people)
    o = side.objects
    o["account_id"] = agency
    o["user_id"] = api.ids[people["member"]]
    card = api.ok("POST", f"{base}/billing-methods", owner, {"token": "tok_visa"})
    o["billing_method"] = o["billing_method_id"] = card["id"]
    grant = {"grantee": "topup-manager", "permissions": ["connects:purchase"]}
    o["grant_id"] = api.ok("POST", f"{base}/grants", owner, grant)["id"]
    hook = {"kind": "webhook", "target": "http://127.0.0.1:9/hook", "secret": WEBHOOK_SECRET}
    o["channel_id"] = api.ok("POST", f"{base}/channels", owner, hook)["id"]
    tg = {"kind": "telegram", "target": f"{TELEGRAM_BOT_TOKEN}/12345"}
    o["telegram_channel_id"] = api.ok("POST", f"{base}/channels", owner, tg)["id"]
    # An invitation still waiting for its person's answer (R49)
    invited = {"user_id": api.person(f"{p}inv"), "role": "member"}
    o["invitation_id"] = api.ok("POST", f"{base}/members", owner, invited)["id"]
    o["job_id"] = api.job(2, client=owner)
    r = api.propose(people["member"], o["job_id"], agency)
    assert r.status_code == 201, r.text
    o["proposal_id"] = r.json()["id"]
    return side


def two_accounts(api: Api) -> TwoAccounts:
    a = _side(api, "a")
    b = _side(api, "b")
    secrets = {
        "b owner token": api.tokens[b.people["owner"]],
        "a owner token": api.tokens[a.people["owner"]],
        "operator token": "operator-token-for-tests",
        "business manager token": "business-manager-token-for-tests",
        "webhook secret": WEBHOOK_SECRET,
        "telegram bot token": TELEGRAM_BOT_TOKEN,
        # the secret half of the bot token alone must not show either
        "telegram bot key": TELEGRAM_BOT_TOKEN.split(":", 1)[1],
    }
    return TwoAccounts(api, a, b, secrets)
