"""Webhook deliveries are Standard Webhooks v1 (R46): every one verifies with the
``standardwebhooks`` package from PyPI; a replay with an old timestamp, a tampered body
or a forged timestamp does not; secrets are ``whsec_``; secrets from before keep their key."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import standardwebhooks
from sqlalchemy import select, update
from standardwebhooks.webhooks import WebhookVerificationError

from connects.db.migrate import downgrade, upgrade
from connects.db.schema import channels
from connects.domain.clock import SimulatedClock
from connects.domain.commands import AddChannel, SendTestNotification
from connects.domain.errors import InvalidRequest
from connects.notify import crypto
from connects.notify.channels import Channel, DeliveryFailed, Event, LiveNotifier
from connects.notify.claims import DeliveryPolicy
from connects.services.context import Context
from connects.worker import Worker
from tests.conftest import START, MakeCtx
from tests.integration.notify_support import Webhook as Receiver
from tests.integration.notify_support import raw_events, verify, webhook_server, whsec
from tests.world import World

SECRET = whsec("r46-standard-webhooks-key-0123456789")
FAST = DeliveryPolicy(
    lease=timedelta(seconds=30),
    base_delay=timedelta(seconds=10),
    max_delay=timedelta(minutes=5),
    max_attempts=4,
)


def _worker(ctx: Context) -> Worker:
    notifier = LiveNotifier(timeout=5, allow_private=ctx.allow_private_webhooks)
    return Worker(ctx, notifier, policy=FAST, name="w1", due_jobs=False)


def _agency(ctx: Context) -> tuple[World, str]:
    w = World(ctx)
    return w, w.agency("olga")


def _stamp(headers: dict[str, str]) -> datetime:
    return datetime.fromtimestamp(int(headers["webhook-timestamp"]), UTC)


def test_r46_every_attempt_verifies_keeps_the_event_id_and_is_stamped_by_the_clock(
    any_ctx: Context,
) -> None:
    # R46 R29 R33: three attempts (two answered 503), one id, three timestamps of the
    # simulated clock, each verified by standardwebhooks.
    w, agency = _agency(any_ctx)
    clock = any_ctx.clock
    assert isinstance(clock, SimulatedClock)
    [event_id] = raw_events(any_ctx, agency, 1)
    with webhook_server(Receiver(secret=SECRET, now=any_ctx.now, fail_first=2)) as hook:
        any_ctx.handle(AddChannel(w.actor("olga"), agency, "webhook", hook.url, secret=SECRET))
        worker = _worker(any_ctx)
        assert worker.run_once()["failed"] == 1
        clock.advance(timedelta(seconds=10))
        assert worker.run_once()["failed"] == 1
        clock.advance(timedelta(seconds=20))
        assert worker.run_once()["sent"] == 1
    assert hook.requests == 3 and hook.bad_signatures == 0, hook.rejections
    assert [h["webhook-id"] for h, _ in hook.seen] == [event_id] * 3
    assert [_stamp(h) for h, _ in hook.seen] == [
        START,
        START + timedelta(seconds=10),
        START + timedelta(seconds=30),
    ]
    for headers, body in hook.seen:
        assert headers["webhook-signature"].startswith("v1,")
        assert not [k for k in headers if k.startswith("x-connects")]  # nothing home-made
        doc = verify(SECRET, body, headers, now=_stamp(headers))
        assert set(doc) == {"id", "type", "created_at", "account_id", "data"}
        assert doc["id"] == event_id and doc["type"] == "connects_purchased"
        assert doc["account_id"] == agency and doc["data"]["balance"] == 5
        assert doc["created_at"] == "2026-01-15T09:00:00Z"
    [got] = hook.received
    assert got["event_id"] == event_id


def _one_delivery(ctx: Context) -> tuple[Receiver, dict[str, str], bytes]:
    w, agency = _agency(ctx)
    raw_events(ctx, agency, 1)
    hook = Receiver(secret=SECRET, now=ctx.now)
    return hook, *_deliver(ctx, w, agency, hook)


def _deliver(ctx: Context, w: World, agency: str, hook: Receiver) -> tuple[dict[str, str], bytes]:
    with webhook_server(hook):
        ctx.handle(AddChannel(w.actor("olga"), agency, "webhook", hook.url, secret=SECRET))
        assert _worker(ctx).run_once()["sent"] == 1
    [(headers, body)] = hook.seen
    return headers, body


def test_r46_a_delivery_replayed_after_the_tolerance_is_rejected(any_ctx: Context) -> None:
    # R46: a captured delivery sent again 6 minutes later fails verification, at the
    # receiver itself and with the package alone; within the 5 minutes it still passes.
    clock = any_ctx.clock
    assert isinstance(clock, SimulatedClock)
    hook, headers, body = _one_delivery(any_ctx)
    assert hook.bad_signatures == 0
    clock.advance(timedelta(minutes=4, seconds=59))
    assert verify(SECRET, body, headers, now=any_ctx.now())["id"] == headers["webhook-id"]
    clock.advance(timedelta(minutes=1, seconds=1))
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify(SECRET, body, headers, now=any_ctx.now())
    with webhook_server(hook):
        replay = httpx.post(hook.url, content=body, headers=headers)
    assert replay.status_code == 401
    assert hook.rejections == ["Message timestamp too old"]
    assert len(hook.received) == 1  # the replay was not taken


def test_r46_a_tampered_body_or_a_fresh_timestamp_on_an_old_signature_fails(
    any_ctx: Context,
) -> None:
    # R46: the signature covers the id, the timestamp and the exact body.
    _, headers, body = _one_delivery(any_ctx)
    now = any_ctx.now()
    doc = json.loads(body)
    doc["data"]["balance"] = 5000
    tampered = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        verify(SECRET, tampered, headers, now=now)
    refreshed = {**headers, "webhook-timestamp": str(int(now.timestamp()) + 60)}
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        verify(SECRET, body, refreshed, now=now)
    other_id = {**headers, "webhook-id": "evt_someone_else"}
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        verify(SECRET, body, other_id, now=now)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        verify(whsec("another-key-entirely-0123456789"), body, headers, now=now)
    assert verify(SECRET, body, headers, now=now)["type"] == "connects_purchased"


def test_r46_on_the_real_clock_the_package_verifies_unaided() -> None:
    # R46: no watch set: a delivery signed now passes the package as published; one
    # signed 10 minutes ago is refused by the receiver, and the delivery fails visibly.
    event = Event(id="evt_r46_real", account_id="acct_1", kind="channel_test", payload={"x": 1})
    notifier = LiveNotifier(timeout=5, allow_private=True)
    with webhook_server(Receiver(secret=SECRET)) as hook:
        channel = Channel("chn_1", "acct_1", "webhook", hook.url, SECRET)
        notifier.send(channel, event, at=datetime.now(UTC))
        with pytest.raises(DeliveryFailed, match="HTTP 401"):
            notifier.send(channel, event, at=datetime.now(UTC) - timedelta(minutes=10))
    assert [r["event_id"] for r in hook.received] == ["evt_r46_real"]
    assert hook.rejections == ["Message timestamp too old"]
    headers, body = hook.seen[0]
    assert standardwebhooks.Webhook(SECRET).verify(body, headers)["data"] == {"x": 1}


def test_r46_a_generated_secret_is_whsec_and_a_chosen_one_must_be(ctx: Context) -> None:
    # R46: shown once, 32 random bytes in base64, and what the receiver verifies with.
    w, agency = _agency(ctx)
    ctx.notifier = LiveNotifier(timeout=5, allow_private=True)
    with webhook_server(Receiver(now=ctx.now)) as hook:
        made = ctx.handle(AddChannel(w.actor("olga"), agency, "webhook", hook.url))
        secret = made["secret"]
        assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
        hook.secret = secret
        assert ctx.handle(SendTestNotification(w.actor("olga"), agency, made["id"]))["ok"]
    assert hook.bad_signatures == 0 and hook.received[0]["body"]["type"] == "channel_test"
    standardwebhooks.Webhook(secret)  # the package takes it as it is
    for bad in (
        "sixteen-chars-ok-but-not-whsec",
        "whsec_test_secret_0123456789",  # the old tests' kind: not base64
        "whsec_" + base64.b64encode(b"too short").decode(),
        "whsec_" + base64.b64encode(b"x" * 65).decode(),
        "whsec_!!!!",
    ):
        with pytest.raises(InvalidRequest) as refused:
            ctx.handle(AddChannel(w.actor("olga"), agency, "webhook", hook.url, secret=bad))
        assert refused.value.details["field"] == "secret"


def test_r46_a_secret_from_before_signs_with_the_same_key(any_ctx: Context) -> None:
    # R46, migration 0014: a secret stored before Standard Webhooks (marked secret_raw)
    # is its own key; its receiver verifies with the very secret it already has.
    w, agency = _agency(any_ctx)
    old = "my-old-home-made-secret-123"
    raw_events(any_ctx, agency, 1)
    hook = Receiver(secret=old.encode(), now=any_ctx.now)
    with webhook_server(hook):
        made = any_ctx.handle(AddChannel(w.actor("olga"), agency, "webhook", hook.url))
        with any_ctx.db.begin() as conn:  # as a channel from before 0014 is after it
            conn.execute(
                update(channels)
                .where(channels.c.id == made["id"])
                .values(secret_encrypted=crypto.encrypt(any_ctx.secret_key, old), secret_raw=True)
            )
        assert _worker(any_ctx).run_once()["sent"] == 1
    assert hook.bad_signatures == 0, hook.rejections
    [(headers, body)] = hook.seen
    now = any_ctx.now()
    assert verify(whsec(old), body, headers, now=now)["account_id"] == agency


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.db'}"
    return str(request.getfixturevalue("pg_url"))


def test_r46_migration_0014_marks_every_stored_secret_as_from_before(
    make_ctx: MakeCtx, db_url: str
) -> None:
    # R46: up to 0014 after 0010, the channels that had a secret are marked; a channel
    # without one (Slack) is not; a channel made after is not either.
    ctx = make_ctx(db_url)
    w, agency = _agency(ctx)
    me = w.actor("olga")
    hooked = ctx.handle(AddChannel(me, agency, "webhook", "http://127.0.0.1:9/h"))
    slack = "https://hooks.slack.com/services/T0ABCDEF1/B0ABCDEF2/s3cr3tT0kenValue42"
    ctx.handle(AddChannel(me, agency, "slack", slack))
    ctx.db.dispose()
    downgrade(db_url, "0010")
    upgrade(db_url)
    after = ctx.handle(AddChannel(me, agency, "webhook", "http://127.0.0.1:9/i"))
    with ctx.db.read() as conn:
        marked = dict(conn.execute(select(channels.c.id, channels.c.secret_raw)).all())
    assert marked[hooked["id"]] is True and marked[after["id"]] is False
    assert sorted(marked.values()) == [False, False, True]
