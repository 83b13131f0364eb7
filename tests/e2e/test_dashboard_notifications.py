"""The Notifications page in a real browser (Chromium, as ``test_dashboard``, on a cast
of its own): a webhook channel shows its ``whsec_`` secret once and its test message
verifies with it (R46); an e-mail channel asks for an address and reaches a mailbox
through the configured SMTP server (R47)."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import standardwebhooks
from playwright.sync_api import Browser, expect

from connects.notify.channels import LiveNotifier
from connects.notify.mail import MailServer
from tests.e2e import test_dashboard as dashboard  # skips this module too without Chromium
from tests.e2e.test_dashboard import Cast, sign_in
from tests.integration.notify_support import smtp_server

# The dashboard module's fixtures, for a server and cast of this module's own.
browser = dashboard.browser
cast = dashboard.cast
pytestmark = pytest.mark.xdist_group("dashboard")


class _Receiver(BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []
    bodies: list[bytes] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        type(self).bodies.append(self.rfile.read(length))
        type(self).seen.append({k.lower(): v for k, v in self.headers.items()})
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Receiver.seen, _Receiver.bodies = [], []
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def test_webhook_channel_add_test_send_remove(browser: Browser, cast: Cast, receiver: str) -> None:
    # R46: the secret is shown once, and the test message verifies with it
    page = sign_in(browser, cast)
    page.get_by_role("link", name="Notifications").click()
    form = page.get_by_test_id("channel-form")
    form.get_by_label("Kind").select_option("webhook")
    form.get_by_label("Webhook URL").fill(receiver)
    form.get_by_role("button", name="Add channel").click()
    channels = page.get_by_test_id("channels")
    expect(channels).to_contain_text("The signing secret, shown this once: whsec_")
    shown = re.search(r"shown this once: (whsec_\S+)", channels.inner_text())
    assert shown is not None
    expect(channels.get_by_test_id("channel-row")).to_have_count(1)
    channels.get_by_role("button", name="Send test").click()
    expect(channels).to_contain_text("Test message delivered")
    expect(page.get_by_test_id("channels")).not_to_contain_text(shown[1])  # once
    assert len(_Receiver.seen) == 1
    # The system clock here: the package verifies as published, at the real time.
    doc = standardwebhooks.Webhook(shown[1]).verify(_Receiver.bodies[0], _Receiver.seen[0])
    assert doc["type"] == "channel_test"
    assert not [k for k in _Receiver.seen[0] if k.startswith("x-connects")]

    toggles = page.get_by_test_id("notification-toggles")
    auto = re.compile("^Auto Top-Up")
    toggles.get_by_role("checkbox", name=auto).uncheck()
    toggles.get_by_role("button", name="Save").click()
    expect(page.get_by_test_id("notification-toggles")).to_contain_text("settings saved")
    expect(
        page.get_by_test_id("notification-toggles").get_by_role("checkbox", name=auto)
    ).not_to_be_checked()

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_test_id("channels").get_by_role("button", name="Remove").click()
    expect(page.get_by_test_id("channels")).to_contain_text("Channel removed.")
    expect(page.get_by_test_id("channel-row")).to_have_count(0)


def test_an_email_channel_asks_for_an_address(browser: Browser, cast: Cast) -> None:
    # R47: greyed out while the server has no SMTP server; then the field asks for an
    # address, refuses one that is not, and the test message reaches the mailbox.
    page = sign_in(browser, cast)
    page.goto(f"{cast.url}/notifications")
    form = page.get_by_test_id("channel-form")
    email = form.locator("option[value=email]")
    expect(email).to_be_disabled()
    expect(email).to_contain_text("not set up on this server")
    real = cast.ctx.notifier
    with smtp_server() as box:
        server = MailServer.from_url(f"smtp://127.0.0.1:{box.port}", "alerts@connects.test")
        cast.ctx.notifier = LiveNotifier(timeout=5, allow_private=True, mail=server)
        try:
            page.reload()
            form = page.get_by_test_id("channel-form")
            form.get_by_label("Kind").select_option("email")
            target = form.get_by_label("E-mail address")
            expect(target).to_have_attribute("placeholder", "you@example.com")
            expect(target).to_have_attribute("inputmode", "email")
            target.fill("ops at northwind")
            form.get_by_role("button", name="Add channel").click()
            channels = page.get_by_test_id("channels")
            expect(channels.get_by_test_id("form-error")).to_contain_text("an address")
            expect(channels.get_by_label("E-mail address")).to_have_attribute(
                "aria-invalid", "true"
            )
            channels.get_by_label("E-mail address").fill("Ops@Northwind.test")
            channels.get_by_role("button", name="Add channel").click()
            expect(channels).to_contain_text("Email channel added (ops@northwind.test).")
            expect(channels).not_to_contain_text("shown this once")
            row = channels.get_by_test_id("channel-row").filter(has_text="ops@northwind.test")
            row.get_by_role("button", name="Send test").click()
            expect(page.get_by_test_id("channels")).to_contain_text("Test message delivered")
            page.once("dialog", lambda dialog: dialog.accept())
            page.get_by_test_id("channel-row").filter(has_text="ops@northwind.test").get_by_role(
                "button", name="Remove"
            ).click()
            expect(page.get_by_test_id("channels")).to_contain_text("Channel removed.")
        finally:
            cast.ctx.notifier = real
    [mail] = box.messages
    assert mail["to"] == ["ops@northwind.test"]
