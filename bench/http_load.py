"""Proposal submissions over HTTP against `connects serve` on PostgreSQL.

Starts `connects serve --workers 2` on a throw-away PostgreSQL schema, sets up an agency
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
import time
from typing import Any

import httpx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.common import machine, percentile, pg_available, pg_database
from bench.ledger import run_raw

OPERATOR = "bench-operator-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(url: str, port: int, workers: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CONNECTS_DATABASE_URL": url, "CONNECTS_OPERATOR_TOKEN": OPERATOR}
    exe = os.path.join(os.path.dirname(sys.executable), "connects")
    proc = subprocess.Popen(
        [exe, "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
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
            raise RuntimeError(proc.stderr.read().decode() if proc.stderr else "server died")
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
            post(
                f"/v1/accounts/{agency['id']}/members",
                {"user_id": m["id"], "role": "member"},
                owner["token"],
            )
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


async def open_loop(
    base: str, world: dict[str, Any], pairs: list[Any], rate: float, seconds: float
) -> dict[str, Any]:
    """Requests start on schedule at ``rate``/s: latency includes any queueing."""
    total = min(len(pairs), int(rate * seconds))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=400)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as c:
        start = time.perf_counter()

        async def one(i: int) -> None:
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            t0 = time.perf_counter()
            r = await c.post(
                "/v1/proposals",
                json=_submit_body(world, pairs[i]),
                headers={"Authorization": f"Bearer {pairs[i][0]['token']}"},
            )
            latencies.append(time.perf_counter() - t0)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

        await asyncio.gather(*(one(i) for i in range(total)))
        elapsed = time.perf_counter() - start
    return {"offered_rate": rate, **_figures(latencies, statuses, elapsed)}


async def closed_loop(
    base: str, world: dict[str, Any], pairs: list[Any], clients: int, seconds: float
) -> dict[str, Any]:
    """``clients`` submit back to back for ``seconds``: the most the server does."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue = iter(pairs)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as c:
        start = time.perf_counter()
        stop = start + seconds

        async def client() -> None:
            for pair in queue:
                if time.perf_counter() >= stop:
                    return
                t0 = time.perf_counter()
                r = await c.post(
                    "/v1/proposals",
                    json=_submit_body(world, pair),
                    headers={"Authorization": f"Bearer {pair[0]['token']}"},
                )
                latencies.append(time.perf_counter() - t0)
                statuses[r.status_code] = statuses.get(r.status_code, 0) + 1

        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - start
    return {"clients": clients, **_figures(latencies, statuses, elapsed)}


def main() -> None:
    parser = argparse.ArgumentParser(description="proposal submissions over HTTP")
    parser.add_argument("--rate", type=float, default=300)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args()
    out: dict[str, Any] = {"benchmark": "http.proposals", "machine": machine()}
    reason = pg_available()
    if reason:
        out["skipped"] = reason
        print(json.dumps(out, indent=2))
        return
    members = 50
    open_n = int(args.rate * args.seconds)
    closed_n = int(2000 * args.seconds)  # more than the server can take in that time
    jobs = -(-(open_n + closed_n) // members)
    with pg_database() as url:
        port = free_port()
        proc = start_server(url, port, args.workers)
        try:
            base = f"http://127.0.0.1:{port}"
            world = setup(base, members, jobs, open_n + closed_n + 10)
            pairs = [(p, j) for j in world["jobs"] for p in world["people"]]
            out["http_open_loop"] = asyncio.run(
                open_loop(base, world, pairs[:open_n], args.rate, args.seconds)
            )
            out["http_max"] = asyncio.run(
                closed_loop(base, world, pairs[open_n:], args.clients, args.seconds)
            )
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    with pg_database() as url:
        out["raw"] = run_raw(url, 2000)
    out["ratio"] = round(out["http_max"]["requests_per_s"] / out["raw"]["spends_per_s"], 3)
    out["targets"] = {"ratio": 0.25, "p99_ms": 50, "at_rate": 300}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
