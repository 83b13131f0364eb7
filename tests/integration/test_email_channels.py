"""E-mail channels (R47): the target is an address; the SMTP server and the sender come
from configuration; delivery goes through the same outbox, retries and history (R29),
tested against a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

import json
from datetime import timedelta
from email import message_from_string
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from pydantic import ValidationError
from sqlalchemy import insert

from connects.config import Settings
from connects.db.schema import channels
from connects.domain.clock import SimulatedClock
from connects.domain.commands import AddChannel, SendTestNotification
from connects.domain.errors import EmailNotConfigured, InvalidRequest
from connects.domain.ids import new_id
from connects.notify import crypto
from connects.notify.channels import LiveNotifier, mask
from connects.notify.claims import DeliveryPolicy
from connects.notify.mail import MailServer
from connects.services import notifications as notes
from connects.services.context import Context
from connects.worker import Worker
from tests.conftest import START, MakeCtx
from tests.integration.notify_support import free_port, raw_events, smtp_server
from tests.world import World

FROM = "Connects Alerts <alerts@connects.test>"
FAST = DeliveryPolicy(
    lease=timedelta(seconds=30),
    base_delay=timedelta(seconds=10),
    max_delay=timedelta(minutes=5),
    max_attempts=4,
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'mail.db'}"
    return str(request.getfixturevalue("pg_url"))


def _worker(ctx: Context) -> Worker:
    return Worker(ctx, ctx.notifier, policy=FAST, name="w1", due_jobs=False)


def _agency(ctx: Context) -> tuple[World, str]:
    w = World(ctx)
    return w, w.agency("olga")


def test_r47_an_address_gets_the_message_through_the_configured_server(
    make_ctx: MakeCtx, db_url: str
) -> None:
    # R47 R29 R33: the owner types an address; the operator's server and sender send it.
    port = free_port()
    ctx = make_ctx(db_url, smtp_url=f"smtp://127.0.0.1:{port}", mail_from=FROM)
    w, agency = _agency(ctx)
    made = ctx.handle(AddChannel(w.actor("olga"), agency, "email", "  Ops@Agency.test "))
    assert made["target"] == "ops@agency.test" and made["signed"] is False
    [event_id] = raw_events(ctx, agency, 1, kind="balance_empty")
    with smtp_server(port) as box:
        assert _worker(ctx).run_once()["sent"] == 1
    [mail] = box.messages
    assert mail["from"] == "alerts@connects.test" and mail["to"] == ["ops@agency.test"]
    message = message_from_string(mail["data"])
    assert message["From"] == FROM and message["To"] == "ops@agency.test"
    assert message["Subject"] == "You are out of Connects"
    assert parsedate_to_datetime(message["Date"]) == START  # the one clock (R33)
    assert message["Message-ID"] == f"<{event_id}.{made['id']}@connects.test>"
    assert "new proposals will be refused" in mail["data"]
    [item] = notes.list_notifications(ctx, w.actor("olga"), agency)["items"]
    assert item["status"] == "sent" and item["channel"]["target"] == "ops@agency.test"


def test_r47_a_server_that_is_down_is_retried_and_the_message_arrives_once(
    make_ctx: MakeCtx, sqlite_url: str
) -> None:
    # R47 R29: the same outbox, backoff and history as every channel.
    port = free_port()
    ctx = make_ctx(sqlite_url, smtp_url=f"smtp://127.0.0.1:{port}", mail_from=FROM)
    clock = ctx.clock
    assert isinstance(clock, SimulatedClock)
    w, agency = _agency(ctx)
    ctx.handle(AddChannel(w.actor("olga"), agency, "email", "ops@agency.test"))
    raw_events(ctx, agency, 1, kind="balance_empty")
    worker = _worker(ctx)
    assert worker.run_once()["failed"] == 1  # nobody listens on the port yet
    with smtp_server(port) as box:
        assert worker.run_once()["sent"] == 0  # backing off
        clock.advance(FAST.base_delay)
        assert worker.run_once()["sent"] == 1
        assert worker.run_once()["sent"] == 0
    assert len(box.messages) == 1
    [item] = notes.list_notifications(ctx, w.actor("olga"), agency)["items"]
    assert [a["ok"] for a in item["attempts"]] == [False, True]
    assert item["attempts"][0]["error"] == "the mail server could not be reached"


def test_r47_the_server_s_user_and_password_sign_in_and_never_show(
    make_ctx: MakeCtx, sqlite_url: str
) -> None:
    # R47 R28: percent-encoded credentials in CONNECTS_SMTP_URL; a refused sign-in is a
    # visible failed delivery that names neither.
    port = free_port()
    good = f"smtp://alerts%40connects.test:pa%3As5w0rd-0123@127.0.0.1:{port}"
    ctx = make_ctx(sqlite_url, smtp_url=good, mail_from=FROM)
    w, agency = _agency(ctx)
    made = ctx.handle(AddChannel(w.actor("olga"), agency, "email", "ops@agency.test"))
    with smtp_server(port, login=("alerts@connects.test", "pa:s5w0rd-0123")) as box:
        ok = ctx.handle(SendTestNotification(w.actor("olga"), agency, made["id"]))
        assert ok["ok"] is True, ok
        ctx.notifier = LiveNotifier(
            timeout=5, mail=MailServer.from_url(good.replace("0123@", "9999@"), FROM)
        )
        bad = ctx.handle(SendTestNotification(w.actor("olga"), agency, made["id"]))
    assert box.logins == ["alerts@connects.test"] and len(box.messages) == 1
    assert bad == {**bad, "ok": False, "error": "the mail server refused this server's sign-in"}
    assert "s5w0rd" not in repr(ctx.notifier.mail) and "s5w0rd" not in json.dumps(bad)


def test_r47_a_bad_address_is_invalid_request_naming_target(make_ctx: MakeCtx, db_url: str) -> None:
    # R47 R32: refused, and nothing stored.
    ctx = make_ctx(db_url, smtp_url="smtp://127.0.0.1:9", mail_from=FROM)
    w, agency = _agency(ctx)
    for bad in (
        "ops",
        "ops@example",
        "ops@example.com, boss@example.com",
        "Ops <ops@example.com>",
        "ops@exa mple.com",
        "ops@example.com\r\nBcc: x@y.io",
        "mailtos://user:pass@smtp.example.com:587?to=ops@example.com",
    ):
        with pytest.raises(InvalidRequest) as refused:
            ctx.handle(AddChannel(w.actor("olga"), agency, "email", bad))
        assert refused.value.details["field"] == "target", bad
    assert notes.list_channels(ctx, w.actor("olga"), agency)["items"] == []


def test_r47_without_an_smtp_server_an_email_channel_is_refused(ctx: Context) -> None:
    # R47: email_not_configured, before the address is even looked at; other kinds go on.
    w, agency = _agency(ctx)
    for target in ("ops@agency.test", "not an address"):
        with pytest.raises(EmailNotConfigured) as refused:
            ctx.handle(AddChannel(w.actor("olga"), agency, "email", target))
        assert refused.value.code == "email_not_configured" and refused.value.status == 409
        assert "CONNECTS_SMTP_URL" in refused.value.message
    assert notes.list_channels(ctx, w.actor("olga"), agency)["items"] == []
    ctx.handle(AddChannel(w.actor("olga"), agency, "webhook", "http://127.0.0.1:9/h"))


def test_r47_a_channel_from_before_keeps_its_own_smtp_url(ctx: Context) -> None:
    # R47: nothing silently breaks: an e-mail channel made with a mailto:// URL is sent
    # as before (through Apprise to the server it names), even with no server configured.
    w, agency = _agency(ctx)
    with smtp_server() as box:
        target = (
            f"mailto://127.0.0.1:{box.port}?from=alerts@connects.test"
            "&to=ops@agency.test&mode=insecure"
        )
        with ctx.db.begin() as conn:
            conn.execute(
                insert(channels),
                {
                    "id": new_id("chn"),
                    "account_id": agency,
                    "kind": "email",
                    "target_encrypted": crypto.encrypt(ctx.secret_key, target),
                    "target_hint": mask("email", target),
                    "created_at": ctx.now(),
                },
            )
        raw_events(ctx, agency, 1, kind="balance_empty")
        assert _worker(ctx).run_once()["sent"] == 1
    [mail] = box.messages
    assert mail["to"] == ["ops@agency.test"]
    assert "Subject: You are out of Connects" in mail["data"]
    [listed] = notes.list_channels(ctx, w.actor("olga"), agency)["items"]
    assert listed["target"] == f"mailto://127.0.0.1:{box.port}?to=ops@agency.test"


@pytest.mark.parametrize(
    ("url", "sender", "security", "port"),
    [
        ("smtps://u:p@mail.example.com", "alerts@example.com", "tls", 465),
        ("smtp://u:p@mail.example.com?starttls=true", "alerts@example.com", "starttls", 587),
        ("smtp://mail.example.com:2525", "Connects <alerts@example.com>", "none", 2525),
    ],
)
def test_r47_the_three_forms_of_the_smtp_url(
    url: str, sender: str, security: str, port: int
) -> None:
    # R47
    server = Settings(smtp_url=url, mail_from=sender).mail_server()
    assert server is not None
    assert (server.host, server.port, server.security) == ("mail.example.com", port, security)
    assert server.sender_address == "alerts@example.com"


@pytest.mark.parametrize(
    ("url", "sender"),
    [
        ("mailto://mail.example.com", "alerts@example.com"),
        ("smtp://", "alerts@example.com"),
        ("smtps://mail.example.com?starttls=true", "alerts@example.com"),
        ("smtp://mail.example.com?starttls=maybe", "alerts@example.com"),
        ("smtp://mail.example.com?tls=1", "alerts@example.com"),
        ("smtp://u:hunter2-secret@mail.example.com", None),
        ("smtp://u:hunter2-secret@mail.example.com", "not an address"),
    ],
)
def test_r47_a_bad_smtp_setting_stops_start_up_without_echoing_it(
    url: str, sender: str | None
) -> None:
    # R47 R28: refused when the settings load, naming the setting, never its value.
    with pytest.raises(ValidationError) as refused:
        Settings(smtp_url=url, mail_from=sender)
    text = str(refused.value)
    assert "CONNECTS_SMTP_URL" in text or "CONNECTS_MAIL_FROM" in text
    assert "hunter2" not in text
    assert Settings().mail_server() is None
