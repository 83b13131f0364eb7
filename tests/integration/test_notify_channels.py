"""Telegram, Slack and Discord through Apprise, checked without the network: the URL
Apprise is given and the request it would send; messages and crypto (R27, R28)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import standardwebhooks

from connects.domain.errors import InvalidRequest
from connects.domain.vocabulary import EventType
from connects.notify import crypto
from connects.notify.channels import (
    Channel,
    Event,
    LiveNotifier,
    apprise_url,
    mask,
    normalize_target,
)
from connects.notify.messages import render
from connects.notify.webhooks import body, sign
from tests.conftest import START

TG_TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
SLACK = "https://hooks.slack.com/services/T0ABCDEF1/B0ABCDEF2/s3cr3tT0kenValue42"
DISCORD = "https://discord.com/api/webhooks/112233445566778899/AbCdEf-GhIjKlMnOpQrStUv_wxyz0123"


def _channel(kind: str, target: str) -> Channel:
    return Channel("chn_1", "acct_1", kind, normalize_target(kind, target))


EVENT = Event(
    id="evt_stable_1",
    account_id="acct_1",
    kind="topup_failed",
    payload={"balance": 0, "reason": "payment_declined"},
    account_name="Olga Agency",
)


class _Captured:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, *args: str, **kw: Any) -> Any:
        url = args[-1] if args else kw.pop("url")
        self.calls.append({"url": url, **kw})
        plain = b"ok" if "hooks.slack.com" in url else b'{"ok": true, "result": {}}'

        class Response:
            status_code = 200
            ok = True
            content = plain
            text = plain.decode()
            headers: dict[str, str] = {}

            def json(self) -> Any:
                return json.loads(plain) if plain != b"ok" else {}

            def close(self) -> None:
                pass

        return Response()


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> _Captured:
    """Apprise's HTTP calls answered in memory: nothing leaves the machine."""
    import requests

    cap = _Captured()
    monkeypatch.setattr(requests, "post", cap)
    monkeypatch.setattr(requests, "get", cap)
    monkeypatch.setattr(requests, "request", cap)
    return cap


@pytest.mark.parametrize(
    ("kind", "target", "url", "host"),
    [
        (
            "telegram",
            f"{TG_TOKEN}/-1001234567",
            f"tgram://{TG_TOKEN}/-1001234567",
            "api.telegram.org",
        ),
        ("slack", SLACK, "slack://T0ABCDEF1/B0ABCDEF2/s3cr3tT0kenValue42", "hooks.slack.com"),
        (
            "discord",
            DISCORD,
            "discord://112233445566778899/AbCdEf-GhIjKlMnOpQrStUv_wxyz0123",
            "discord.com",
        ),
    ],
)
def test_chat_channels_go_through_apprise_with_the_right_url_and_message(
    kind: str, target: str, url: str, host: str, captured: _Captured
) -> None:
    # R28 R27
    channel = _channel(kind, target)
    assert apprise_url(channel) == url
    LiveNotifier().send(channel, EVENT, at=START)
    sent = [c for c in captured.calls if host in c["url"]]
    assert sent, captured.calls
    body = json.dumps(sent[-1].get("data") or sent[-1].get("json") or "", default=str)
    assert "Auto top-up could not buy Connects: the card was declined" in body.replace("\\n", " ")
    assert "add another card, or make another the default" in body


def test_masks_never_show_the_secret() -> None:
    # R28
    assert mask("slack", SLACK) == "https://hooks.slack.com/…/…ue42"
    assert "AbCdEf" not in mask("discord", DISCORD)
    assert mask("telegram", f"tgram://{TG_TOKEN}/42") == "tgram://…Dsaw/42"
    hint = mask("email", "mailtos://bob:pa55word@smtp.example.com:587?to=ops@example.com")
    assert hint == "mailtos://smtp.example.com:587?to=ops@example.com"
    assert (
        mask("webhook", "https://example.com/hook/tok_abcdefghijkl") == "https://example.com/…ijkl"
    )


@pytest.mark.parametrize(
    ("kind", "target"),
    [
        ("telegram", "not-a-token"),
        ("slack", "https://example.com/services/x"),
        ("discord", "https://discord.com/other"),
        ("email", "not an address"),
        ("email", "ops@example.com, boss@example.com"),
        ("email", "Ops <ops@example.com>"),
        # R47: an SMTP URL is the operator's setting now, not a channel's target
        ("email", "mailtos://bob:pa55word@smtp.example.com:587?to=ops@example.com"),
        ("webhook", "ftp://example.com/x"),
        ("pager", "x"),
    ],
)
def test_bad_targets_are_refused(kind: str, target: str) -> None:
    # R32
    with pytest.raises(InvalidRequest):
        normalize_target(kind, target)


def test_webhook_signature_is_the_standard_webhooks_one() -> None:
    # R46 R29: our one signer and the package's agree, byte for byte
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the Standard Webhooks spec's example
    content = body(EVENT.id, EVENT.kind, EVENT.account_id, START, EVENT.payload)
    ours = sign(secret, EVENT.id, int(START.timestamp()), content)
    assert ours == standardwebhooks.Webhook(secret).sign(EVENT.id, START, content.decode())
    assert ours != sign(secret, EVENT.id, int(START.timestamp()) + 1, content)
    assert json.loads(content)["id"] == "evt_stable_1"


def test_every_event_kind_reads_well() -> None:
    # R27
    payloads: dict[str, dict[str, Any]] = {
        "balance_low": {"balance": 8, "threshold": 10},
        "balance_empty": {"balance": 0},
        "topup_succeeded": {"balance": 40, "quantity": 40, "amount_cents": 600},
        "topup_failed": {"balance": 0, "reason": "payment_declined"},
        "topup_paused": {"balance": 0, "declines": 3},
        "badge_stopped": {
            "balance": 2,
            "reason": "price_above_maximum",
            "weekly_price": 11,
            "weekly_max": 10,
        },
        "monthly_limit_reached": {"balance": 0, "per_month": 400, "month": "2026-01"},
        "connects_refunded": {
            "balance": 30,
            "amount": 16,
            "job_title": "Logo",
            "reason": "cancelled",
        },
        "connects_purchased": {"balance": 50, "quantity": 50, "amount_cents": 750},
        "connects_expiring": {"balance": 90, "within_30d": 80, "first_expires_at": "2027-01-15"},
    }
    assert set(payloads) == set(EventType)
    for kind, payload in payloads.items():
        m = render(kind, payload, "Olga Agency")
        assert m.title and str(payload["balance"]) in m.body, kind
    assert render("topup_failed", payloads["topup_failed"]).body.startswith(
        "Auto top-up could not buy Connects: the card was declined. It is tried again later"
    )
    assert "$6.00" in render("topup_succeeded", payloads["topup_succeeded"]).body
    assert "2027-01-15" in render("connects_expiring", payloads["connects_expiring"]).body


def test_secrets_need_the_right_key_and_production_needs_a_real_one() -> None:
    # R28
    token = crypto.encrypt("key-one-0123456789", "tgram://secret/1")
    assert "secret" not in token
    assert crypto.decrypt("key-one-0123456789", token) == "tgram://secret/1"
    with pytest.raises(ValueError):
        crypto.decrypt("key-two-0123456789", token)
    with pytest.raises(crypto.SecretKeyMissing):
        crypto.check_key("change-me", production=True)
    crypto.check_key("change-me", production=False)
