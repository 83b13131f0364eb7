"""SIGKILL during keyed writes (R31): ``connects serve`` is killed at random moments
while clients send keyed purchases, proposals, cancels, cards and earnings credits;
it is restarted and every key is sent again. Each retry answers what any client saw
before, byte for byte; each change is in the ledger once; nothing is charged twice;
no key is left without its answer. On SQLite and PostgreSQL.

Short by default; ``CONNECTS_LONG_TESTS=1`` kills more often over more requests.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from connects.bootstrap import build
from connects.config import Settings
from connects.db import schema
from tests.reliability.cluster import CONNECTS, OPERATOR_TOKEN, SECRET_KEY, Proc, free_port

pytestmark = [pytest.mark.reliability]

LONG = os.environ.get("CONNECTS_LONG_TESTS") == "1"
KILLS = 12 if LONG else 4
PER_KIND = 200 if LONG else 80  # keyed requests of each kind
THREADS = 8


@dataclass
class Op:
    kind: str
    method: str
    path: str
    token: str
    body: Any
    key: str = field(default_factory=lambda: uuid.uuid4().hex)
    seen: list[tuple[int, bytes]] = field(default_factory=list)  # answers a client got


class Server:
    """One ``connects serve``, killed and restarted by the test."""

    def __init__(self, url: str, logs: Path) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "CONNECTS_DATABASE_URL": url,
            "CONNECTS_OPERATOR_TOKEN": OPERATOR_TOKEN,
            "CONNECTS_SECRET_KEY": SECRET_KEY,
        }
        args = ["serve", "--port", str(self.port), "--workers", "1", "--every", "0"]
        logs.mkdir(parents=True, exist_ok=True)
        self.proc = Proc("api", args, env, logs / "api.log")
        self.base = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.alive(), self.proc.log.read_text(errors="replace")[-3000:]
            try:
                if httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError("connects serve never answered /healthz")


def send(client: httpx.Client, base: str, op: Op) -> tuple[int, bytes] | None:
    """The answer, or None when it was lost (sent, then the server died)."""
    headers = {"Authorization": f"Bearer {op.token}", "Idempotency-Key": op.key}
    content = None
    if op.body is not None:
        content = json.dumps(op.body)
        headers["Content-Type"] = "application/json"
    while True:
        try:
            r = client.request(op.method, base + op.path, content=content, headers=headers)
        except httpx.ConnectError:  # never sent: the server is down, wait for it
            time.sleep(0.05)
            continue
        except httpx.TransportError:
            return None
        return r.status_code, r.content


def ok(r: httpx.Response) -> Any:
    assert r.status_code < 300, r.text
    return r.json()


def setup(base: str) -> dict[str, Any]:
    """A freelancer with Connects and earnings, a client with jobs, through the API."""
    with httpx.Client(base_url=base, timeout=30) as c:
        tag = uuid.uuid4().hex[:8]
        fred = ok(c.post("/v1/users", json={"name": "Fred", "email": f"f.{tag}@kill.io"}))
        cal = ok(c.post("/v1/users", json={"name": "Cal", "email": f"c.{tag}@kill.io"}))
        fh = {"Authorization": f"Bearer {fred['token']}"}
        ch = {"Authorization": f"Bearer {cal['token']}"}
        oh = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
        body = {"kind": "freelancer", "name": "Fred", "plan": "freelancer-plus"}
        acct = ok(c.post("/v1/accounts", json=body, headers=fh))["id"]
        ok(c.post(f"/v1/admin/accounts/{acct}/earnings", json={"amount": 10**8}, headers=oh))
        buy = {"quantity": 5000, "pay_with": "earnings"}
        ok(c.post(f"/v1/accounts/{acct}/purchases", json=buy, headers=fh))
        card = ok(
            c.post(f"/v1/accounts/{acct}/billing-methods", json={"token": "tok_visa"}, headers=fh)
        )
        job = {"title": "Work", "connects_required": 2}
        to_propose = [ok(c.post("/v1/jobs", json=job, headers=ch))["id"] for _ in range(PER_KIND)]
        to_cancel = [ok(c.post("/v1/jobs", json=job, headers=ch))["id"] for _ in range(PER_KIND)]
        agency = {"kind": "agency", "name": "Credits", "plan": "agency-plus"}
        credited = ok(c.post("/v1/accounts", json=agency, headers=ch))["id"]
    return {
        "fred": fred,
        "cal": cal,
        "account": acct,
        "credited": credited,
        "card": card["id"],
        "to_propose": to_propose,
        "to_cancel": to_cancel,
    }


def operations(world: dict[str, Any], rng: random.Random) -> list[Op]:
    acct, fred, cal = world["account"], world["fred"], world["cal"]
    ops = [
        Op(
            "credit",
            "POST",
            f"/v1/admin/accounts/{world['credited']}/earnings",
            OPERATOR_TOKEN,
            {"amount": 1},
        )
        for _ in range(PER_KIND)
    ]
    ops += [
        Op(
            "card",
            "POST",
            f"/v1/accounts/{acct}/billing-methods",
            fred["token"],
            {"token": "tok_visa"},
        )
        for _ in range(PER_KIND)
    ]
    for i in range(PER_KIND):
        pay = world["card"] if i % 2 else "earnings"
        ops.append(
            Op(
                "buy",
                "POST",
                f"/v1/accounts/{acct}/purchases",
                fred["token"],
                {"quantity": 1, "pay_with": pay},
            )
        )
    for job in world["to_propose"]:
        body = {
            "job_id": job,
            "account_id": acct,
            "freelancer_id": fred["id"],
            "expected_connects": 2,
        }
        ops.append(Op("propose", "POST", "/v1/proposals", fred["token"], body))
    ops += [
        Op("cancel", "POST", f"/v1/jobs/{job}/cancel", cal["token"], None)
        for job in world["to_cancel"]
    ]
    rng.shuffle(ops)
    return ops


def burst(server: Server, ops: list[Op], rng: random.Random) -> Counter[str]:
    """Send every op once from THREADS clients while the server is killed and restarted
    KILLS times at random moments; an op whose answer was lost is simply not seen."""
    queue = list(ops)
    lock = threading.Lock()
    done = threading.Event()
    tally: Counter[str] = Counter()

    def client() -> None:
        with httpx.Client(timeout=30) as c:
            while True:
                with lock:
                    if not queue:
                        return
                    op = queue.pop()
                answer = send(c, server.base, op)
                with lock:
                    if answer is None:
                        tally["lost"] += 1
                    else:
                        op.seen.append(answer)
                        tally[str(answer[0])] += 1

    def killer() -> None:
        for _ in range(KILLS):
            if done.wait(rng.uniform(0.05, 0.4)):
                return
            server.proc.kill()
            tally["kills"] += 1
            server.start()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(THREADS)]
    kill = threading.Thread(target=killer, daemon=True)
    kill.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    done.set()
    kill.join(120)
    if not server.proc.alive():
        server.start()
    return tally


def count(ctx: Any, table: Any, *where: Any) -> int:
    with ctx.db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_sigkill_during_keyed_writes_loses_and_doubles_nothing(
    database: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'kill.db'}"
    if database == "postgresql":
        url = request.getfixturevalue("pg_url")
    ctx = build(Settings(database_url=url), migrate=True)
    server = Server(url, tmp_path / "logs")
    try:
        server.start()
        world = setup(server.base)
        rng = random.Random(
            int(os.environ.get("CONNECTS_STRESS_SEED") or random.randrange(1 << 30))
        )
        ops = operations(world, rng)
        tally = burst(server, ops, rng)
        # Killed mid-burst at least twice, with answers lost (the probe bit).
        assert tally["kills"] >= 2 and tally["lost"] > 0, tally

        # After the restart every key is sent again, twice: a stored answer is replayed
        # (the same as any answer a client saw); a lost one runs now, once.
        problems: list[str] = []
        finals: dict[str, tuple[int, bytes]] = {}
        with httpx.Client(timeout=30) as c:
            for op in ops:
                again = send(c, server.base, op)
                twice = send(c, server.base, op)
                assert again is not None and twice is not None
                if again[0] >= 500 or again != twice:
                    problems.append(f"{op.kind} {op.key}: {again} then {twice}")
                for seen in op.seen:
                    if seen[0] < 500 and seen != again:
                        problems.append(f"{op.kind} {op.key}: saw {seen}, retry gave {again}")
                finals[op.key] = again
        assert not problems, "\n".join(problems[:20])

        by_kind: dict[str, list[Op]] = {}
        for op in ops:
            by_kind.setdefault(op.kind, []).append(op)
        statuses = {k: Counter(finals[op.key][0] for op in v) for k, v in by_kind.items()}
        assert statuses["credit"] == {200: PER_KIND} or statuses["credit"] == {201: PER_KIND}
        assert statuses["card"] == {201: PER_KIND}
        assert statuses["buy"] == {201: PER_KIND}
        assert statuses["propose"] == {201: PER_KIND}, statuses
        assert statuses["cancel"] == {200: PER_KIND}, statuses
        acct, fred = world["account"], world["fred"]
        # Each change once: one earnings cent per credit key, one card per card key,
        # one purchase (and at most one charge) per buy key, one proposal per job.
        with ctx.db.read() as conn:
            earnings = conn.execute(
                select(schema.accounts.c.earnings_cents).where(
                    schema.accounts.c.id == world["credited"]
                )
            ).scalar_one()
        assert earnings == PER_KIND
        assert (
            count(ctx, schema.billing_methods, schema.billing_methods.c.account_id == acct)
            == PER_KIND + 1
        )
        assert count(ctx, schema.purchases, schema.purchases.c.account_id == acct) == PER_KIND + 1
        with ctx.db.read() as conn:
            charges = conn.execute(
                select(schema.gateway_charges.c.idempotency_key, func.count()).group_by(
                    schema.gateway_charges.c.idempotency_key
                )
            ).all()
        assert len(charges) == PER_KIND // 2 and all(n == 1 for _, n in charges)
        assert (
            count(ctx, schema.proposals, schema.proposals.c.freelancer_id == fred["id"]) == PER_KIND
        )
        ids = {json.loads(finals[op.key][1])["id"] for op in by_kind["propose"]}
        with ctx.db.read() as conn:
            stored_ids = set(conn.execute(select(schema.proposals.c.id)).scalars())
        assert ids == stored_ids
        assert (
            count(ctx, schema.idempotency_keys, schema.idempotency_keys.c.status_code.is_(None))
            == 0
        )
        cli = subprocess.run(
            [CONNECTS, "verify"],
            env={**os.environ, "CONNECTS_DATABASE_URL": url},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert cli.returncode == 0, (cli.stdout, cli.stderr)
    finally:
        server.proc.stop()
        ctx.db.dispose()
