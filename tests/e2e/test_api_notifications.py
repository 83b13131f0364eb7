"""Notifications over HTTP: channels, settings, history, through the app (R27-R29)."""

from __future__ import annotations

import json

from connects.notify.channels import LiveNotifier
from connects.notify.claims import DeliveryPolicy
from connects.notify.mail import MailServer
from connects.worker import Worker
from tests.e2e.conftest import Api, error
from tests.integration.notify_support import Webhook, webhook_server

SLACK = "https://hooks.slack.com/services/T0ABCDEF1/B0ABCDEF2/s3cr3tT0kenValue42"


def test_channels_settings_and_history_over_http(api: Api) -> None:
    # R27 R28 R29
    agency = api.agency("olga", adam="admin", mia="member")
    base = f"/v1/accounts/{agency}"
    slack = api.ok("POST", f"{base}/channels", "adam", {"kind": "slack", "target": SLACK}, key="c1")
    assert slack["target"] == "https://hooks.slack.com/…/…ue42" and "secret" not in slack
    with webhook_server(Webhook(now=api.ctx.now)) as hook:
        made = api.call(
            "POST", f"{base}/channels", "olga", {"kind": "webhook", "target": hook.url}, key="c2"
        )
        assert made.status_code == 201
        hooked = made.json()
        hook.secret = hooked["secret"]  # shown once: the receiver now verifies signatures
        listed = api.ok("GET", f"{base}/channels", "olga")
        text = json.dumps(listed)
        assert "s3cr3tT0kenValue42" not in text and hooked["secret"] not in text
        assert [c["kind"] for c in listed["items"]] == ["slack", "webhook"]
        # A member may not see or change channels or settings (R3).
        assert api.call("GET", f"{base}/channels", "mia").status_code == 403
        assert api.call("GET", f"{base}/notification-settings", "mia").status_code == 403
        settings = api.ok(
            "PUT", f"{base}/notification-settings", "olga", {"low_balance_threshold": 70}, key="s1"
        )
        assert settings["low_balance"] is True and settings["low_balance_threshold"] == 70
        assert api.ok("GET", f"/v1/accounts/{agency}", "olga")["low_balance_threshold"] == 70
        api.ok("DELETE", f"{base}/channels/{slack['id']}", "olga", key="d1")
        tested = api.ok("POST", f"{base}/channels/{hooked['id']}/test", "adam", key="t1")
        assert tested["ok"] is True
        assert api.propose("mia", api.job(16), agency).status_code == 201  # 80 -> 64
        Worker(
            api.ctx,
            LiveNotifier(allow_private=api.settings.allow_private_webhooks),
            policy=DeliveryPolicy(),
            due_jobs=False,
        ).run_once()
        assert hook.bad_signatures == 0
    kinds = [r["body"]["type"] for r in hook.received]
    assert kinds == ["channel_test", "balance_low"]
    page = api.ok("GET", f"{base}/notifications", "olga", params={"limit": 10})
    [item] = page["items"]
    assert item["kind"] == "balance_low" and item["status"] == "sent"
    assert item["event_id"] == hook.received[1]["event_id"]
    assert item["attempts"][0]["ok"] is True and item["channel"]["kind"] == "webhook"
    assert page["next_cursor"] is None


def test_bad_channel_input_is_a_clear_422(api: Api) -> None:
    # R32
    agency = api.agency("olga")
    base = f"/v1/accounts/{agency}/channels"
    r = api.call("POST", base, "olga", {"kind": "pager", "target": "x"}, key="a")
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    r = api.call("POST", base, "olga", {"kind": "slack", "target": "https://x.test/"}, key="b")
    assert r.status_code == 422 and r.json()["error"]["details"]["fields"] == ["target"]
    r = api.call(
        "PUT", f"/v1/accounts/{agency}/notification-settings", "olga", {"topups": "no"}, key="c"
    )
    assert r.status_code == 422
    r = api.call("DELETE", f"{base}/chn_nope", "olga", key="d")
    assert r.status_code == 404


FROM = "Connects Alerts <alerts@connects.test>"


def test_r47_over_http_the_codes_are_409_and_422(api: Api) -> None:
    # R47: the API's answers, with and without a server.
    agency = api.agency("olga")
    path = f"/v1/accounts/{agency}/channels"
    r = api.call("POST", path, "olga", {"kind": "email", "target": "ops@agency.test"}, key="m1")
    assert r.status_code == 409 and error(r)["code"] == "email_not_configured"
    api.ctx.notifier = LiveNotifier(mail=MailServer.from_url("smtp://127.0.0.1:9", FROM))
    r = api.call("POST", path, "olga", {"kind": "email", "target": "not-an-address"}, key="m2")
    assert r.status_code == 422 and error(r)["details"]["fields"] == ["target"]
    made = api.ok("POST", path, "olga", {"kind": "email", "target": "ops@agency.test"}, key="m3")
    assert made["target"] == "ops@agency.test" and "secret" not in made
