"""Every benchmark, one after another: ``python -m bench`` (``make bench``).

Each benchmark runs as its own process and prints JSON; this collects them into one
JSON document on standard output and a summary table on standard error.

The default sizes keep the run to a few minutes. ``python -m bench --full`` runs the
proof-under-load sizes instead: reads at 10,000,000 lots, the monthly cycle for
1,000,000 accounts and the server's memory over 5 minutes (about half an hour on
2 cores). ``--only reads,cycle`` runs just the benchmarks named.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.common import machine  # noqa: E402

SUITE: list[tuple[str, list[str]]] = [
    ("ledger", ["ledger.py", "--spends", "2000"]),
    ("http", ["http_load.py", "--rate", "300", "--seconds", "10"]),
    ("topup", ["topup.py", "--rounds", "200"]),
    ("cycle", ["cycle.py", "--accounts", "100000"]),
    ("reads", ["reads.py", "--lots", "1000000"]),
    ("results", ["results.py", "--proposals", "20000", "--reads", "20"]),
    ("memory", ["memory.py", "--seconds", "60"]),
]

# ``--full``: the sizes the targets are stated for.
FULL: dict[str, list[str]] = {
    "cycle": ["cycle.py", "--accounts", "1000000", "--per-account", "0"],
    "reads": ["reads.py", "--lots", "10000000", "--reads", "5000"],
    "memory": ["memory.py", "--seconds", "300"],
    "results": ["results.py", "--proposals", "100000", "--reads", "30"],
}


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
    for db in ("sqlite", "postgresql"):
        r = ledger.get(db, {})
        if "concurrent_ratio" in r:
            c = r["library_concurrent"]
            rows.append(
                (
                    f"library spends/s, {db}, {c['threads']} threads (group commit)",
                    f"{c['spends_per_s']} (p99 {c['p99_ms']} ms)",
                    f"{r['concurrent_ratio']} x raw (explore: > 1)",
                )
            )
    for db in ("postgresql", "sqlite"):
        h = results.get("http", {}).get(db, {})
        if "open_loop" not in h:
            continue
        where = f"{db}, {h['workers']} worker(s)"
        for name, o in (
            ("", h["open_loop"]),
            (" with Idempotency-Key", h["open_loop_with_idempotency_keys"]),
        ):
            rows.append(
                (
                    f"HTTP at {o['offered_rate']:.0f} req/s{name}, {where}",
                    f"{o['requests_per_s']}/s, p50 {o['p50_ms']} ms, p99 {o['p99_ms']} ms",
                    "p99 < 50 ms",
                )
            )
        closed = [(where, h["max"])]
        if "one_process" in h:  # SQLite: the embedded default's one process too
            closed.append((f"{db}, 1 process", h["one_process"]))
        raw = h["raw"]["spends_per_s"]
        for label, m in closed:
            rows.append(
                (
                    f"HTTP max, {label}",
                    f"{m['requests_per_s']}/s (p99 {m['p99_ms']} ms)",
                    f"raw {raw}/s, ratio {round(m['requests_per_s'] / raw, 3)} (>= 0.25)",
                )
            )
        if "max_with_idempotency_keys" in h:
            m = h["max_with_idempotency_keys"]
            rows.append(
                (
                    f"HTTP max with Idempotency-Key, {where}",
                    f"{m['requests_per_s']}/s (p99 {m['p99_ms']} ms)",
                    f"{h['keyed_max_ratio']} x without keys (>= 0.8)",
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
        n = cycle.get("accounts", 0)
        rows.append(
            (
                f"monthly cycle, {n:,} accounts, PostgreSQL",
                f"{cycle['bulk'].get('seconds')} s",
                "< 30 s at 100,000; < 60 s at 1,000,000",
            )
        )
    reads = results.get("reads", {})
    for kind, r in reads.get("reads", {}).items():
        lib, raw = r["library"], r["raw"]
        rows.append(
            (
                f"{kind} read, {reads['lots']:,} lots, PostgreSQL",
                f"p50 {lib['p50_ms']} ms, p99 {lib['p99_ms']} ms",
                f"raw p99 {raw['p99_ms']} ms; p99 < 5 ms",
            )
        )
    res = results.get("results", {})
    for kind, r in res.get("reads", {}).items():
        if "library" in r:
            lib = r["library"]
            rows.append(
                (
                    f"results, group_by {kind}, {r['proposals_in_period']:,} proposals, PG",
                    f"p50 {lib['p50_ms']} ms, p99 {lib['p99_ms']} ms",
                    f"raw p99 {r['raw']['p99_ms']} ms; p99 < 50 ms",
                )
            )
    memory = results.get("memory", {})
    if "rss" in memory:
        m = memory["rss"]
        rows.append(
            (
                f"serve RSS, {memory['load']['seconds']} s of load",
                f"{m['start_mb']} -> max {m['max_mb']} -> {m['end_mb']} MB",
                f"slope {m['slope_mb_per_min']} MB/min; flat, < 300 MB",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description="every benchmark, JSON on stdout")
    parser.add_argument("--full", action="store_true", help="the full sizes (see above)")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    args = parser.parse_args()
    only = {name for name in args.only.split(",") if name}
    suite = [
        (name, FULL.get(name, script) if args.full else script)
        for name, script in SUITE
        if not only or name in only
    ]
    results = {name: run(script) for name, script in suite}
    print(json.dumps(results, indent=2))
    here = machine()
    print(
        f"machine: {here['cpus']} x {here['cpu_model']}, Python loop {here['python_loop_ms']} ms "
        "(bench/common.py: lower is faster)",
        file=sys.stderr,
    )
    width = max((len(r[0]) for r in summary(results)), default=10)
    for name, value, target in summary(results):
        print(f"{name:<{width}}  {value:<44}  {target}", file=sys.stderr)


if __name__ == "__main__":
    main()
