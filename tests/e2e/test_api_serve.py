"""``connects serve`` really starts: a subprocess on a free port answers /healthz."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import PG_URL


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(env: dict[str, str], *args: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "connects"), "serve", "--port", str(port), *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    return proc, f"http://127.0.0.1:{port}"


def wait_healthy(proc: subprocess.Popen[bytes], base: str, timeout: float = 60) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            pytest.fail(f"connects serve exited with {proc.returncode}:\n{out}")
        try:
            r = httpx.get(f"{base}/healthz", timeout=2)
            if r.status_code == 200:
                return r
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    pytest.fail("connects serve did not answer /healthz in time")


def stop(proc: subprocess.Popen[bytes]) -> str:
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out.decode()


def test_serve_starts_answers_and_stops(tmp_path: Path) -> None:
    env = {
        "CONNECTS_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "CONNECTS_CLOCK": "simulated",
        "CONNECTS_OPERATOR_TOKEN": "op-serve-token",
    }
    proc, base = serve(env, "--every", "0.5")
    try:
        health = wait_healthy(proc, base)
        assert health.json() == {"status": "ok", "database": "ok", "clock": "simulated"}
        user = httpx.post(f"{base}/v1/users", json={"name": "Sam", "email": "sam@x.io"}).json()
        h = {"Authorization": f"Bearer {user['token']}"}
        acct = httpx.post(
            f"{base}/v1/accounts", json={"kind": "freelancer", "name": "S"}, headers=h
        )
        assert acct.status_code == 201 and acct.json()["balance"] == 10
        op = {"Authorization": "Bearer op-serve-token"}
        moved = httpx.post(f"{base}/v1/admin/clock", json={"advance": "P32D"}, headers=op)
        assert moved.status_code == 200 and moved.json()["ran"]["cycles"] == 1  # R33
        assert httpx.get(f"{base}/openapi.json").status_code == 200
    finally:
        out = stop(proc)
    assert proc.returncode == 0, out
    assert "Application shutdown complete" in out


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="needs CONNECTS_TEST_DATABASE_URL")
def test_serve_with_two_workers_on_postgresql(pg_url: str) -> None:
    """Two uvicorn workers share everything through PostgreSQL (idempotency keys, clock)."""
    env = {
        "CONNECTS_DATABASE_URL": pg_url,
        "CONNECTS_CLOCK": "simulated",
        "CONNECTS_OPERATOR_TOKEN": "op-serve-token",
    }
    proc, base = serve(env, "--workers", "2", "--every", "1")
    try:
        wait_healthy(proc, base)
        token = httpx.post(f"{base}/v1/users", json={"name": "Ann", "email": "ann@x.io"})
        auth = {"Authorization": f"Bearer {token.json()['token']}"}
        body = {"title": "Shared", "connects_required": 1}
        key = {"Idempotency-Key": "ann-job", **auth}
        answers = set()
        for _ in range(6):  # new connections: both workers answer some of them
            with httpx.Client() as c:
                answers.add(c.post(f"{base}/v1/jobs", json=body, headers=key).content)
        assert len(answers) == 1  # R31 across processes
        op = {"Authorization": "Bearer op-serve-token"}
        nows = set()
        httpx.post(f"{base}/v1/admin/clock", json={"advance": "P1D"}, headers=op)
        for _ in range(6):
            with httpx.Client() as c:
                r = c.post(f"{base}/v1/admin/clock", json={"advance": "PT0S"}, headers=op)
                nows.add(r.json()["now"])
        assert len(nows) == 1  # one simulated clock for every worker (R33)
        # /metrics adds up every worker's counters (prometheus multi-process mode).
        for _ in range(20):
            with httpx.Client() as c:
                assert c.get(f"{base}/v1/jobs/job_none", headers=op).status_code in (403, 404)
        text = httpx.get(f"{base}/metrics").text
        counted = sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("connects_http_requests_total{")
            and 'route="/v1/jobs/{job_id}"' in line
        )
        assert counted == 20
    finally:
        stop(proc)


def _sign_ups(base: str, forwarded: list[str]) -> list[int]:
    return [
        httpx.post(
            f"{base}/v1/users",
            json={"name": "F", "email": f"f{i}@xff.io"},
            headers={"X-Forwarded-For": address},
        ).status_code
        for i, address in enumerate(forwarded)
    ]


def test_forwarded_for_counts_only_from_trusted_proxies(tmp_path: Path) -> None:
    # R32: a client picks no address of its own for the rate limits to count under
    spoofed = ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
    env = {
        "CONNECTS_DATABASE_URL": f"sqlite:///{tmp_path / 'xff.db'}",
        "CONNECTS_SIGNUP_LIMIT_PER_IP": "2",
    }
    proc, base = serve(env, "--every", "0")
    try:
        wait_healthy(proc, base)
        assert _sign_ups(base, spoofed) == [201, 201, 429]  # all from 127.0.0.1
    finally:
        stop(proc)
    env["CONNECTS_DATABASE_URL"] = f"sqlite:///{tmp_path / 'xff-proxy.db'}"
    env["CONNECTS_TRUSTED_PROXIES"] = "127.0.0.1/32,::1"
    proc, base = serve(env, "--every", "0")
    try:
        wait_healthy(proc, base)
        assert _sign_ups(base, spoofed) == [201, 201, 201]  # behind a trusted proxy
        assert _sign_ups(base, ["203.0.113.1"] * 2)[-1] == 429  # its third attempt
    finally:
        stop(proc)
