"""What every ``connects`` command shares: the Typer apps, the consoles, the
``--database-url`` and ``--wait`` options, the exit codes, and how a refusal is shown."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from connects.config import Settings
from connects.domain.errors import ConnectsError

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


def settings_for(database_url: str | None) -> Settings:
    return Settings(database_url=database_url) if database_url else Settings()


def wait_for_database(settings: Settings, wait: float | None) -> None:
    """Start-up of ``serve`` and ``worker``, before the engine is first used: wait for a
    database that is (re)starting, logging each retry; exit 3 if it never answers."""
    from connects.db.wait import DatabaseUnavailable, wait_for_database

    timeout = settings.db_startup_timeout if wait is None else wait
    try:
        wait_for_database(settings.database_url, timeout)
    except DatabaseUnavailable as exc:
        sys.stderr.write(f"connects: {exc}\n")
        raise typer.Exit(EXIT_NO_DATABASE) from None


def fail(exc: ConnectsError) -> None:
    err.print(f"[red]{exc.code}[/red]: {exc.message}")
    raise typer.Exit(2)


def safe_url(url: str) -> str:
    """A database URL with any password hidden."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}"
    return url
