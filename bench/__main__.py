"""Every benchmark, one after another: ``python -m bench`` (``make bench``).

Each benchmark runs as its own process and prints JSON; this collects them into one
JSON document on standard output and a summary table on standard error.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

SUITE: list[tuple[str, list[str]]] = [
    ("ledger", ["ledger.py", "--spends", "2000"]),
    ("http", ["http_load.py", "--rate", "300", "--seconds", "10"]),
    ("topup", ["topup.py", "--rounds", "200"]),
    ("cycle", ["cycle.py", "--accounts", "100000"]),
]


def run(script: list[str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(HERE / script[0]), *script[1:]],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        return {"failed": done.returncode, "stderr": done.stderr[-2000:]}
    return dict(json.loads(done.stdout))


def summary(results: dict[str, dict[str, Any]]) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    ledger = results.get("ledger", {})
    for db in ("sqlite", "postgresql"):
        r = ledger.get(db, {})
        if "ratio" in r:
            rows.append(
                (
                    f"library spends/s, {db}",
                    f"{r['library']['spends_per_s']} (p99 {r['library']['p99_ms']} ms)",
                    f"raw {r['raw']['spends_per_s']}/s, ratio {r['ratio']} (>= 0.5)",
                )
            )
    http = results.get("http", {})
    if "http_open_loop" in http:
        o, m = http["http_open_loop"], http["http_max"]
        rows.append(
            (
                "HTTP at 300 req/s, PostgreSQL, 2 workers",
                f"{o['requests_per_s']}/s, p50 {o['p50_ms']} ms, p99 {o['p99_ms']} ms",
                "p99 < 50 ms",
            )
        )
        rows.append(
            (
                "HTTP max, PostgreSQL, 2 workers",
                f"{m['requests_per_s']}/s",
                f"raw {http['raw']['spends_per_s']}/s, ratio {http['ratio']} (>= 0.25)",
            )
        )
    for db in ("sqlite", "postgresql"):
        t = results.get("topup", {}).get(db, {})
        if "p99_ms" in t:
            rows.append(
                (
                    f"spend -> completed top-up, {db}",
                    f"p50 {t['p50_ms']} ms, p99 {t['p99_ms']} ms",
                    "p99 < 50 ms",
                )
            )
    cycle = results.get("cycle", {})
    if "bulk" in cycle:
        rows.append(
            (
                "monthly cycle, 100,000 accounts, PostgreSQL",
                f"{cycle['bulk'].get('seconds')} s",
                "< 30 s",
            )
        )
    return rows


def main() -> None:
    results = {name: run(script) for name, script in SUITE}
    print(json.dumps(results, indent=2))
    width = max((len(r[0]) for r in summary(results)), default=10)
    for name, value, target in summary(results):
        print(f"{name:<{width}}  {value:<44}  {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
