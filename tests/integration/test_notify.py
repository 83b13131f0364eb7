"""Notifications end to end on SQLite and PostgreSQL: real receivers, retries, leases,
toggles and secrets (R27-R29)."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from sqlalchemy import select

from connects.db.schema import channels, deliveries, events
from connects.domain.clock import SimulatedClock
from connects.domain.commands import (
    AddChannel,
    RemoveChannel,
    SendTestNotification,
    SetNotificationSettings,
    UpdateAccount,
)
from connects.domain.errors import Forbidden, InvalidRequest
from connects.notify.channels import LiveNotifier
from connects.notify.claims import DeliveryPolicy, claim
from connects.notify.delivery import record
from connects.notify.digest import emit_expiring_digests
from connects.notify.fanout import fan_out
from connects.services import notifications as notes
from connects.services.context import Context
from connects.worker import Worker
from tests.integration.notify_support import Webhook, raw_events, webhook_server, whsec
from tests.world import World

SECRET = whsec("test-secret-0123456789-abcdefgh")
FAST = DeliveryPolicy(
    lease=timedelta(seconds=30),
    base_delay=timedelta(seconds=10),
    max_delay=timedelta(minutes=5),
    max_attempts=4,
)


def _setup(ctx: Context) -> tuple[World, str]:
    w = World(ctx)
    agency = w.agency("olga", adam="admin", mia="member")
    return w, agency


def _worker(ctx: Context, name: str = "w1", policy: DeliveryPolicy = FAST) -> Worker:
    return Worker(
        ctx,
        LiveNotifier(timeout=5, allow_private=ctx.allow_private_webhooks),
        policy=policy,
        name=name,
        due_jobs=False,
    )


def _status(ctx: Context) -> list[tuple[str, str, int]]:
    with ctx.db.read() as conn:
        rows = conn.execute(
            select(deliveries.c.event_kind, deliveries.c.status, deliveries.c.attempts)
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def test_low_balance_reaches_a_signed_webhook_once_with_the_event_id(any_ctx: Context) -> None:
    # R29 R27 R28
    w, agency = _setup(any_ctx)
    any_ctx.handle(SetNotificationSettings(w.actor("olga"), agency, {"low_balance_threshold": 70}))
    with webhook_server(Webhook(secret=SECRET, now=any_ctx.now)) as hook:
        made = any_ctx.handle(
            AddChannel(w.actor("adam"), agency, "webhook", hook.url, secret=SECRET)
        )
        assert "secret" not in made and made["signed"] is True
        w.submit("mia", w.job(16), agency)  # 80 -> 64: at or below 70
        done = _worker(any_ctx).run_once()
        assert done["sent"] == 1 and done["failed"] == 0
        _worker(any_ctx, "w2").run_once()  # nothing left to send
    assert hook.bad_signatures == 0
    [got] = hook.received
    with any_ctx.db.read() as conn:
        event_id = conn.execute(
            select(events.c.id).where(events.c.kind == "balance_low")
        ).scalar_one()
    assert got["event_id"] == event_id == got["body"]["id"]
    assert got["body"]["type"] == "balance_low"  # R46: {id, type, created_at, account_id, data}
    assert got["body"]["data"]["balance"] == 64
    page = notes.list_notifications(any_ctx, w.actor("olga"), agency)
    [item] = page["items"]
    assert item["status"] == "sent" and item["event_id"] == event_id
    assert [a["ok"] for a in item["attempts"]] == [True]


def test_a_failing_receiver_gets_the_message_once_retries_succeed(any_ctx: Context) -> None:
    # R29
    w, agency = _setup(any_ctx)
    clock = any_ctx.clock
    assert isinstance(clock, SimulatedClock)
    [event_id] = raw_events(any_ctx, agency, 1)
    with webhook_server(Webhook(secret=SECRET, fail_first=2, now=any_ctx.now)) as hook:
        any_ctx.handle(AddChannel(w.actor("olga"), agency, "webhook", hook.url, secret=SECRET))
        worker = _worker(any_ctx)
        assert worker.run_once()["failed"] == 1
        assert worker.run_once()["failed"] == 0  # backing off: not due yet
        clock.advance(timedelta(seconds=10))
        assert worker.run_once()["failed"] == 1
        clock.advance(timedelta(seconds=19))
        assert worker.run_once()["sent"] == 0  # the second wait is 20 s
        clock.advance(timedelta(seconds=1))
        assert worker.run_once()["sent"] == 1
    assert hook.requests == 3
    assert hook.ids() == [event_id]
    [item] = notes.list_notifications(any_ctx, w.actor("olga"), agency)["items"]
    assert item["status"] == "sent"
    assert [a["ok"] for a in item["attempts"]] == [False, False, True]
    assert "503" in (item["attempts"][0]["error"] or "")


def test_after_max_attempts_a_delivery_is_dead_never_dropped(any_ctx: Context) -> None:
    # R29
    w, agency = _setup(any_ctx)
    clock = any_ctx.clock
    assert isinstance(clock, SimulatedClock)
    raw_events(any_ctx, agency, 1)
    with webhook_server(Webhook(fail_first=100, now=any_ctx.now)) as hook:
        made = any_ctx.handle(AddChannel(w.actor("olga"), agency, "webhook", hook.url))
        hook.secret = made["secret"]  # R46: the receiver verifies with the secret shown
        worker = _worker(any_ctx)
        for _ in range(6):
            worker.run_once()
            clock.advance(FAST.max_delay)
    assert hook.requests == FAST.max_attempts
    assert _status(any_ctx) == [("connects_purchased", "dead", FAST.max_attempts)]
    [item] = notes.list_notifications(any_ctx, w.actor("olga"), agency, status="dead")["items"]
    assert len(item["attempts"]) == FAST.max_attempts and item["last_error"]


def test_a_worker_that_dies_holding_a_claim_loses_nothing(any_ctx: Context) -> None:
    # R29: the claim is taken, the process is gone; its lease runs out and another
    # worker sends the message.
    w, agency = _setup(any_ctx)
    clock = any_ctx.clock
    assert isinstance(clock, SimulatedClock)
    [event_id] = raw_events(any_ctx, agency, 1)
    with webhook_server(Webhook(now=any_ctx.now)) as hook:
        made = any_ctx.handle(AddChannel(w.actor("olga"), agency, "webhook", hook.url))
        hook.secret = made["secret"]  # R46
        fan_out(any_ctx)
        [held] = claim(any_ctx, "dead-worker", FAST)
        assert claim(any_ctx, "w2", FAST) == []  # held under the lease
        assert _worker(any_ctx, "w2").run_once()["sent"] == 0
        clock.advance(FAST.lease)
        assert _worker(any_ctx, "w2").run_once()["sent"] == 1
        # The dead worker's late answer does not undo or repeat anything.
        record(any_ctx, held, "too late", 1, FAST)
    assert hook.ids() == [event_id] and hook.bad_signatures == 0
    [item] = notes.list_notifications(any_ctx, w.actor("olga"), agency)["items"]
    assert item["status"] == "sent"
    assert [a["ok"] for a in item["attempts"]] == [False, True, False]
    assert "lease expired" in (item["attempts"][0]["error"] or "")


def test_toggles_off_and_channel_filters_stop_delivery(any_ctx: Context) -> None:
    # R27: "Low Connects Balance" covers balance_low and balance_empty; "Auto Top-Up"
    # covers top-ups; a channel may also pick its events.
    w, agency = _setup(any_ctx)
    me = w.actor("olga")
    settings = any_ctx.handle(
        SetNotificationSettings(me, agency, {"low_balance": False, "topups": False})
    )
    assert settings["low_balance"] is False and settings["refunds"] is True
    with webhook_server(Webhook(secret=SECRET, now=any_ctx.now)) as hook:
        any_ctx.handle(AddChannel(me, agency, "webhook", hook.url, secret=SECRET))
        any_ctx.handle(
            AddChannel(
                me,
                agency,
                "webhook",
                hook.url + "?only=refunds",
                events=["connects_refunded"],
                secret=SECRET,
            )
        )
        for kind in ("balance_low", "balance_empty", "topup_succeeded", "topup_failed"):
            raw_events(any_ctx, agency, 1, kind=kind)
        raw_events(any_ctx, agency, 1, kind="monthly_limit_reached")
        raw_events(any_ctx, agency, 1, kind="connects_refunded")
        _worker(any_ctx).run_once()
    assert hook.bad_signatures == 0
    kinds = sorted(r["body"]["type"] for r in hook.received)
    # monthly_limit_reached stays on by default; the refund goes to both channels.
    assert kinds == ["connects_refunded", "connects_refunded", "monthly_limit_reached"]
    with any_ctx.db.read() as conn:
        unfanned = conn.execute(select(events.c.id).where(events.c.fanned_out_at.is_(None)))
        assert unfanned.all() == []


def test_secrets_are_encrypted_at_rest_and_never_shown_or_logged(
    any_ctx: Context, caplog: pytest.LogCaptureFixture
) -> None:
    # R28
    w, agency = _setup(any_ctx)
    me = w.actor("olga")
    slack = "https://hooks.slack.com/services/T0ABCDEF1/B0ABCDEF2/s3cr3tT0kenValue42"
    made = any_ctx.handle(AddChannel(me, agency, "slack", slack))
    assert made["target"] == "https://hooks.slack.com/…/…ue42"
    with webhook_server(Webhook(fail_first=5, now=any_ctx.now)) as hook:
        secret_url = hook.url + "/tok_supersecretpath123"
        hooked = any_ctx.handle(AddChannel(me, agency, "webhook", secret_url))
        assert hooked["secret"].startswith("whsec_")  # shown once, at creation
        hook.secret = hooked["secret"]
        listed = json.dumps(notes.list_channels(any_ctx, me, agency), default=str)
        assert "s3cr3tT0kenValue42" not in listed and "supersecretpath123" not in listed
        assert hooked["secret"] not in listed
        with any_ctx.db.read() as conn:
            raw = json.dumps([tuple(r) for r in conn.execute(select(channels)).all()], default=str)
        for plain in ("s3cr3tT0kenValue42", "T0ABCDEF1", "supersecretpath123", hooked["secret"]):
            assert plain not in raw
        raw_events(any_ctx, agency, 1, kind="connects_refunded")
        with caplog.at_level(logging.DEBUG):
            notes_worker = Worker(
                any_ctx, _FailingWithUrl(), policy=FAST, name="w1", due_jobs=False
            )
            notes_worker.run_once()
    page = json.dumps(notes.list_notifications(any_ctx, me, agency), default=str)
    for plain in ("s3cr3tT0kenValue42", "supersecretpath123"):
        assert plain not in caplog.text
        assert plain not in page
    assert "***" in page


class _FailingWithUrl(LiveNotifier):
    """A channel failure whose message quotes the target, as some libraries do."""

    def send(self, channel, event, *, at):  # type: ignore[no-untyped-def]
        from connects.notify.channels import DeliveryFailed

        raise DeliveryFailed(f"could not reach {channel.target}")


def test_only_owner_and_admins_manage_channels(any_ctx: Context) -> None:
    # R3 R28
    w, agency = _setup(any_ctx)
    with pytest.raises(Forbidden):
        any_ctx.handle(AddChannel(w.actor("mia"), agency, "webhook", "https://example.com/h"))
    with pytest.raises(Forbidden):
        notes.get_settings(any_ctx, w.actor("mia"), agency)
    with pytest.raises(InvalidRequest) as bad:
        any_ctx.handle(AddChannel(w.actor("olga"), agency, "slack", "https://example.com/x"))
    assert bad.value.details["field"] == "target"
    with pytest.raises(InvalidRequest):
        any_ctx.handle(
            AddChannel(w.actor("olga"), agency, "webhook", "https://e.com", events=["nope"])
        )


def test_removing_a_channel_wipes_its_secret_and_closes_its_queue(any_ctx: Context) -> None:
    # R28 R29
    w, agency = _setup(any_ctx)
    me = w.actor("olga")
    made = any_ctx.handle(AddChannel(me, agency, "webhook", "http://127.0.0.1:9/none"))
    raw_events(any_ctx, agency, 2)
    fan_out(any_ctx)
    any_ctx.handle(RemoveChannel(me, agency, made["id"]))
    assert notes.list_channels(any_ctx, me, agency)["items"] == []
    with any_ctx.db.read() as conn:
        row = conn.execute(select(channels)).one()
    assert row.target_encrypted is None and row.deleted_at is not None
    assert sorted(s for _, s, _ in _status(any_ctx)) == ["dead", "dead"]


def test_settings_threshold_is_the_ledgers_threshold(any_ctx: Context) -> None:
    # R27
    w, agency = _setup(any_ctx)
    me = w.actor("olga")
    assert notes.get_settings(any_ctx, me, agency) == {
        "low_balance": True,
        "low_balance_threshold": 0,
        "low_balance_levels": [],
        "topups": True,
        "monthly_limit": True,
        "refunds": True,
        "purchases": True,
        "expiring": True,
        "expiring_every": "week",
    }
    any_ctx.handle(SetNotificationSettings(me, agency, {"low_balance_threshold": 25}))

    any_ctx.handle(UpdateAccount(me, agency, low_balance_threshold=30))
    assert notes.get_settings(any_ctx, me, agency)["low_balance_threshold"] == 30
    with pytest.raises(InvalidRequest):
        any_ctx.handle(SetNotificationSettings(me, agency, {"topups": "yes"}))


def test_expiring_digest_once_a_week(any_ctx: Context) -> None:
    # R27 R12
    w, agency = _setup(any_ctx)
    clock = any_ctx.clock
    assert isinstance(clock, SimulatedClock)
    any_ctx.handle(AddChannel(w.actor("olga"), agency, "webhook", "http://127.0.0.1:9/x"))
    assert emit_expiring_digests(any_ctx) == 0  # nothing within 30 days yet
    clock.advance(timedelta(days=340))  # the first grant (80) expires in 25 days
    assert emit_expiring_digests(any_ctx) == 1
    assert emit_expiring_digests(any_ctx) == 0  # once per week
    clock.advance(timedelta(days=7))
    assert emit_expiring_digests(any_ctx) == 1
    with any_ctx.db.read() as conn:
        payloads = [
            json.loads(p)
            for p in conn.execute(
                select(events.c.payload).where(events.c.kind == "connects_expiring")
            ).scalars()
        ]
    assert [p["within_30d"] for p in payloads] == [80, 80]
    any_ctx.handle(SetNotificationSettings(w.actor("olga"), agency, {"expiring": False}))
    clock.advance(timedelta(days=7))
    assert emit_expiring_digests(any_ctx) == 0


def test_test_send_reports_the_outcome(any_ctx: Context) -> None:
    # R28
    w, agency = _setup(any_ctx)
    any_ctx.notifier = LiveNotifier(timeout=2, allow_private=any_ctx.allow_private_webhooks)
    with webhook_server(Webhook(secret=SECRET, now=any_ctx.now)) as hook:
        made = any_ctx.handle(
            AddChannel(w.actor("olga"), agency, "webhook", hook.url, secret=SECRET)
        )
        ok = any_ctx.handle(SendTestNotification(w.actor("adam"), agency, made["id"]))
    assert ok["ok"] is True and ok["error"] is None
    assert hook.received[0]["body"]["type"] == "channel_test" and hook.bad_signatures == 0
    down = any_ctx.handle(AddChannel(w.actor("olga"), agency, "webhook", "http://127.0.0.1:9/"))
    bad = any_ctx.handle(SendTestNotification(w.actor("olga"), agency, down["id"]))
    assert bad["ok"] is False and bad["error"]
    with pytest.raises(Forbidden):
        any_ctx.handle(SendTestNotification(w.actor("mia"), agency, made["id"]))
