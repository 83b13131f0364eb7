"""The long-running commands: ``serve`` (API, dashboard and background work),
``worker``, and ``login-link`` for the server they run."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from typing import Annotated

import typer

from connects import logs
from connects.bootstrap import build
from connects.cli.common import (
    EXIT_NO_PORT,
    DbUrl,
    Wait,
    app,
    console,
    fail,
    settings_for,
    wait_for_database,
)
from connects.cli.demo import play_demo
from connects.domain.errors import ConnectsError


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
    load_demo: Annotated[
        bool,
        typer.Option(
            "--demo",
            help="Load the demo data first (once), serve it with the demo's plans "
            "(interview rewards) and print a token.",
        ),
    ] = False,
    workers: Annotated[int, typer.Option(min=1, max=64, help="uvicorn worker processes.")] = 1,
    every: Annotated[
        float,
        typer.Option(min=0, help="Seconds between runs of the background work (0: none)."),
    ] = 5.0,
    database_url: DbUrl = None,
    wait: Wait = None,
) -> None:
    """Serve the API and run the background work (cycles, expiry, pending purchases).

    Links it prints point at CONNECTS_BASE_URL, else at the address it listens on."""
    import os

    from connects import supervisor
    from connects.db.migrate import upgrade
    from connects.demo import DEMO_OWNER_EMAIL, demo_exists, demo_settings
    from connects.services import runtime

    settings = settings_for(database_url)
    if load_demo:
        settings = demo_settings(settings)
    try:  # first: a taken port fails before anything is written
        supervisor.check_port(host, port)
    except supervisor.PortUnavailable as exc:
        sys.stderr.write(f"connects: {exc}\n")
        raise typer.Exit(EXIT_NO_PORT) from None
    logs.configure(settings.log_level)  # JSON lines from the start (uvicorn's config too)
    wait_for_database(settings, wait)
    upgrade(settings.database_url)
    base = runtime.serving_base_url(settings, host, port)
    if load_demo and not demo_exists(settings, DEMO_OWNER_EMAIL):
        token = play_demo(settings, 3, 7)
    else:
        token = None
    ctx = build(settings)
    runtime.record_base_url(ctx, base)  # connects login-link names this server
    if load_demo:
        if token is None:
            token = runtime.demo_token(ctx, DEMO_OWNER_EMAIL)
            console.print("demo data is already there")
        console.print(
            f"demo owner: [bold]{DEMO_OWNER_EMAIL}[/bold]  token: {token}", soft_wrap=True
        )
    ctx.db.dispose()
    # Every worker builds its own app from the environment (uvicorn --factory); the
    # state they share (idempotency keys, the simulated clock) is in the database.
    os.environ["CONNECTS_DATABASE_URL"] = settings.database_url
    os.environ["CONNECTS_BACKGROUND_INTERVAL_SECONDS"] = str(every)
    os.environ["CONNECTS_BASE_URL"] = base
    if settings.plans_file is not None:  # the demo's catalog reaches every worker
        os.environ["CONNECTS_PLANS_FILE"] = str(settings.plans_file)
    console.print(f"serving on {base} (docs at {base}/docs)", soft_wrap=True)
    if workers == 1:
        supervisor.run(host, port, workers, settings.log_level)  # the app runs in this process
        return
    # The parent only watches the workers: it becomes a small process that imports
    # uvicorn alone, not this CLI with SQLAlchemy, Alembic and the app.
    sys.stdout.flush()
    sys.stderr.flush()
    args = [host, str(port), str(workers), settings.log_level]
    os.execv(sys.executable, [sys.executable, "-m", "connects.supervisor", *args])


@app.command()
def worker(
    interval: Annotated[
        float, typer.Option(min=0, help="Seconds to wait between runs when idle.")
    ] = 2.0,
    once: Annotated[bool, typer.Option("--once", help="Run the due work once and exit.")] = False,
    lease_seconds: Annotated[
        float, typer.Option(min=1, help="How long a claimed notification is held.")
    ] = 60.0,
    database_url: DbUrl = None,
    wait: Wait = None,
) -> None:
    """Run the background work: cycles, expiry, pending purchases and top-ups, the
    expiring digest, and notification delivery. Run as many as you like on PostgreSQL."""
    import signal
    import threading

    from connects.notify.claims import DeliveryPolicy
    from connects.notify.crypto import check_key
    from connects.worker import Worker

    settings = settings_for(database_url)
    logs.configure(settings.log_level)  # JSON lines, secrets scrubbed
    check_key(settings.secret_key, production=settings.mode == "production")
    wait_for_database(settings, wait)
    ctx = build(settings)
    runner = Worker(ctx, policy=DeliveryPolicy(lease=timedelta(seconds=lease_seconds)))
    if once:
        sys.stdout.write(json.dumps(runner.run_once()) + "\n")
        return
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    sys.stdout.write(f"worker {runner.name} started\n")
    sys.stdout.flush()
    runner.run_forever(stop, interval)
    ctx.db.dispose()


@app.command("login-link")
def login_link(
    email: Annotated[str, typer.Argument(help="The person's e-mail address.")],
    base_url: Annotated[
        str | None,
        typer.Option(
            help="Where the dashboard is served (default: CONNECTS_BASE_URL, else the "
            "address the last `connects serve` on this database listens on)."
        ),
    ] = None,
    database_url: DbUrl = None,
) -> None:
    """Print a one-time dashboard sign-in link (valid 15 minutes, works once)."""
    from connects.services.runtime import base_url as served_at
    from connects.web.auth import create_login_link

    settings = settings_for(database_url)
    ctx = build(settings)
    try:
        link = create_login_link(ctx, email, base_url or served_at(ctx, settings))
        sys.stdout.write(link + "\n")
    except ConnectsError as exc:
        fail(exc)
    finally:
        ctx.db.dispose()
