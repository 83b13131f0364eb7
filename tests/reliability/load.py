"""The load: accounts set up through the API, then many clients doing random work.

Every mutating request carries an ``Idempotency-Key``; on a connection error or a 5xx
the client sends the very same request again (same key, same body) to either API
process, as a real client would. Every answer is recorded, so
the checks can hold the ledger to what the clients were told.
"""

from __future__ import annotations

import base64
import json
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.reliability.cluster import OPERATOR_TOKEN

RETRY_FOR = 45.0  # seconds a client keeps retrying one request before giving up
WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"reliability-0123456789-abcdefgh").decode()
PER_TOPUP, PER_MONTH, THRESHOLD = 40, 120, 10
CLOCK_STEPS = ["PT6H", "P2D", "P9D", "P20D", "P30D", "P45D"]


@dataclass
class Seen:
    """One request as the client finally saw it (``status`` None: it gave up)."""

    op: str
    account_id: str
    key: str
    status: int | None
    body: Any
    at: float = 0.0  # time.monotonic() when the answer came
    # What was sent, to send the key again: method, path, token, body.
    request: tuple[str, str, str, Any] | None = None


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    counts: Counter[str] = field(default_factory=Counter)
    seen: list[Seen] = field(default_factory=list)

    def add(self, name: str, n: int = 1) -> None:
        with self.lock:
            self.counts[name] += n

    def record(self, seen: Seen) -> None:
        with self.lock:
            self.seen.append(seen)
            self.counts[f"{seen.op}:{seen.status}"] += 1


class Http:
    """One client's connection to the cluster, retrying as described above."""

    def __init__(self, bases: list[str], tally: Tally, rng: random.Random) -> None:
        self.bases = bases
        self.tally = tally
        self.rng = rng
        self.client = httpx.Client(timeout=httpx.Timeout(30, connect=5))

    def close(self) -> None:
        self.client.close()

    def call(
        self,
        method: str,
        path: str,
        token: str | None = None,
        body: Any = None,
        *,
        key: str | None = None,
    ) -> httpx.Response | None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if method != "GET":
            headers["Idempotency-Key"] = key or uuid.uuid4().hex
        content = None if body is None else json.dumps(body)
        if content is not None:
            headers["Content-Type"] = "application/json"
        deadline = time.monotonic() + RETRY_FOR
        first = True
        while True:
            if not first:
                self.tally.add("retries")
                if time.monotonic() > deadline:
                    self.tally.add("gave_up")
                    return None
                time.sleep(self.rng.uniform(0.05, 0.3))
            first = False
            self.tally.add("requests")
            try:
                r = self.client.request(
                    method, self.rng.choice(self.bases) + path, content=content, headers=headers
                )
            except httpx.TransportError:
                self.tally.add("transport_errors")
                continue
            if r.status_code >= 500:
                self.tally.add("server_errors")
                continue
            return r


def _ok(r: httpx.Response | None, what: str) -> dict[str, Any]:
    assert r is not None and r.status_code < 300, f"{what}: {r and r.status_code} {r and r.text}"
    out: dict[str, Any] = r.json()
    return out


@dataclass
class Acct:
    id: str
    kind: str
    owner_id: str
    owner: str  # bearer token
    client: str  # the token of the person who posts its jobs
    card: str  # billing method id (the default card)
    card_token: str
    auto_topup: bool


def setup_account(
    http: Http, i: int, *, kind: str, hook_url: str, card_token: str, just_in_time: bool
) -> Acct:
    """An account, its owner and job poster, a card, earnings, a webhook channel and
    (agencies) auto top-up with the top-up manager's grant, all through the API."""
    tag = uuid.uuid4().hex[:8]
    owner = _ok(
        http.call("POST", "/v1/users", body={"name": f"O{i}", "email": f"o{i}.{tag}@rel.io"}),
        "owner",
    )
    client = _ok(
        http.call("POST", "/v1/users", body={"name": f"C{i}", "email": f"c{i}.{tag}@rel.io"}),
        "client",
    )
    plan = "agency-plus" if kind == "agency" else "freelancer-plus"
    acct = _ok(
        http.call(
            "POST",
            "/v1/accounts",
            owner["token"],
            {"kind": kind, "name": f"{kind} {i}", "plan": plan},
        ),
        "account",
    )
    aid, tok = acct["id"], owner["token"]
    _ok(
        http.call(
            "POST",
            f"/v1/accounts/{aid}/channels",
            tok,
            {"kind": "webhook", "target": hook_url, "secret": WEBHOOK_SECRET},
        ),
        "channel",
    )
    card = _ok(
        http.call("POST", f"/v1/accounts/{aid}/billing-methods", tok, {"token": card_token}),
        "card",
    )
    _ok(
        http.call(
            "POST", f"/v1/admin/accounts/{aid}/earnings", OPERATOR_TOKEN, {"amount": 50_000_000}
        ),
        "earnings",
    )
    auto = kind == "agency"
    if auto:
        _ok(
            http.call(
                "POST",
                f"/v1/accounts/{aid}/grants",
                tok,
                {"grantee": "topup-manager", "permissions": ["connects:purchase"]},
            ),
            "grant",
        )
        settings = {
            "enabled": True,
            "per_topup": PER_TOPUP,
            "per_month": PER_MONTH,
            "threshold": THRESHOLD,
            "just_in_time": just_in_time,
        }
        _ok(http.call("PUT", f"/v1/accounts/{aid}/auto-topup", tok, settings), "auto-topup")
    return Acct(aid, kind, owner["id"], tok, client["token"], card["id"], card_token, auto)


@dataclass
class ClockGate:
    """At most one clock move every ``every`` seconds across all clients."""

    every: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    last: float = 0.0

    def take(self) -> bool:
        with self.lock:
            now = time.monotonic()
            if now - self.last < self.every:
                return False
            self.last = now
            return True


OPS = ["spend", "buy_earnings", "buy_card", "cancel", "clock", "read"]
WEIGHTS = [60, 6, 6, 12, 6, 10]


def client_loop(
    http: Http,
    accounts: list[Acct],
    rng: random.Random,
    stop: threading.Event,
    tally: Tally,
    gate: ClockGate,
    weights: list[int] = WEIGHTS,
) -> None:
    """Random work until ``stop``; the request in progress finishes (with its retries).
    ``weights`` are those of :data:`OPS`, in order."""
    jobs: list[tuple[str, Acct]] = []  # jobs this client posted that hold a proposal
    while not stop.is_set():
        a = rng.choice(accounts)
        op = rng.choices(OPS, weights)[0]
        if op == "spend":
            price = rng.randint(1, 30)
            job = http.call(
                "POST", "/v1/jobs", a.client, {"title": "work", "connects_required": price}
            )
            if job is None or job.status_code != 201:
                tally.add("job_not_posted")
                continue
            job_id = job.json()["id"]
            body = {
                "job_id": job_id,
                "account_id": a.id,
                "freelancer_id": a.owner_id,
                "expected_connects": price,
            }
            if _send(http, tally, "spend", a, "POST", "/v1/proposals", a.owner, body).status == 201:
                jobs.append((job_id, a))
        elif op in ("buy_earnings", "buy_card"):
            pay = "earnings" if op == "buy_earnings" else a.card
            body = {"quantity": rng.randint(1, 8), "pay_with": pay}
            _send(http, tally, op, a, "POST", f"/v1/accounts/{a.id}/purchases", a.owner, body)
        elif op == "cancel":
            if not jobs:
                continue
            job_id, owner = jobs.pop(rng.randrange(len(jobs)))
            _send(http, tally, "cancel", owner, "POST", f"/v1/jobs/{job_id}/cancel", owner.client)
        elif op == "clock":
            if not gate.take():
                continue
            body = {"advance": rng.choice(CLOCK_STEPS)}
            _send(http, tally, "clock", a, "POST", "/v1/admin/clock", OPERATOR_TOKEN, body)
        else:
            r = http.call("GET", f"/v1/accounts/{a.id}/connects", a.owner)
            tally.add("reads_ok" if r is not None and r.status_code == 200 else "reads_failed")


def _send(
    http: Http,
    tally: Tally,
    op: str,
    a: Acct,
    method: str,
    path: str,
    token: str,
    body: Any = None,
) -> Seen:
    key = uuid.uuid4().hex
    r = http.call(method, path, token, body, key=key)
    parsed: Any = None
    if r is not None:
        try:
            parsed = r.json()
        except ValueError:
            parsed = r.text
    status = None if r is None else r.status_code
    seen = Seen(op, a.id, key, status, parsed, time.monotonic(), (method, path, token, body))
    tally.record(seen)
    return seen
