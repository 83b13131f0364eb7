"""``connects demo``: play the demo story into a database (``serve --demo`` too)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from connects.bootstrap import build
from connects.cli import tables
from connects.cli.common import DbUrl, app, console, err, settings_for
from connects.config import Settings
from connects.domain.clock import SimulatedClock


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
    from connects.demo import DEMO_OWNER_EMAIL, demo_exists, demo_settings

    settings = demo_settings(settings_for(database_url))
    if reset:
        _erase_for_demo(settings)
    if demo_exists(settings, DEMO_OWNER_EMAIL):
        console.print("demo data is already there; nothing to do")
        return
    token = play_demo(settings, months, seed)
    console.print(f"demo owner: [bold]{DEMO_OWNER_EMAIL}[/bold]  token: {token}", soft_wrap=True)


def play_demo(settings: Settings, months: int, seed: int) -> str:
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
