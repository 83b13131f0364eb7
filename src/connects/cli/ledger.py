"""The commands that read or check the ledger: ``accounts``, ``history``, ``results``,
``verify``, ``run-due`` and ``db upgrade``."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Annotated

import typer

from connects.bootstrap import build
from connects.cli import tables
from connects.cli.common import DbUrl, app, console, db_app, err, fail, safe_url, settings_for
from connects.domain.errors import ConnectsError
from connects.domain.policy import OPERATOR
from connects.services.views import entries_csv


@db_app.command("upgrade")
def db_upgrade(database_url: DbUrl = None) -> None:
    """Create or migrate the schema to the latest revision."""
    from connects.db.migrate import upgrade

    settings = settings_for(database_url)
    upgrade(settings.database_url)
    console.print(f"database at [bold]{safe_url(settings.database_url)}[/bold] is up to date")


@app.command()
def accounts(
    database_url: DbUrl = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
) -> None:
    """List every account with its owner, plan and available Connects."""
    from connects.services.views import all_accounts

    rows = all_accounts(build(settings_for(database_url)))
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

    ctx = build(settings_for(database_url))
    try:
        member_id = None if member is None else views.person_id(ctx, member)
        items = views.history(
            ctx, OPERATOR, account_id, limit=limit, kind=kind, member_id=member_id
        )["items"]
    except ConnectsError as exc:
        fail(exc)
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

    ctx = build(settings_for(database_url))
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
        fail(exc)
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

    breaches = check(build(settings_for(database_url)))
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

    ctx = build(settings_for(database_url))
    done = run(ctx)
    console.print("; ".join(f"{name}: {count}" for name, count in done.items()))
