"""Real processes on one PostgreSQL schema: ``connects serve`` and ``connects worker``,
started, SIGKILLed and restarted by the test, and the faults injected into them."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
from sqlalchemy import Engine, create_engine, text

OPERATOR_TOKEN = "op-reliability-token"
SECRET_KEY = "reliability-secret-key-0123456789"
CONNECTS = str(Path(sys.executable).parent / "connects")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def with_app_name(url: str, name: str) -> str:
    """The URL with ``application_name`` set, so the test can find the backends."""
    return f"{url}{'&' if '?' in url else '?'}application_name={name}"


@dataclass
class Proc:
    """One ``connects`` process; ``start`` again after a kill is a restart."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    stop_signal: int = signal.SIGTERM  # uvicorn shuts down cleanly on SIGINT
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0
    _out: IO[bytes] | None = None

    def start(self) -> None:
        self._close()  # a process that exited by itself left its log open
        self._out = self.log.open("ab")
        self.popen = subprocess.Popen(
            [CONNECTS, *self.args], env=self.env, stdout=self._out, stderr=subprocess.STDOUT
        )
        self.starts += 1

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self) -> None:
        assert self.popen is not None
        self.popen.send_signal(signal.SIGKILL)
        self.popen.wait(30)
        self._close()

    def stop(self) -> int | None:
        """``stop_signal``, then SIGKILL after 20 s; the exit code."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.send_signal(self.stop_signal)
            try:
                self.popen.wait(20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        self._close()
        return self.popen.returncode

    def _close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None


@dataclass
class Cluster:
    """API processes (two by default, one uvicorn worker each) and background workers
    (two by default)."""

    url: str  # the schema's URL, as the test itself uses it
    logs: Path
    app_name: str = field(default_factory=lambda: f"rel_{os.urandom(4).hex()}")
    apis: list[Proc] = field(default_factory=list)
    workers: list[Proc] = field(default_factory=list)
    ports: list[int] = field(default_factory=list)
    api_count: int = 2
    uvicorn_workers: int = 1  # ``serve --workers N``
    worker_count: int = 2
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "CONNECTS_DATABASE_URL": with_app_name(self.url, self.app_name),
            "CONNECTS_CLOCK": "simulated",
            "CONNECTS_OPERATOR_TOKEN": OPERATOR_TOKEN,
            "CONNECTS_SECRET_KEY": SECRET_KEY,
            "CONNECTS_ALLOW_PRIVATE_WEBHOOKS": "1",  # the receiver is local (R50)
            "CONNECTS_DB_POOL_SIZE": "8",
            **self.extra_env,
        }

    @property
    def bases(self) -> list[str]:
        return [f"http://127.0.0.1:{p}" for p in self.ports]

    def start(self) -> None:
        env = self.env()
        self.logs.mkdir(parents=True, exist_ok=True)
        for i in range(self.api_count):
            port = free_port()
            self.ports.append(port)
            args = ["serve", "--port", str(port), "--workers", str(self.uvicorn_workers)]
            args += ["--every", "0"]
            api = Proc(f"api{i}", args, env, self.logs / f"api{i}.log", signal.SIGINT)
            self.apis.append(api)
        for i in range(self.worker_count):
            args = ["worker", "--interval", "0.2", "--lease-seconds", "30"]
            self.workers.append(Proc(f"worker{i}", args, env, self.logs / f"worker{i}.log"))
        for p in self.apis + self.workers:
            p.start()
        for i in range(self.api_count):
            self.wait_healthy(i)

    def wait_healthy(self, i: int, timeout: float = 60) -> None:
        proc, base = self.apis[i], self.bases[i]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not proc.alive():
                raise AssertionError(f"{proc.name} exited:\n{self.tail(proc)}")
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{proc.name} never answered /healthz:\n{self.tail(proc)}")

    def tail(self, proc: Proc, lines: int = 40) -> str:
        return "\n".join(proc.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> dict[str, int | None]:
        return {p.name: p.stop() for p in self.apis + self.workers}


@dataclass
class Faults:
    """Injects faults at random moments until stopped; counts what it did.

    Two threads: one SIGKILLs an API process or a worker and restarts it (every
    ``kill_every`` seconds), the other terminates the cluster's database backends
    (every ``drop_every`` seconds): mostly ones inside a statement or a transaction,
    sometimes every connection, idle ones in the pools included.
    """

    cluster: Cluster
    rng: random.Random
    kill_every: tuple[float, float] = (0.5, 2.0)
    drop_every: tuple[float, float] = (0.3, 1.2)
    done: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        for target in (self._kills, self._drops):
            t = threading.Thread(target=target, name=target.__name__, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(90)
        # Whatever is down comes back up for the drain.
        for i, p in enumerate(self.cluster.apis):
            if not p.alive():
                self._restart_api(i)
        for p in self.cluster.workers:
            if not p.alive():
                p.start()

    def _count(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self.done[kind] += n

    def _kills(self) -> None:
        c = self.cluster
        while not self._stop.wait(self.rng.uniform(*self.kill_every)):
            try:
                if self.rng.random() < 0.5:
                    i = self.rng.randrange(len(c.apis))
                    c.apis[i].kill()
                    self._count("kill_api")
                    self._restart_api(i)
                else:
                    w = self.rng.choice(c.workers)
                    w.kill()
                    self._count("kill_worker")
                    w.start()
            except Exception as exc:  # a fault that could not be injected is reported
                self.errors.append(f"kill: {exc!r}")

    def _restart_api(self, i: int) -> None:
        """Start it again, as a supervisor would: a start can itself fail when its
        database connection is dropped while it migrates or warms up."""
        for attempt in range(5):
            self.cluster.apis[i].start()
            try:
                self.cluster.wait_healthy(i)
                return
            except AssertionError:
                if attempt == 4:
                    raise
                self._count("api_start_failed")
                if self.cluster.apis[i].alive():
                    self.cluster.apis[i].kill()

    def _drops(self) -> None:
        engine = create_engine(self.cluster.url, isolation_level="AUTOCOMMIT", pool_size=1)
        try:
            while not self._stop.wait(self.rng.uniform(*self.drop_every)):
                try:
                    self._drop(engine, everything=self.rng.random() < 0.15)
                except Exception as exc:
                    self.errors.append(f"drop: {exc!r}")
        finally:
            engine.dispose()

    def _drop(self, engine: Engine, *, everything: bool) -> None:
        states = "'active', 'idle in transaction'" + (", 'idle'" if everything else "")
        query = text(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            f"WHERE application_name = :a AND pid <> pg_backend_pid() AND state IN ({states})"
        )
        # Poll briefly for a backend that is mid-statement or mid-transaction.
        for _ in range(100):
            with engine.connect() as conn:
                killed = int(conn.execute(query, {"a": self.cluster.app_name}).scalar_one())
            if killed:
                self._count("drop_db_all" if everything else "drop_db_mid_tx")
                self._count("db_connections_dropped", killed)
                return
            time.sleep(0.005)
