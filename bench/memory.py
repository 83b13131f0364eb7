"""Memory of `connects serve` under sustained load, sampled every second.

Starts `connects serve --workers 2` on a throw-away PostgreSQL schema (as
``bench/http_load.py`` does), sets up an agency through the API, then for
``--seconds`` offers a light, steady load: proposal submissions and reads (the account,
the Connects overview, expiring lots and a page of history) at ``--rate`` requests/s in
all. Every second it samples the resident memory of the server's whole process tree
(the parent and its uvicorn workers) from ``/proc``: RSS summed over the processes,
and PSS too (shared pages split between the processes that share them, so the sum
does not count them twice). Reports the series' start, max, end and slope in MB/min
(least squares over the whole series and over its second half, after warm-up), with
the request counts and latencies. Target: flat (slope about 0) and below 300 MB.
Prints JSON.

    python bench/memory.py [--seconds 60] [--rate 40] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

# Run as a script, Python puts bench/ first on the path: put the repository root there.
sys.path[0] = str(Path(__file__).resolve().parent.parent)

from bench.common import machine, percentile, pg_available, pg_database  # noqa: E402
from bench.http_load import free_port, setup, start_server  # noqa: E402

MB = 1024 * 1024


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the fields follow the last ")".
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def process_tree(root: int) -> list[int]:
    tree = _children()
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(tree.get(pid, []))
    return found


def _kb(path: str, field: str) -> int:
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def sample(root: int) -> dict[str, Any]:
    """RSS and PSS (bytes) summed over ``root`` and its descendants."""
    pids = process_tree(root)
    rss = sum(_kb(f"/proc/{p}/status", "VmRSS:") for p in pids) * 1024
    pss = sum(_kb(f"/proc/{p}/smaps_rollup", "Pss:") for p in pids) * 1024
    return {"rss": rss, "pss": pss, "processes": len(pids)}


def slope_mb_per_min(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, bytes) in MB per minute."""
    if len(points) < 2:
        return 0.0
    n = len(points)
    mx = sum(t for t, _ in points) / n
    my = sum(v for _, v in points) / n
    var = sum((t - mx) ** 2 for t, _ in points)
    if not var:
        return 0.0
    cov = sum((t - mx) * (v - my) for t, v in points)
    return round(cov / var * 60 / MB, 3)


def series_summary(series: list[tuple[float, float]]) -> dict[str, Any]:
    values = [v for _, v in series]
    half = series[len(series) // 2 :]
    return {
        "start_mb": round(values[0] / MB, 1),
        "max_mb": round(max(values) / MB, 1),
        "end_mb": round(values[-1] / MB, 1),
        "slope_mb_per_min": slope_mb_per_min(series),
        "slope_second_half_mb_per_min": slope_mb_per_min(half),
    }


class Sampler(threading.Thread):
    def __init__(self, root: int, every: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.root, self.every = root, every
        self.rss: list[tuple[float, float]] = []
        self.pss: list[tuple[float, float]] = []
        self.processes = 0
        self.stop = threading.Event()

    def run(self) -> None:
        start = time.monotonic()
        while not self.stop.is_set():
            s = sample(self.root)
            at = time.monotonic() - start
            self.rss.append((at, s["rss"]))
            self.pss.append((at, s["pss"]))
            self.processes = s["processes"]
            self.stop.wait(self.every - (time.monotonic() - start) % self.every)


async def load(base: str, world: dict[str, Any], rate: float, seconds: float) -> dict[str, Any]:
    """Half submissions, half reads, started on schedule at ``rate``/s in all."""
    pairs = iter([(p, j) for j in world["jobs"] for p in world["people"]])
    reader = world["people"][0]["token"]  # a member: may view the agency
    acct = world["agency"]
    reads = itertools.cycle(
        [
            f"/v1/accounts/{acct}",
            f"/v1/accounts/{acct}/connects",
            f"/v1/accounts/{acct}/connects/expiring",
            f"/v1/accounts/{acct}/connects/history?limit=20",
        ]
    )
    latencies: dict[str, list[float]] = {"submit": [], "read": []}
    statuses: dict[str, int] = {}
    limits = httpx.Limits(max_connections=50, max_keepalive_connections=50)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as c:
        start = time.perf_counter()

        async def one(i: int) -> None:
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            t0 = time.perf_counter()
            kind = "submit" if i % 2 == 0 else "read"
            try:
                code = await request(kind)
            except httpx.HTTPError as exc:  # counted, not raised: the sampling goes on
                statuses[type(exc).__name__] = statuses.get(type(exc).__name__, 0) + 1
                return
            latencies[kind].append(time.perf_counter() - t0)
            statuses[code] = statuses.get(code, 0) + 1

        async def request(kind: str) -> str:
            if kind == "submit":
                person, job_id = next(pairs)
                r = await c.post(
                    "/v1/proposals",
                    json={
                        "job_id": job_id,
                        "account_id": acct,
                        "freelancer_id": person["id"],
                        "expected_connects": 1,
                    },
                    headers={"Authorization": f"Bearer {person['token']}"},
                )
            else:
                r = await c.get(next(reads), headers={"Authorization": f"Bearer {reader}"})
            return str(r.status_code)

        await asyncio.gather(*(one(i) for i in range(int(rate * seconds))))
        elapsed = time.perf_counter() - start
    return {
        "seconds": round(elapsed, 1),
        "requests": sum(len(v) for v in latencies.values()),
        "requests_per_s": round(sum(len(v) for v in latencies.values()) / elapsed, 1),
        **{
            f"{k}_{p}_ms": round(percentile(v, int(p[1:])) * 1000, 2)
            for k, v in latencies.items()
            for p in ("p50", "p99")
        },
        "statuses": dict(sorted(statuses.items())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=40, help="requests/s, half of them reads")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    out: dict[str, Any] = {"bench": "memory", "machine": machine()}
    reason = pg_available()
    if reason:
        out["skipped"] = reason
        print(json.dumps(out, indent=2))
        return
    members = 50
    submissions = int(args.rate * args.seconds) // 2 + 1
    jobs = -(-submissions // members)
    with pg_database() as url:
        port = free_port()
        proc = start_server(url, port, args.workers)
        try:
            base = f"http://127.0.0.1:{port}"
            world = setup(base, members, jobs, submissions + 10)
            sampler = Sampler(proc.pid)
            sampler.start()
            time.sleep(2)  # a couple of idle samples first
            out["load"] = asyncio.run(load(base, world, args.rate, args.seconds))
            time.sleep(2)
            sampler.stop.set()
            sampler.join()
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
                out["server_killed"] = "did not stop within 30 s of SIGTERM"
    out["server"] = {"workers": args.workers, "processes": sampler.processes}
    out["samples"] = len(sampler.rss)
    out["rss"] = series_summary(sampler.rss)
    out["pss"] = series_summary(sampler.pss)
    out["rss_series_mb"] = [round(v / MB, 1) for _, v in sampler.rss]
    out["target"] = {"max_mb": 300, "slope_mb_per_min": "about 0"}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
