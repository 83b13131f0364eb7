"""The ``connects`` command line (Typer + Rich)."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from connects import cli_tables as tables
from connects import logs
from connects.bootstrap import build
from connects.config import Settings
from connects.domain.clock import SimulatedClock
from connects.domain.errors import ConnectsError
from connects.domain.policy import OPERATOR
from connects.services.views import CSV_FIELDS, entries_csv

__all__ = ["CSV_FIELDS", "app", "entries_csv", "main"]

app = typer.Typer(help="connects: the Connects (bid-credit) engine.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
console = Console()
err = Console(stderr=True)

DbUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="CONNECTS_DATABASE_URL",
        help="SQLAlchemy URL (default: a SQLite file in this folder).",
    ),
]


# ``connects serve`` and ``connects worker`` exit with this when the database never
# answered at start-up (see ``--wait``); ``connects serve`` with 4 when its port is taken.
EXIT_NO_DATABASE = 3
EXIT_NO_PORT = 4

Wait = Annotated[
    float | None,
    typer.Option(
        "--wait",
        min=0,
        metavar="SECONDS",
        help="How long to wait at start-up for a database that does not answer yet "
        "before exiting 3 (default: CONNECTS_DB_STARTUP_TIMEOUT, 30; 0: try once).",
    ),
]


def _settings(database_url: str | None) -> Settings:
    return Settings(database_url=database_url) if database_url else Settings()


def _wait_for_database(settings: Settings, wait: float | None) -> None:
    """Start-up of ``serve`` and ``worker``, before the engine is first used: wait for a
    database that is (re)starting, logging each retry; exit 3 if it never answers."""
    from connects.db.wait import DatabaseUnavailable, wait_for_database

    timeout = settings.db_startup_timeout if wait is None else wait
    try:
        wait_for_database(settings.database_url, timeout)
    except DatabaseUnavailable as exc:
        sys.stderr.write(f"connects: {exc}\n")
        raise typer.Exit(EXIT_NO_DATABASE) from None


def _fail(exc: ConnectsError) -> None:
    err.print(f"[red]{exc.code}[/red]: {exc.message}")
    raise typer.Exit(2)


@db_app.command("upgrade")
def db_upgrade(database_url: DbUrl = None) -> None:
    """Create or migrate the schema to the latest revision."""
    from connects.db.migrate import upgrade

    settings = _settings(database_url)
    upgrade(settings.database_url)
    console.print(f"database at [bold]{_safe(settings.database_url)}[/bold] is up to date")


def _safe(url: str) -> str:
    """A database URL with any password hidden."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url


@app.command()
def demo(
    database_url: DbUrl = None,
    months: Annotated[int, typer.Option(min=1, max=24, help="Months of history to play.")] = 3,
    seed: Annotated[int, typer.Option(help="Random seed of the story.")] = 7,
    reset: Annotated[
        bool, typer.Option("--reset", help="Erase this database first and play it anew.")
    ] = False,
) -> None:
    """Create a demo agency, members, a freelancer and a client, then play months of
    activity on the simulated clock up to now."""
    from connects.demo import DEMO_OWNER_EMAIL, demo_exists

    settings = _settings(database_url)
    if reset:
        _erase_for_demo(settings)
    if demo_exists(settings, DEMO_OWNER_EMAIL):
        console.print("demo data is already there; nothing to do")
        return
    token = _play_demo(settings, months, seed)
    console.print(f"demo owner: [bold]{DEMO_OWNER_EMAIL}[/bold]  token: {token}", soft_wrap=True)


def _play_demo(settings: Settings, months: int, seed: int) -> str:
    """Play the demo story into the database; the demo owner's token."""
    from connects.demo import opening, play
    from connects.services.runtime import remember_demo_token
    from connects.services.views import all_accounts

    end = datetime.now(UTC)
    clock = SimulatedClock(opening(end, months))
    ctx = build(settings, clock=clock, migrate=True)
    with Progress(
        TextColumn("[bold]playing the demo[/bold] {task.description}"),
        BarColumn(),
        TextColumn("day {task.completed:.0f}/{task.total:.0f}"),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("", total=months * 30)

        def tick(day: int, total: int) -> None:
            progress.update(task, completed=day, description=clock.now().date().isoformat())

        cast = play(ctx, clock, months, seed=seed, until=end, on_day=tick)
    tables.print_accounts(all_accounts(ctx))
    remember_demo_token(ctx, cast.owner["token"])  # printed again on every restart
    ctx.db.dispose()
    return cast.owner["token"]


def _erase_for_demo(settings: Settings) -> None:
    """``demo --reset``: drop every table of the database, never in production mode."""
    from connects.demo import erase

    if settings.mode == "production":
        err.print("[red]refused[/red]: demo --reset never erases a production database")
        raise typer.Exit(2)
    erase(settings.database_url)
    console.print("erased the database; playing the demo anew")


@app.command()
def accounts(
    database_url: DbUrl = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """List every account with its owner, plan and available Connects."""
    from connects.services.views import all_accounts

    rows = all_accounts(build(_settings(database_url)))
    if as_json:
        tables.print_json(rows)
    else:
        tables.print_accounts(rows)


@app.command()
def history(
    account_id: Annotated[str, typer.Argument(help="The account id.")],
    database_url: DbUrl = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV on standard output.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="JSON on standard output.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    kind: Annotated[str | None, typer.Option(help="Only entries of this kind.")] = None,
    member: Annotated[
        str | None, typer.Option(help="Only entries of this member (e-mail or id).")
    ] = None,
) -> None:
    """An account's ledger, newest first, with the names of who did what."""
    from connects.services import views

    ctx = build(_settings(database_url))
    try:
        member_id = None if member is None else views.person_id(ctx, member)
        items = views.history(
            ctx, OPERATOR, account_id, limit=limit, kind=kind, member_id=member_id
        )["items"]
    except ConnectsError as exc:
        _fail(exc)
        return
    if as_csv:
        sys.stdout.write(entries_csv(items))
        return
    ids = [e["member_id"] for e in items] + [e["actor"].partition(":")[2] for e in items]
    rows = tables.history_rows(items, views.names(ctx, ids))
    if as_json:
        tables.print_json(rows)
    else:
        tables.print_history(rows)


def _when(value: str | None, name: str) -> datetime | None:
    try:
        return None if value is None else datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=name) from None


@app.command()
def results(
    account_id: Annotated[str, typer.Argument(help="The account id.")],
    database_url: DbUrl = None,
    since: Annotated[str | None, typer.Option("--from", help="Sent at or after (date).")] = None,
    until: Annotated[str | None, typer.Option("--to", help="Sent before (date).")] = None,
    group_by: Annotated[str, typer.Option(help="member, boost or month.")] = "member",
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV on standard output.")] = False,
) -> None:
    """What the Connects bought (R39): proposals sent, spent, views, interviews, hires."""
    from connects.services import views
    from connects.services.views import results as results_view

    ctx = build(_settings(database_url))
    try:
        answer = results_view.account_results(
            ctx,
            OPERATOR,
            account_id,
            since=_when(since, "--from"),
            until=_when(until, "--to"),
            group_by=group_by,
        )
    except ConnectsError as exc:
        _fail(exc)
        return
    if as_csv:
        sys.stdout.write(results_view.results_csv(answer))
        return
    names = views.names(ctx, [g["key"] for g in answer["groups"]]) if group_by == "member" else {}
    tables.print_results(answer, names)


@app.command()
def verify(database_url: DbUrl = None) -> None:
    """Check every account's invariants (R30); exit 1 naming any account that breaks one."""
    from connects.services.verify import verify as check

    breaches = check(build(_settings(database_url)))
    if breaches:
        for b in breaches:
            err.print(f"[red]broken[/red] {b}")
        raise typer.Exit(1)
    console.print("every account's ledger holds: balance = entries = lots")


@app.command("run-due")
def run_due(database_url: DbUrl = None) -> None:
    """Run what has fallen due once, as the worker does: cycle grants, expiry, pending
    purchases and top-ups, the expiring digest, notification delivery."""
    from connects.services.due import run_due as run

    ctx = build(_settings(database_url))
    done = run(ctx)
    console.print("; ".join(f"{name}: {count}" for name, count in done.items()))


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8000,
    load_demo: Annotated[
        bool, typer.Option("--demo", help="Load the demo data first (once) and print a token.")
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
    from connects.demo import DEMO_OWNER_EMAIL, demo_exists
    from connects.services import runtime

    settings = _settings(database_url)
    try:  # first: a taken port fails before anything is written
        supervisor.check_port(host, port)
    except supervisor.PortUnavailable as exc:
        sys.stderr.write(f"connects: {exc}\n")
        raise typer.Exit(EXIT_NO_PORT) from None
    logs.configure(settings.log_level)  # JSON lines from the start (uvicorn's config too)
    _wait_for_database(settings, wait)
    upgrade(settings.database_url)
    base = runtime.serving_base_url(settings, host, port)
    if load_demo and not demo_exists(settings, DEMO_OWNER_EMAIL):
        token = _play_demo(settings, 3, 7)
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

    settings = _settings(database_url)
    logs.configure(settings.log_level)  # JSON lines, secrets scrubbed
    check_key(settings.secret_key, production=settings.mode == "production")
    _wait_for_database(settings, wait)
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

    settings = _settings(database_url)
    ctx = build(settings)
    try:
        link = create_login_link(ctx, email, base_url or served_at(ctx, settings))
        sys.stdout.write(link + "\n")
    except ConnectsError as exc:
        _fail(exc)
    finally:
        ctx.db.dispose()


def main() -> None:  # pragma: no cover
    app()
