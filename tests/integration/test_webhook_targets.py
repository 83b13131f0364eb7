"""Webhook targets are public addresses, when added and after DNS resolution at every
delivery, unless the operator allows private ones; a failed test-send tells nothing of
the receiver's network but that it was unreachable or its HTTP status (R50)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from connects.domain.commands import AddChannel, SendTestNotification
from connects.domain.errors import InvalidRequest
from connects.notify.channels import Channel, DeliveryFailed, Event, LiveNotifier
from connects.services.context import Context
from tests.conftest import START, MakeCtx
from tests.integration.notify_support import Webhook, free_port, webhook_server
from tests.world import World

EVENT = Event(id="evt_r50", account_id="acct_1", kind="channel_test", payload={"test": True})
PRIVATE = [
    "http://127.0.0.1/hook",
    "http://127.1.2.3:8080/hook",
    "http://[::1]/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://0.0.0.0:8000/",
    "http://[::]/",
    "http://10.0.0.5/hook",
    "https://192.168.1.1/hook",
    "http://172.16.0.1/hook",
    "http://[fe80::1]/hook",
    "http://[fd00::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://localhost:8000/hook",
]


@pytest.fixture
def strict(make_ctx: MakeCtx, sqlite_url: str) -> Context:
    """A context with the operator's default: private webhook targets refused."""
    return make_ctx(sqlite_url, allow_private_webhooks=False)


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Names under ``.test`` resolve to what the test puts here; others as usual."""
    names: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def lookup(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host in names:
            return [
                (
                    socket.AF_INET6 if ":" in a else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (a, port or 0),
                )
                for a in names[host]
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    return names


@pytest.mark.parametrize("target", PRIVATE)
def test_private_targets_are_refused_when_added(strict: Context, target: str) -> None:
    # R50
    w = World(strict)
    agency = w.agency("olga")
    with pytest.raises(InvalidRequest) as refused:
        strict.handle(AddChannel(w.actor("olga"), agency, "webhook", target))
    assert refused.value.details["field"] == "target"


def test_names_resolving_to_private_addresses_are_refused_when_added(
    strict: Context, dns: dict[str, list[str]]
) -> None:
    # R50: every address a name resolves to is checked
    w = World(strict)
    agency = w.agency("olga")
    dns["inside.test"] = ["10.1.2.3"]
    dns["mixed.test"] = ["93.184.216.34", "127.0.0.1"]
    dns["public.test"] = ["93.184.216.34", "2606:2800:220:1::"]
    for name in ("inside", "mixed"):
        with pytest.raises(InvalidRequest):
            strict.handle(AddChannel(w.actor("olga"), agency, "webhook", f"https://{name}.test/h"))
    made = strict.handle(AddChannel(w.actor("olga"), agency, "webhook", "https://public.test/h"))
    assert made["kind"] == "webhook"
    strict.handle(AddChannel(w.actor("olga"), agency, "webhook", "https://93.184.216.34/h"))


def test_delivery_checks_the_address_again_and_never_posts_inside(
    dns: dict[str, list[str]],
) -> None:
    # R50: a name that turns private after it was added (DNS rebinding) is not posted to
    with webhook_server(Webhook()) as hook:
        port = hook.url.split(":")[2].split("/")[0]
        notifier = LiveNotifier(timeout=2)
        for target in (hook.url, f"http://rebind.test:{port}/hooks/connects"):
            dns["rebind.test"] = ["93.184.216.34", "127.0.0.1"]
            with pytest.raises(DeliveryFailed) as failed:
                notifier.send(Channel("chn_1", "acct_1", "webhook", target), EVENT, at=START)
            assert str(failed.value) == "the receiver could not be reached"
        assert hook.requests == 0
        notifier.close()


def test_delivery_connects_to_the_address_it_checked(dns: dict[str, list[str]]) -> None:
    # R50: the request goes to the resolved address, keeping the name in Host
    with webhook_server(Webhook()) as hook:
        port = hook.url.split(":")[2].split("/")[0]
        dns["hook.test"] = ["127.0.0.1"]
        notifier = LiveNotifier(timeout=2, allow_private=True)
        target = f"http://hook.test:{port}/hooks/connects"
        notifier.send(Channel("chn_1", "acct_1", "webhook", target), EVENT, at=START)
        notifier.close()
    [got] = hook.received
    assert got["host"] == f"hook.test:{port}" and got["event_id"] == "evt_r50"


@contextmanager
def _not_http() -> Iterator[int]:
    """A port that accepts connections and answers something that is not HTTP."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(b"SSH-2.0-OpenSSH_9.6\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        done.set()
        thread.join(2)
        server.close()


def test_a_failed_test_send_tells_only_unreachable_or_the_status(
    make_ctx: MakeCtx, sqlite_url: str
) -> None:
    # R50: closed, open non-HTTP and silent ports read the same; HTTP answers their status
    ctx = make_ctx(sqlite_url)  # allowed: the receivers are on this machine
    ctx.notifier = LiveNotifier(timeout=1, allow_private=True)
    w = World(ctx)
    agency = w.agency("olga")

    def test_send(url: str) -> Any:
        made = ctx.handle(AddChannel(w.actor("olga"), agency, "webhook", url))
        return ctx.handle(SendTestNotification(w.actor("olga"), agency, made["id"]))["error"]

    errors = [test_send(f"http://127.0.0.1:{free_port()}/closed")]
    with _not_http() as port:
        errors.append(test_send(f"http://127.0.0.1:{port}/ssh"))
    assert errors == ["the receiver could not be reached"] * 2
    with webhook_server(Webhook(fail_first=1)) as hook:
        assert test_send(hook.url) == "the receiver answered HTTP 503"
