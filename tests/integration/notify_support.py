"""Real local receivers for notification tests: an HTTP webhook server and an SMTP server."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy import insert

from connects.db.schema import events
from connects.domain.ids import new_id
from connects.notify.channels import EVENT_ID_HEADER, SIGNATURE_HEADER, verify_signature
from connects.services.context import Context


@dataclass
class Webhook:
    """What the receiver saw. ``fail_first``: answer 503 to that many requests first."""

    secret: str | None = None
    fail_first: int = 0
    hang_first: int = 0  # the first requests block until ``release`` is set, then drop
    release: threading.Event = field(default_factory=threading.Event)
    arrivals: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    bad_signatures: int = 0
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
            with hook.lock:
                hook.requests += 1
                failing = hook.requests <= hook.fail_first
                signed_ok = hook.secret is None or verify_signature(
                    hook.secret, body, self.headers.get(SIGNATURE_HEADER, "")
                )
                if not signed_ok:
                    hook.bad_signatures += 1
                if not failing and signed_ok:
                    hook.received.append(
                        {
                            "event_id": self.headers.get(EVENT_ID_HEADER),
                            "host": self.headers.get("Host"),
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


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    """A real SMTP server (aiosmtpd) on 127.0.0.1 collecting what it is sent."""
    import pytest

    controller_mod = pytest.importorskip("aiosmtpd.controller")
    Controller = controller_mod.Controller
    box = Mailbox(port=free_port())

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

    controller = Controller(Handler(), hostname="127.0.0.1", port=box.port)
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
