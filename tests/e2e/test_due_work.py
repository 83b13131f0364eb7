"""One list of due work, run alike by the worker, ``connects run-due`` and
``/admin/clock`` (R33), and the two jobs the CLI and the clock used to miss."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from connects.cli import app
from connects.db.schema import events, topups
from connects.domain.commands import AddBillingMethod, GrantPermissions, SetAutoTopUp
from connects.domain.events import TopUpDecided
from connects.domain.policy import PURCHASE_PERMISSION
from connects.domain.topup import TOPUP_MANAGER_ID
from connects.domain.vocabulary import EventType, TopUpStatus
from connects.notify.channels import Channel, Event, Notifier
from connects.services import due
from connects.services.context import Context
from connects.services.due import DueJob, DueRun
from connects.services.messagebus import MessageBus
from connects.worker import Worker
from tests.e2e.conftest import Api
from tests.world import World


class Recorder(Notifier):
    """A notifier that keeps what it was given (the port's own subclass)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, channel: Channel, event: Event, *, at: datetime) -> None:
        self.sent.append((channel.kind, event.kind))


def test_the_worker_run_due_and_the_clock_run_the_same_list(
    api_sqlite: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # R33: one list of what falls due, whoever runs it
    ran: list[tuple[str, str]] = []
    who = {"now": ""}

    def job(name: str) -> DueJob:
        def run(_ctx: object, _run: DueRun) -> int:
            ran.append((who["now"], name))
            return 1

        return DueJob(name, run, notifications=name.startswith("n"))

    names = [j.name for j in due.DUE_WORK]
    fakes = tuple(job(f"{'n' if j.notifications else 'l'}:{j.name}") for j in due.DUE_WORK)
    monkeypatch.setattr(due, "DUE_WORK", fakes)
    who["now"] = "worker"
    assert Worker(api_sqlite.ctx).run_once() == {f.name: 1 for f in fakes}
    who["now"] = "cli"
    out = CliRunner().invoke(app, ["run-due", "--database-url", api_sqlite.settings.database_url])
    assert out.exit_code == 0, out.output
    who["now"] = "clock"
    moved = api_sqlite.ok("POST", "/v1/admin/clock", "operator", {"advance": "P1D"})
    assert moved["ran"] == {f.name: 1 for f in fakes}
    by_caller: dict[str, list[str]] = {}
    for caller, name in ran:
        by_caller.setdefault(caller, []).append(name.split(":", 1)[1])
    assert by_caller == {"worker": names, "cli": names, "clock": names}
    assert {"cycles", "expired", "purchases_resumed", "topups"} <= set(names)
    assert {"expiring_digests", "fanned_out", "delivered"} <= set(names)
    assert "idempotency_purged" in names  # R51: stored answers end with their retention


def test_run_due_finishes_a_top_up_left_pending(
    ctx: Context, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # R23 R25: a decided top-up whose execution never ran (the process died after the
    # commit) is finished by `connects run-due`, as by the worker
    assert isinstance(ctx.bus, MessageBus)
    monkeypatch.setitem(ctx.bus.reactions, TopUpDecided, ())  # nothing runs after commit
    w = World(ctx)
    agency = w.agency("olga")
    owner = w.actor("olga")
    ctx.handle(AddBillingMethod(owner, agency, "tok_visa"))
    ctx.handle(GrantPermissions(owner, agency, TOPUP_MANAGER_ID, [PURCHASE_PERMISSION]))
    ctx.handle(SetAutoTopUp(owner, agency, {"enabled": True, "threshold": 0}))
    w.submit("olga", w.job(80), agency)  # 80 -> 0: a top-up is decided
    with ctx.db.read() as conn:
        [pending] = conn.execute(select(topups.c.status)).scalars().all()
    assert pending == TopUpStatus.PENDING
    out = CliRunner().invoke(app, ["run-due", "--database-url", sqlite_url])
    assert out.exit_code == 0, out.output
    assert "topups: 1" in out.output
    with ctx.db.read() as conn:
        [done] = conn.execute(select(topups.c.status)).scalars().all()
    assert done == TopUpStatus.SUCCEEDED


def test_the_clock_sends_the_expiring_digest(api_sqlite: Api) -> None:
    # R27 R33: moving the clock runs the digest and delivers it, as the worker would
    api = api_sqlite
    solo = api.freelancer("fred")  # no rollover cap: every grant waits for its expiry
    recorder = Recorder()
    api.ctx.notifier = recorder
    target = {"kind": "webhook", "target": "https://example.com/h"}
    api.ok("POST", f"/v1/accounts/{solo}/channels", "fred", target)
    # The first grant (issued today) expires in a year: 340 days on, it is within 30 days.
    moved = api.ok("POST", "/v1/admin/clock", "operator", {"advance": "P340D"})
    assert moved["ran"]["expiring_digests"] >= 1
    with api.ctx.db.read() as conn:
        kinds = conn.execute(select(events.c.kind).where(events.c.account_id == solo)).scalars()
        assert EventType.CONNECTS_EXPIRING in set(kinds)
    assert ("webhook", EventType.CONNECTS_EXPIRING) in recorder.sent
    assert moved["ran"]["sent"] >= 1
