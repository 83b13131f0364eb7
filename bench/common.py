"""Shared set-up for the benchmarks: fresh databases, a funded agency, machine facts."""

from __future__ import annotations

import os
import platform
import re
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import create_engine, text

from connects.bootstrap import build
from connects.config import Settings
from connects.domain.clock import SimulatedClock
from connects.domain.commands import (
    AcceptInvitation,
    BuyConnects,
    CreateUser,
    CreditEarnings,
    InviteMember,
    OpenAccount,
    PostJob,
)
from connects.domain.policy import Actor
from connects.services.context import Context

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pg_base_url() -> str:
    return (
        os.environ.get("CONNECTS_BENCH_DATABASE_URL")
        or os.environ.get("CONNECTS_TEST_DATABASE_URL")
        or DEFAULT_PG
    )


def machine() -> dict[str, Any]:
    mem_kb = 0
    try:
        with open("/proc/meminfo") as fh:
            mem_kb = int(fh.readline().split()[1])
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "python_loop_ms": python_loop_ms(),
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "postgresql": pg_settings(),
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def python_loop_ms(n: int = 2_000_000) -> float:
    """A fixed pure-Python loop, best of three, in ms: how fast this machine runs Python
    right now. Machines of the same nominal kind differ (one ran this loop twice as slow
    as another), so figures from two machines are compared through this one."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(n):
            total += i
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)


# The server settings that move the write-heavy figures (the monthly cycle most).
PG_SETTINGS = (
    "server_version",
    "autovacuum",
    "shared_buffers",
    "max_wal_size",
    "checkpoint_timeout",
    "wal_compression",
    "synchronous_commit",
    "wal_buffers",
    "max_connections",
)


def pg_settings() -> dict[str, str] | str:
    """The PostgreSQL server's version and write-path settings, or why there are none."""
    try:
        engine = create_engine(pg_base_url())
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(:n)"),
                {"n": list(PG_SETTINGS)},
            ).all()
        engine.dispose()
        return {name: value for name, value in rows}
    except Exception as exc:  # reported in the JSON, never raised
        return f"PostgreSQL unavailable: {type(exc).__name__}"


@contextmanager
def sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="connects-bench-") as folder:
        yield f"sqlite:///{folder}/bench.db"


@contextmanager
def pg_database(keep: str | None = None) -> Iterator[str]:
    """A throw-away schema in the PostgreSQL database (dropped afterwards), or, with
    ``keep``, the schema of that name, made if missing and left in place (a large seed
    measured more than once)."""
    base = pg_base_url()
    if keep is not None and not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", keep):
        raise SystemExit(f"--keep: {keep!r} is not a plain lower-case schema name")
    schema = keep or f"bench_{secrets.token_hex(4)}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}options=-csearch_path%3D{schema}"
    finally:
        if keep is None:
            with admin.connect() as conn:
                conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def pg_available() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    try:
        engine = create_engine(pg_base_url())
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return None
    except Exception as exc:  # reported in the JSON, never raised
        return f"PostgreSQL unavailable: {type(exc).__name__}"


def funded_agency(
    url: str, *, members: int, jobs: int, pool: int, pool_size: int = 10
) -> tuple[Context, str, list[str], list[str]]:
    """A migrated database with an agency of ``members`` and ``jobs`` jobs priced 1."""
    clock = SimulatedClock(datetime(2026, 3, 1, tzinfo=UTC))
    # The pool is bought in one purchase, which may be above the default max (R43).
    settings = Settings(database_url=url, db_pool_size=pool_size, max_purchase=max(pool, 1))
    ctx = build(settings, clock=clock, migrate=True)
    owner = ctx.handle(CreateUser("Owner", "owner@bench.connects"))
    agency = ctx.handle(OpenAccount(str(owner["id"]), "agency", "Bench Agency", "agency-plus"))
    member_ids = []
    for i in range(members):
        user = ctx.handle(CreateUser(f"Member {i}", f"m{i}@bench.connects"))
        invitation = ctx.handle(
            InviteMember(Actor("user", str(owner["id"])), agency, str(user["id"]), "member")
        )
        ctx.handle(AcceptInvitation(str(user["id"]), str(invitation["id"])))
        member_ids.append(str(user["id"]))
    ctx.handle(CreditEarnings(agency, pool * 100))
    ctx.handle(BuyConnects(Actor("user", str(owner["id"])), agency, pool, "earnings"))
    client = ctx.handle(CreateUser("Client", "client@bench.connects"))
    job_ids = [ctx.handle(PostJob(str(client["id"]), f"job {i}", 1)) for i in range(jobs)]
    return ctx, agency, member_ids, job_ids


def percentile(samples: list[float], p: float) -> float:
    if not samples:
        return 0.0
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))
    return ordered[index]
