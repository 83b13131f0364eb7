"""Real worker processes: one SIGKILLed mid-delivery loses nothing; two on PostgreSQL
share 1,000 events without losing or repeating any (R29)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import IO

import pytest
from sqlalchemy import func, select

from connects.bootstrap import build
from connects.config import Settings
from connects.db.clockstore import DatabaseClock
from connects.db.schema import deliveries, delivery_attempts
from connects.domain.commands import AddChannel
from connects.notify.channels import LiveNotifier
from connects.services import notifications as notes
from connects.services.context import Context
from connects.worker import Worker
from tests.integration.notify_support import Webhook, raw_events, webhook_server, whsec
from tests.world import World

KEY = "test-secret-key-for-notify-0123456789"
RUN_CLI = "from connects.cli import app; app()"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'w.db'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def contexts() -> Iterator[Callable[..., Context]]:
    made: list[Context] = []

    def make(url: str, **kw: object) -> Context:
        kw.setdefault("allow_private_webhooks", True)  # the receiver is local (R50)
        ctx = build(Settings(database_url=url, secret_key=KEY, **kw), migrate=True)  # type: ignore[arg-type]
        made.append(ctx)
        return ctx

    yield make
    for ctx in made:
        ctx.db.dispose()


def _spawn(
    url: str, *args: str, simulated: bool = False, pipe: bool = False
) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "CONNECTS_DATABASE_URL": url,
        "CONNECTS_SECRET_KEY": KEY,
        "CONNECTS_ALLOW_PRIVATE_WEBHOOKS": "1",  # the receiver is local (R50)
        "CONNECTS_CLOCK": "simulated" if simulated else "system",
    }
    return subprocess.Popen(
        [sys.executable, "-c", RUN_CLI, "worker", *args],
        env=env,
        stdout=subprocess.PIPE if pipe else subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _wait(cond: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_a_sigkilled_worker_mid_delivery_loses_nothing(
    url: str, contexts: Callable[..., Context]
) -> None:
    # R29: the worker process is killed while the receiver holds its request; its
    # claim's lease runs out and another worker delivers the same event.
    ctx = contexts(url, clock="simulated")
    assert isinstance(ctx.clock, DatabaseClock)
    w = World(ctx)
    agency = w.agency("olga")
    with webhook_server(Webhook(hang_first=1, now=ctx.now)) as hook:
        made = ctx.handle(AddChannel(w.actor("olga"), agency, "webhook", hook.url))
        hook.secret = made["secret"]  # R46: the rescuer's delivery is verified
        [event_id] = raw_events(ctx, agency, 1)
        proc = _spawn(url, "--once", simulated=True)
        try:
            assert _wait(lambda: hook.arrivals >= 1, 30), "the worker never sent"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        assert proc.returncode == -signal.SIGKILL
        with ctx.db.read() as conn:
            held = conn.execute(select(deliveries.c.status, deliveries.c.claimed_by)).one()
        assert held.status == "sending" and held.claimed_by
        ctx.clock.advance(timedelta(seconds=61))  # the dead worker's lease runs out
        done = Worker(
            ctx,
            LiveNotifier(timeout=5, allow_private=ctx.allow_private_webhooks),
            name="rescuer",
            due_jobs=False,
        ).run_once()
        assert done["sent"] == 1
    assert hook.ids() == [event_id]
    [item] = notes.list_notifications(ctx, w.actor("olga"), agency)["items"]
    assert item["status"] == "sent"
    assert [a["ok"] for a in item["attempts"]] == [False, True]


def _started(stream: IO[str] | None) -> str:
    assert stream is not None
    line = stream.readline()
    assert line.startswith("worker "), line
    return line.split()[1]


@pytest.mark.postgres
def test_two_worker_processes_deliver_1000_events_once_each(
    pg_url: str, contexts: Callable[..., Context]
) -> None:
    # R29: SKIP LOCKED claims: every event arrives, none twice, both workers work.
    ctx = contexts(pg_url)
    w = World(ctx)
    agency = w.agency("olga")
    secret = whsec("two-workers-0123456789-abcdefgh")
    with webhook_server(Webhook(secret=secret)) as hook:  # the workers' clock is the real one
        ctx.handle(AddChannel(w.actor("olga"), agency, "webhook", hook.url, secret=secret))
        procs = [_spawn(pg_url, "--interval", "0.1", pipe=True) for _ in range(2)]
        try:
            names = {_started(p.stdout) for p in procs}
            ids = raw_events(ctx, agency, 1000)
            assert _wait(lambda: len(set(hook.ids())) >= 1000, 90), len(set(hook.ids()))
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                p.wait(20)
                if p.stdout is not None:
                    p.stdout.close()
    assert [p.returncode for p in procs] == [0, 0]
    got = Counter(hook.ids())
    assert set(got) == set(ids)
    assert max(got.values()) == 1, "no event was sent twice"
    assert hook.bad_signatures == 0
    with ctx.db.read() as conn:
        statuses = dict(
            conn.execute(
                select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
            ).all()
        )
        workers = {
            wk for wk in conn.execute(select(delivery_attempts.c.worker).distinct()).scalars()
        }
    assert statuses == {"sent": 1000}
    assert len(workers) == 2 and len(names) == 2
