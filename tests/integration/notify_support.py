"""Real local receivers for notification tests: an HTTP webhook server that verifies
every delivery with the ``standardwebhooks`` package (R46), and an SMTP server."""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import standardwebhooks
import standardwebhooks.webhooks
from sqlalchemy import insert

from connects.db.schema import events
from connects.domain.ids import new_id
from connects.services.context import Context


def whsec(text: str) -> str:
    """A ``whsec_`` secret whose key is ``text``'s bytes (readable in a test)."""
    return "whsec_" + base64.b64encode(text.encode()).decode()


_WATCH = threading.Lock()


def verify(
    secret: str | bytes,
    body: bytes,
    headers: Mapping[str, str],
    now: datetime | None = None,
) -> Any:
    """What a receiver does (R46): ``standardwebhooks.Webhook(secret).verify``, which
    checks the signature and a timestamp within five minutes of the receiver's clock.

    ``now`` is what that clock reads: the package reads ``datetime.now()``, and a test's
    receiver shares the engine's simulated clock, so its watch is set to that time while
    it verifies. None: the real time. Raises ``WebhookVerificationError``."""
    receiver = standardwebhooks.Webhook(secret)
    if now is None:
        return receiver.verify(body, dict(headers))
    at = now

    class Watch(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Watch:  # type: ignore[override]
            moment = at.astimezone(tz)
            return cls.fromtimestamp(moment.timestamp(), moment.tzinfo)

    module = standardwebhooks.webhooks
    with _WATCH:
        real = module.datetime  # type: ignore[attr-defined]
        module.datetime = Watch  # type: ignore[attr-defined]
        try:
            return receiver.verify(body, dict(headers))
        finally:
            module.datetime = real  # type: ignore[attr-defined]


@dataclass
class Webhook:
    """What the receiver saw. ``fail_first``: answer 503 to that many requests first.

    With a ``secret`` every request is verified with ``standardwebhooks`` (R46) at
    ``now()`` (the receiver's clock; None: the real time); one that fails is answered
    401, counted in ``bad_signatures`` and its reason kept in ``rejections``. Every
    request's headers and exact body are kept in ``seen``, to be replayed or altered."""

    secret: str | bytes | None = None
    now: Callable[[], datetime] | None = None
    fail_first: int = 0
    hang_first: int = 0  # the first requests block until ``release`` is set, then drop
    release: threading.Event = field(default_factory=threading.Event)
    arrivals: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    bad_signatures: int = 0
    rejections: list[str] = field(default_factory=list)
    seen: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def ids(self) -> list[str]:
        with self.lock:
            return [r["event_id"] for r in self.received]


def _handler(hook: Webhook) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with hook.lock:
                hook.arrivals += 1
                hanging = hook.arrivals <= hook.hang_first
            if hanging:  # a receiver that never answers (its sender is killed meanwhile)
                hook.release.wait(30)
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            with hook.lock:
                hook.requests += 1
                hook.seen.append((headers, body))
                failing = hook.requests <= hook.fail_first
                signed_ok = True
                if hook.secret is not None:
                    try:
                        verify(hook.secret, body, headers, hook.now() if hook.now else None)
                    except standardwebhooks.webhooks.WebhookVerificationError as exc:
                        signed_ok = False
                        hook.bad_signatures += 1
                        hook.rejections.append(str(exc))
                if not failing and signed_ok:
                    hook.received.append(
                        {
                            "event_id": headers.get("webhook-id"),
                            "host": headers.get("host"),
                            "headers": headers,
                            "body": json.loads(body),
                        }
                    )
            self.send_response(503 if failing else (200 if signed_ok else 401))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def webhook_server(hook: Webhook) -> Iterator[Webhook]:
    """Serve ``hook`` on 127.0.0.1 at an ephemeral port while the block runs."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(hook))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    hook.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/connects"
    try:
        yield hook
    finally:
        hook.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Mailbox:
    messages: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0
    logins: list[str] = field(default_factory=list)  # the user names that signed in


@contextmanager
def smtp_server(port: int = 0, login: tuple[str, str] | None = None) -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 collecting what it is sent; on
    ``port`` (0: a free one); with ``login``, it takes only that user and password."""
    import pytest

    controller_mod = pytest.importorskip("aiosmtpd.controller")
    smtp_mod = pytest.importorskip("aiosmtpd.smtp")
    Controller = controller_mod.Controller
    box = Mailbox(port=port or free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            box.messages.append(
                {
                    "from": envelope.mail_from,
                    "to": list(envelope.rcpt_tos),
                    "data": envelope.content.decode("utf-8", "replace"),
                }
            )
            return "250 OK"

    def authenticator(
        server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> Any:
        ok = (
            login is not None
            and (
                auth_data.login.decode(),
                auth_data.password.decode(),
            )
            == login
        )
        if ok:
            box.logins.append(auth_data.login.decode())
        return smtp_mod.AuthResult(success=ok, handled=False)  # the server answers 535

    extra: dict[str, Any] = {}
    if login is not None:  # plain AUTH on 127.0.0.1 (no certificate in the tests)
        extra = {"authenticator": authenticator, "auth_require_tls": False}
    controller = Controller(Handler(), hostname="127.0.0.1", port=box.port, **extra)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


def raw_events(
    ctx: Context, account_id: str, n: int, kind: str = "connects_purchased"
) -> list[str]:
    """``n`` outbox events written straight to the table (as AccountBook.emit would)."""
    ids = [new_id("evt") for _ in range(n)]
    now = ctx.now()
    rows = [
        {
            "id": i,
            "account_id": account_id,
            "kind": kind,
            "payload": json.dumps({"account_id": account_id, "balance": 5, "quantity": k + 1}),
            "created_at": now,
            "dedupe_key": None,
        }
        for k, i in enumerate(ids)
    ]
    with ctx.db.begin() as conn:
        for start in range(0, len(rows), 500):
            conn.execute(insert(events), rows[start : start + 500])
    return ids
