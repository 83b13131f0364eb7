"""A real ``connects serve`` logs JSON lines (uvicorn's own too) and never a secret.

The process is used the way a client would: sign up (a bearer token), a wrong token, the
operator token, a one-time sign-in link (its token is in the URL the access log
records), a webhook channel with a signing secret whose deliveries fail, a Telegram
channel (bot token in its URL). Everything the process printed is then searched.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.e2e.hostile import TELEGRAM_BOT_TOKEN, WEBHOOK_SECRET
from tests.e2e.test_api_serve import free_port, serve, stop, wait_healthy

OPERATOR = "op-log-token-0123456789abcdef"


def test_serve_logs_json_lines_without_secrets(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'logs.db'}"
    env = {
        "CONNECTS_DATABASE_URL": db,
        "CONNECTS_CLOCK": "simulated",
        "CONNECTS_OPERATOR_TOKEN": OPERATOR,
        "CONNECTS_ALLOW_PRIVATE_WEBHOOKS": "1",  # its failing receiver is local (R50)
    }
    proc, base = serve(env, "--every", "0.2")
    secrets: dict[str, str] = {"operator": OPERATOR, "webhook": WEBHOOK_SECRET}
    secrets["bot"] = TELEGRAM_BOT_TOKEN.split(":", 1)[1]
    try:
        wait_healthy(proc, base)
        with httpx.Client(base_url=base, timeout=10) as c:
            user = c.post("/v1/users", json={"name": "Lou", "email": "lou@logs.io"}).json()
            secrets["user"] = user["token"]
            h = {"Authorization": f"Bearer {user['token']}"}
            assert c.get("/v1/me", headers=h).status_code == 200
            bad = {"Authorization": f"Bearer {user['token']}x"}
            assert c.get("/v1/me", headers=bad).status_code == 401
            acct = c.post(
                "/v1/accounts",
                json={"kind": "agency", "name": "L", "plan": "agency-plus"},
                headers=h,
            ).json()
            a = f"/v1/accounts/{acct['id']}"
            hook = {
                "kind": "webhook",
                "target": f"http://127.0.0.1:{free_port()}/hook",
                "secret": WEBHOOK_SECRET,
            }
            assert c.post(f"{a}/channels", json=hook, headers=h).status_code == 201
            tg = {
                "kind": "telegram",
                "target": f"{TELEGRAM_BOT_TOKEN}/42",
                "events": ["connects_expiring"],  # never sent here: no call to the internet
            }
            assert c.post(f"{a}/channels", json=tg, headers=h).status_code == 201
            op = {"Authorization": f"Bearer {OPERATOR}"}
            c.post(f"/v1/admin{a[3:]}/earnings", json={"amount": 1000}, headers=op)
            buy = c.post(f"{a}/purchases", json={"quantity": 5, "pay_with": "earnings"}, headers=h)
            assert buy.status_code == 201, buy.text  # connects_purchased: a failing webhook
            link = subprocess.run(
                [str(Path(sys.executable).parent / "connects"), "login-link", "lou@logs.io"],
                env={**env, "PATH": str(Path(sys.executable).parent)},
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            secrets["link"] = link.rsplit("/", 1)[1]
            path = "/login/" + secrets["link"]
            assert c.get(path, follow_redirects=False).status_code == 303
            assert c.get(path, follow_redirects=False).status_code == 400  # used already
            notes = f"{a}/notifications"
            deadline = time.monotonic() + 4
            while time.monotonic() < deadline:  # the background work tries the webhook
                items = c.get(notes, headers=h).json()["items"]
                if any(i.get("attempts") for i in items):
                    break
                time.sleep(0.2)
    finally:
        out = stop(proc)
    for name, secret in secrets.items():
        assert secret not in out, f"the {name} secret is in the output of connects serve"
    docs = []
    for line in out.splitlines():
        if line.startswith("{"):
            doc = json.loads(line)
            assert {"time", "level", "logger", "message"} <= set(doc), line
            docs.append(doc)
    loggers = {d["logger"] for d in docs}
    assert {"uvicorn.error", "uvicorn.access"} <= loggers, loggers
    access = [d for d in docs if d["logger"] == "uvicorn.access"]
    assert any(d.get("path") == "/login/***" for d in access), access[-5:]
    assert all(isinstance(d.get("status"), int) for d in access)
    # Nothing but JSON on standard error: uvicorn's plain-text format is gone.
    assert not any(line.startswith(("INFO:", "WARNING:", "ERROR:")) for line in out.splitlines())
