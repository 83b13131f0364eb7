"""``connects serve`` and the links it prints (issue 24): ``CONNECTS_BASE_URL``, else the
address it listens on, for every link (``connects login-link`` in another shell names
the right port); a taken port fails first, in one line, with nothing written; the demo
owner's token survives restarts.

``serve`` runs in this process with uvicorn replaced (``supervisor.run``): what it does
before listening is what these tests are about.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from connects import supervisor
from connects.bootstrap import build
from connects.cli import EXIT_NO_PORT, app
from connects.config import Settings
from connects.db.schema import runtime as runtime_table
from connects.demo import DEMO_OWNER_EMAIL
from connects.domain.commands import CreateUser
from connects.services import runtime
from connects.services.accounts import rotate_token, user_by_token
from connects.services.context import Context

runner = CliRunner()


@pytest.fixture
def url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A database with a demo owner (the demo's story itself is not needed here)."""
    db = f"sqlite:///{tmp_path / 'serve.db'}"
    # serve exports these for its workers: put back whatever was there after the test
    monkeypatch.setenv("CONNECTS_DATABASE_URL", db)
    monkeypatch.setenv("CONNECTS_BACKGROUND_INTERVAL_SECONDS", "0")
    for name in ("CONNECTS_BASE_URL", "CONNECTS_PLANS_FILE"):  # --demo exports the plans
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    monkeypatch.setattr("connects.logs.configure", lambda level="info": None)
    return db


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """What uvicorn would have been asked to listen on."""
    calls: list[tuple[str, int]] = []
    monkeypatch.setattr(supervisor, "run", lambda host, port, *_: calls.append((host, port)))
    return calls


def _ctx(url: str) -> Context:
    return build(Settings(database_url=url), migrate=True)


@pytest.fixture
def demo_owner(url: str) -> Iterator[str]:
    ctx = _ctx(url)
    made = ctx.handle(CreateUser("Olga Owner", DEMO_OWNER_EMAIL))
    runtime.remember_demo_token(ctx, made["token"])
    ctx.db.dispose()
    yield str(made["token"])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(url: str, port: int, *extra: str) -> object:
    args = ["serve", "--demo", "--port", str(port), "--every", "0", "--database-url", url]
    return runner.invoke(app, [*args, *extra], catch_exceptions=False)


def token_of(output: str) -> str:
    line = next(line for line in output.splitlines() if "token:" in line)
    return line.rsplit("token:", 1)[1].strip()


def test_the_demo_token_survives_restarts(url: str, demo_owner: str, served: list[object]) -> None:
    first = serve(url, free_port())
    second = serve(url, free_port())
    assert first.exit_code == 0 and second.exit_code == 0, first.output  # type: ignore[attr-defined]
    assert token_of(first.output) == token_of(second.output) == demo_owner  # type: ignore[attr-defined]
    assert len(served) == 2


def test_a_token_renewed_elsewhere_is_replaced_by_a_working_one(
    url: str, demo_owner: str, served: list[object]
) -> None:
    ctx = _ctx(url)
    with ctx.db.read() as conn:
        owner = user_by_token(conn, demo_owner).id
    rotate_token(ctx, owner)  # the kept token no longer works
    printed = token_of(serve(url, free_port()).output)  # type: ignore[attr-defined]
    with ctx.db.read() as conn:
        assert printed != demo_owner and user_by_token(conn, printed).id == owner
    assert token_of(serve(url, free_port()).output) == printed  # type: ignore[attr-defined]
    ctx.db.dispose()


def test_a_busy_port_fails_first_in_one_line_with_nothing_written(
    url: str, demo_owner: str, served: list[object], tmp_path: Path
) -> None:
    with socket.socket() as other:  # another server holds the port
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        result = serve(url, port)
        fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
        on_fresh = serve(fresh, port)
    assert result.exit_code == EXIT_NO_PORT  # type: ignore[attr-defined]
    lines = result.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert lines == [
        f"connects: port {port} on 127.0.0.1 is already in use (another "
        "connects serve?); choose another with --port"
    ]
    assert "token" not in result.stdout and served == []  # type: ignore[attr-defined]
    ctx = _ctx(url)
    with ctx.db.read() as conn:  # the running server's token still works
        assert user_by_token(conn, demo_owner) is not None
        assert conn.execute(select(runtime_table.c.key)).scalars().all() == ["demo_token"]
    ctx.db.dispose()
    assert on_fresh.exit_code == EXIT_NO_PORT  # type: ignore[attr-defined]
    assert not (tmp_path / "fresh.db").exists()  # not even the schema


def login_link(url: str, *extra: str) -> str:
    result = runner.invoke(
        app, ["login-link", DEMO_OWNER_EMAIL, "--database-url", url, *extra], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return str(result.stdout.strip())


def test_login_link_names_the_port_serve_listens_on(
    url: str, demo_owner: str, served: list[object]
) -> None:
    port = free_port()
    result = serve(url, port)
    assert f"serving on http://127.0.0.1:{port} " in result.output  # type: ignore[attr-defined]
    assert login_link(url).startswith(f"http://127.0.0.1:{port}/login/")
    assert login_link(url, "--base-url", "http://x.test/").startswith("http://x.test/login/")


def test_connects_base_url_is_used_for_every_link(
    url: str, demo_owner: str, served: list[object], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONNECTS_BASE_URL", "https://connects.example.com/")
    result = serve(url, free_port())
    assert "serving on https://connects.example.com " in result.output  # type: ignore[attr-defined]
    assert login_link(url).startswith("https://connects.example.com/login/")
    monkeypatch.delenv("CONNECTS_BASE_URL")
    # recorded by serve for the shells that do not have the variable
    assert login_link(url).startswith("https://connects.example.com/login/")


def test_a_server_listening_everywhere_is_linked_on_loopback() -> None:
    assert runtime.listen_url("0.0.0.0", 8001) == "http://127.0.0.1:8001"
    assert runtime.listen_url("::", 8001) == "http://[::1]:8001"
    assert runtime.listen_url("10.1.2.3", 80) == "http://10.1.2.3:80"
    assert runtime.listen_url("localhost", 8000) == "http://localhost:8000"


def test_login_link_without_any_server_yet_uses_the_default(url: str, demo_owner: str) -> None:
    assert login_link(url).startswith(f"{runtime.DEFAULT_BASE_URL}/login/")


def test_serve_demo_serves_the_demo_plans_unless_the_operator_names_some(
    url: str, demo_owner: str, served: list[object], tmp_path: Path
) -> None:
    """The demo's catalog (interview rewards) reaches every worker; an operator's wins."""
    import os

    from connects.demo import DEMO_PLANS_FILE

    assert serve(url, free_port()).exit_code == 0  # type: ignore[attr-defined]
    assert os.environ["CONNECTS_PLANS_FILE"] == str(DEMO_PLANS_FILE)
    assert Settings().catalog().get("agency-plus").interview_reward > 0
    own = tmp_path / "plans.toml"
    own.write_text('[plans.solo]\nkind = "freelancer"\n')
    os.environ["CONNECTS_PLANS_FILE"] = str(own)
    assert serve(url, free_port()).exit_code == 0  # type: ignore[attr-defined]
    assert os.environ["CONNECTS_PLANS_FILE"] == str(own)
