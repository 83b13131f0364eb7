"""Proposal submissions over HTTP against `connects serve`, on PostgreSQL and SQLite.

Starts `connects serve --workers 2` on a throw-away PostgreSQL schema (or SQLite file;
there also one process, the closed loop alone), sets up an agency
through the API (members, Connects bought from earnings, jobs), then offers proposal
submissions at a fixed rate (open loop: requests start on schedule whether or not
earlier ones have answered, so latency includes queueing) and reports requests/s and
p50/p99 latency. The same run measures the raw-database baseline of the same writes
(``bench/ledger.py``'s raw loop) for the ratio. Prints JSON.

``python bench/http_load.py --rate 300 --seconds 10``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

import httpx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import machine, percentile, pg_available, pg_database, sqlite_database
from bench.ledger import run_raw

OPERATOR = "bench-operator-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(url: str, port: int, workers: int, *extra: str) -> subprocess.Popen[bytes]:
    """``connects serve`` in its own session; its log goes to a file nobody has to drain
    (a pipe left unread would fill and stop the server mid-run)."""
    env = {**os.environ, "CONNECTS_DATABASE_URL": url, "CONNECTS_OPERATOR_TOKEN": OPERATOR}
    env["CONNECTS_MAX_PURCHASE"] = str(10**9)  # the pool is bought in one purchase (R43)
    exe = os.path.join(os.path.dirname(sys.executable), "connects")
    log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(
        [
            exe,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            *list(extra),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(log.read().decode(errors="replace")[-4000:] or "server died")
        time.sleep(0.2)
    raise RuntimeError("server did not start in 60 s")


def setup(base: str, members: int, jobs: int, pool: int) -> dict[str, Any]:
    with httpx.Client(base_url=base, timeout=30) as c:

        def post(path: str, body: dict[str, Any], token: str) -> dict[str, Any]:
            r = c.post(path, json=body, headers={"Authorization": f"Bearer {token}"})
            r.raise_for_status()
            return dict(r.json())

        owner = c.post("/v1/users", json={"name": "Owner", "email": "o@bench.io"}).json()
        agency = post(
            "/v1/accounts",
            {"kind": "agency", "name": "Bench", "plan": "agency-plus"},
            owner["token"],
        )
        people = []
        for i in range(members):
            m = c.post("/v1/users", json={"name": f"M{i}", "email": f"m{i}@bench.io"}).json()
            invited = post(
                f"/v1/accounts/{agency['id']}/members",
                {"user_id": m["id"], "role": "member"},
                owner["token"],
            )
            post(f"/v1/invitations/{invited['id']}/accept", {}, m["token"])  # R49: consent
            people.append(m)
        post(f"/v1/admin/accounts/{agency['id']}/earnings", {"amount": pool * 100}, OPERATOR)
        post(
            f"/v1/accounts/{agency['id']}/purchases",
            {"quantity": pool, "pay_with": "earnings"},
            owner["token"],
        )
        client = c.post("/v1/users", json={"name": "Client", "email": "c@bench.io"}).json()
        job_ids = [
            post("/v1/jobs", {"title": f"job {i}", "connects_required": 1}, client["token"])["id"]
            for i in range(jobs)
        ]
    return {"agency": agency["id"], "people": people, "jobs": job_ids}


def _submit_body(world: dict[str, Any], pair: tuple[dict[str, Any], str]) -> dict[str, Any]:
    person, job_id = pair
    return {
        "job_id": job_id,
        "account_id": world["agency"],
        "freelancer_id": person["id"],
        "expected_connects": 1,
    }


def _figures(latencies: list[float], statuses: dict[int, int], elapsed: float) -> dict[str, Any]:
    return {
        "requests": len(latencies),
        "seconds": round(elapsed, 2),
        "requests_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 2),
        "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


class RawClient:
    """A lean HTTP/1.1 keep-alive client on asyncio streams.

    The load generator shares the machine's cores with the server it measures: httpx
    spends several times the CPU per request that this does, and that CPU would be
    taken from the server. Requests are pre-encoded bytes; answers are read by their
    Content-Length (the API never streams).
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def send(self, data: bytes) -> int:
        while self.idle:
            reader, writer = self.idle.pop()
            try:
                return await self._exchange(reader, writer, data)
            except (asyncio.IncompleteReadError, ConnectionError) as error:
                writer.close()
                if isinstance(error, asyncio.IncompleteReadError) and error.partial:
                    raise
                # The server closed this idle connection (keep-alive timeout) before
                # reading the request: send it again on another.
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        return await self._exchange(reader, writer, data)

    async def _exchange(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, data: bytes
    ) -> int:
        writer.write(data)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        if length:
            await reader.readexactly(length)
        self.idle.append((reader, writer))
        return status

    def close(self) -> None:
        for _, writer in self.idle:
            writer.close()


def encode_submissions(
    world: dict[str, Any], pairs: list[Any], port: int, keyed: bool = False
) -> list[bytes]:
    """``POST /v1/proposals`` requests as bytes, one per (person, job) pair."""
    out = []
    for n, pair in enumerate(pairs):
        body = json.dumps(_submit_body(world, pair)).encode()
        key = f"Idempotency-Key: bench-{n}-{pair[1]}\r\n" if keyed else ""
        head = (
            f"POST /v1/proposals HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {pair[0]['token']}\r\n{key}"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        out.append(head.encode() + body)
    return out


async def open_loop(port: int, requests: list[bytes], rate: float) -> dict[str, Any]:
    """Requests start on schedule at ``rate``/s: latency includes any queueing."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    client = RawClient(port)
    start = time.perf_counter()

    async def one(i: int) -> None:
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
        t0 = time.perf_counter()
        status = await client.send(requests[i])
        latencies.append(time.perf_counter() - t0)
        statuses[status] = statuses.get(status, 0) + 1

    await asyncio.gather(*(one(i) for i in range(len(requests))))
    elapsed = time.perf_counter() - start
    client.close()
    return {"offered_rate": rate, **_figures(latencies, statuses, elapsed)}


async def _closed(
    port: int,
    queue: Any,
    clients: int,
    seconds: float,
    latencies: list[float],
    statuses: dict[int, int],
) -> float:
    """``clients`` submit from ``queue`` back to back for ``seconds``; the time taken."""
    client = RawClient(port)
    start = time.perf_counter()
    stop = start + seconds

    async def one_client() -> None:
        for data in queue:
            if time.perf_counter() >= stop:
                return
            t0 = time.perf_counter()
            status = await client.send(data)
            latencies.append(time.perf_counter() - t0)
            statuses[status] = statuses.get(status, 0) + 1

    await asyncio.gather(*(one_client() for _ in range(clients)))
    elapsed = time.perf_counter() - start
    client.close()
    return elapsed


async def closed_loop(
    port: int, requests: list[bytes], clients: int, seconds: float
) -> dict[str, Any]:
    """``clients`` submit back to back for ``seconds``: the most the server does."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    elapsed = await _closed(port, iter(requests), clients, seconds, latencies, statuses)
    return {"clients": clients, **_figures(latencies, statuses, elapsed)}


async def closed_loops_in_turn(
    port: int, runs: list[list[bytes]], clients: int, seconds: float, rounds: int = 4
) -> list[dict[str, Any]]:
    """The closed loop of each of ``runs`` (say without keys and with), ``seconds`` each
    in all, taking turns ``rounds`` times: every run meets the same machine (its load,
    the database's growth, a checkpoint) instead of the one that runs later meeting a
    busier one."""
    queues = [iter(r) for r in runs]
    latencies: list[list[float]] = [[] for _ in runs]
    statuses: list[dict[int, int]] = [{} for _ in runs]
    elapsed = [0.0 for _ in runs]
    for _ in range(rounds):
        for i, queue in enumerate(queues):
            took = await _closed(port, queue, clients, seconds / rounds, latencies[i], statuses[i])
            elapsed[i] += took
    return [
        {"clients": clients, "rounds": rounds, **_figures(latencies[i], statuses[i], elapsed[i])}
        for i in range(len(runs))
    ]


def run_http(
    url: str, args: argparse.Namespace, workers: int, *, max_only: bool = False
) -> dict[str, Any]:
    """Open loop at ``--rate`` and closed loop, each without and with an Idempotency-Key
    on every request (``max_only``: the closed loop without keys alone)."""
    members = 50
    open_n = 0 if max_only else int(args.rate * args.seconds)
    closed_n = int(1500 * args.seconds)  # more than the server can take in that time
    total = 2 * open_n + closed_n * (1 if max_only else 2)
    jobs = -(-total // members)
    port = free_port()
    proc = start_server(url, port, workers, "--every", "0")
    out: dict[str, Any] = {"workers": workers}
    try:
        base = f"http://127.0.0.1:{port}"
        world = setup(base, members, jobs, total + 10)
        pairs = [(p, j) for j in world["jobs"] for p in world["people"]]
        warm = encode_submissions(world, pairs[:200], port)
        asyncio.run(closed_loop(port, warm, 8, 60))
        pairs = pairs[200:]
        plain = encode_submissions(world, pairs[:open_n], port)
        keyed = encode_submissions(world, pairs[open_n : 2 * open_n], port, keyed=True)
        start = 2 * open_n
        rest = encode_submissions(world, pairs[start : start + closed_n], port)
        if not max_only:
            out["open_loop"] = asyncio.run(open_loop(port, plain, args.rate))
            keyed_run = asyncio.run(open_loop(port, keyed, args.rate))
            out["open_loop_with_idempotency_keys"] = keyed_run
        if max_only:
            out["max"] = asyncio.run(closed_loop(port, rest, args.clients, args.seconds))
        else:  # without keys and with them, taking turns: their ratio under one load
            keyed_rest = pairs[start + closed_n : total - 200]
            keyed_requests = encode_submissions(world, keyed_rest, port, keyed=True)
            out["max"], keyed_max = asyncio.run(
                closed_loops_in_turn(port, [rest, keyed_requests], args.clients, args.seconds)
            )
            out["max_with_idempotency_keys"] = keyed_max
            out["keyed_max_ratio"] = round(
                keyed_max["requests_per_s"] / out["max"]["requests_per_s"], 3
            )
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
    for name, run in out.items():  # figures of refusals measure nothing: say so, loudly
        statuses = run.get("statuses", {"201": 1}) if isinstance(run, dict) else {"201": 1}
        if set(statuses) != {"201"}:
            raise SystemExit(f"http_load: {name} answered {statuses}, not only 201")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="proposal submissions over HTTP")
    parser.add_argument("--rate", type=float, default=300)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, default=2, help="`connects serve --workers`")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--db", choices=("postgresql", "sqlite", "both"), default="both")
    args = parser.parse_args()
    out: dict[str, Any] = {"benchmark": "http.proposals", "machine": machine()}
    out["targets"] = {
        "ratio": 0.25,
        "p99_ms": 50,
        "at_rate": args.rate,
        "keyed_p99_ms": 50,  # R31: a key on every request, one commit each
        "keyed_max_ratio": 0.8,
    }
    if args.db in ("postgresql", "both"):
        reason = pg_available()
        if reason:
            out["postgresql"] = {"skipped": reason}
        else:
            with pg_database() as url:
                pg = run_http(url, args, args.workers)
            with pg_database() as url:
                pg["raw"] = run_raw(url, 2000)
            pg["ratio"] = round(pg["max"]["requests_per_s"] / pg["raw"]["spends_per_s"], 3)
            out["postgresql"] = pg
    if args.db in ("sqlite", "both"):
        # As many processes as on PostgreSQL; their writers take turns on a file lock.
        with sqlite_database() as url:
            lite = run_http(url, args, args.workers)
        if args.workers != 1:  # and one process, the embedded default's `connects serve`
            with sqlite_database() as url:
                lite["one_process"] = run_http(url, args, 1, max_only=True)["max"]
        with sqlite_database() as url:
            lite["raw"] = run_raw(url, 2000)
        lite["ratio"] = round(lite["max"]["requests_per_s"] / lite["raw"]["spends_per_s"], 3)
        out["sqlite"] = lite
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
