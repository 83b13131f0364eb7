"""``connects serve`` and ``connects worker`` wait for the database at start-up.

Real processes: against a port where nothing listens they retry (one JSON log line
each, the password hidden) and exit 3 with a plain message once ``--wait`` runs out;
when the database appears during the wait (a SQLite file's directory is created, a
PostgreSQL database is created), ``serve`` migrates it and answers /healthz.
"""

from __future__ import annotations

import json
import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from connects.cli import EXIT_NO_DATABASE
from tests.conftest import PG_SKIP_REASON, PG_URL
from tests.e2e.test_api_serve import free_port

CONNECTS = str(Path(sys.executable).parent / "connects")
PASSWORD = "pw-never-logged-0123"


def _json_lines(text_: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text_.splitlines() if line.startswith("{")]


def _retries(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["message"] == "database unreachable: retrying"]


@pytest.mark.parametrize("command", [["worker", "--once"], ["serve", "--port", "0"]])
def test_no_database_is_a_clean_exit_3(command: list[str]) -> None:
    url = f"postgresql+psycopg://connects:{PASSWORD}@127.0.0.1:{free_port()}/nowhere"
    started = time.monotonic()
    done = subprocess.run(
        [CONNECTS, *command, "--wait", "1.5"],
        env={**os.environ, "CONNECTS_DATABASE_URL": url, "CONNECTS_DB_STARTUP_TIMEOUT": "60"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    took = time.monotonic() - started
    assert done.returncode == EXIT_NO_DATABASE == 3, (done.stdout, done.stderr)
    assert took < 20, took  # --wait wins over CONNECTS_DB_STARTUP_TIMEOUT
    assert "Traceback" not in done.stderr and PASSWORD not in done.stderr + done.stdout
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("connects: the database at postgresql+psycopg://connects:***@"), last
    assert "did not answer within 1.5 s" in last and "Connection refused" in last, last
    docs = _json_lines(done.stderr)
    retries = _retries(docs)
    assert len(retries) >= 2, done.stderr
    assert [d["attempt"] for d in retries] == list(range(1, len(retries) + 1))
    for d in retries:
        assert d["logger"] == "connects.db" and d["level"] == "warning"
        assert 0 < d["retry_in_seconds"] <= 1.5 and d["timeout_seconds"] == 1.5
        assert ":***@127.0.0.1" in d["database"]
    delays = [d["retry_in_seconds"] for d in retries[:2]]
    assert delays[1] > delays[0]  # the pause grows
    assert docs[-1]["message"] == "database unreachable: giving up"
    assert docs[-1]["level"] == "error" and docs[-1]["attempts"] == len(retries) + 1


class Serving:
    """``connects serve`` in the background, every output line kept and queued."""

    def __init__(self, env: dict[str, str], wait: float) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [CONNECTS, "serve", "--port", str(self.port), "--every", "0", "--wait", str(wait)],
            env={**os.environ, **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for_line(self, needle: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            self.seen.append(line)
            if needle in line:
                return line
        pytest.fail(f"no {needle!r} from connects serve:\n{''.join(self.seen)}")

    def healthz(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"serve exited {self.proc.returncode}: {self.out()}"
            try:
                r = httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=2)
                if r.status_code == 200:
                    return dict(r.json())
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        pytest.fail(f"connects serve did not answer /healthz:\n{self.out()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def out(self) -> str:
        while not self.lines.empty():
            self.seen.append(self.lines.get())
        return "".join(self.seen)


@pytest.fixture
def pg_database() -> Iterator[tuple[str, Any]]:
    """The URL of a PostgreSQL database that does not exist yet, and a way to create it."""
    if not PG_URL:
        pytest.skip(PG_SKIP_REASON)
    name = f"t_wait_{secrets.token_hex(4)}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")

    def create() -> None:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))

    try:
        yield make_url(PG_URL).set(database=name).render_as_string(hide_password=False), create
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.mark.parametrize("db", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_serve_starts_once_the_database_appears(
    db: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if db == "sqlite":
        later = tmp_path / "mounted-later"
        url = f"sqlite:///{later / 'connects.db'}"

        def appear() -> None:
            later.mkdir()

    else:
        url, appear = request.getfixturevalue("pg_database")
    serving = Serving({"CONNECTS_DATABASE_URL": url, "CONNECTS_CLOCK": "simulated"}, wait=30)
    try:
        serving.wait_for_line("database unreachable: retrying", timeout=30)
        appear()
        reachable = serving.wait_for_line('"database reachable"', timeout=15)
        assert json.loads(reachable)["attempts"] >= 2
        assert serving.healthz(timeout=30)["database"] == "ok"  # migrated, then served
    finally:
        serving.stop()
    out = serving.out()
    assert serving.proc.returncode == 0, out
    assert "Traceback" not in out
