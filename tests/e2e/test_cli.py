"""The ``connects`` command line, through Typer's test runner."""

from __future__ import annotations

import csv
import io
import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from typer.testing import CliRunner

from connects.bootstrap import build
from connects.cli import CSV_FIELDS, app
from connects.config import Settings
from connects.demo import DEMO_OWNER_EMAIL
from connects.domain.clock import SimulatedClock
from connects.domain.commands import CreateUser, OpenAccount
from connects.domain.policy import Actor
from connects.services import topups
from connects.services.accounts import person_by_email

runner = CliRunner()


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def cli(*args: str) -> object:
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_db_upgrade_creates_the_schema(url: str) -> None:
    result = runner.invoke(app, ["db", "upgrade", "--database-url", url])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output
    engine = create_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"accounts", "entries", "lots", "allocations", "proposals", "purchases"} <= tables
    again = runner.invoke(app, ["db", "upgrade", "--database-url", url])
    assert again.exit_code == 0


@pytest.fixture
def demo_db(url: str) -> str:
    result = runner.invoke(app, ["demo", "--months", "1", "--database-url", url])
    assert result.exit_code == 0, result.output
    assert "demo owner: owner@demo.connects" in " ".join(result.output.split())
    return url


def accounts_json(url: str) -> list[dict[str, object]]:
    result = runner.invoke(app, ["accounts", "--json", "--database-url", url])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert isinstance(rows, list)
    return rows


def test_demo_then_verify_and_accounts(demo_db: str) -> None:
    # R30: the demo's ledger holds
    result = runner.invoke(app, ["verify", "--database-url", demo_db])
    assert result.exit_code == 0, result.output
    assert "balance = entries = lots" in result.output
    rows = accounts_json(demo_db)
    by_name = {r["name"]: r for r in rows}
    agency = by_name["Northwind Studio"]
    assert (agency["kind"], agency["plan"], agency["owner"], agency["members"]) == (
        "agency",
        "agency-plus",
        "Olga Owner",
        5,
    )
    mia = by_name["Mia (freelance)"]
    assert (mia["kind"], mia["plan"], mia["owner"]) == (
        "freelancer",
        "freelancer-plus",
        "Mia Member",
    )
    assert all(isinstance(r["available"], int) and r["available"] >= 0 for r in rows)
    # a second demo run finds the data and changes nothing
    again = runner.invoke(app, ["demo", "--months", "1", "--database-url", demo_db])
    assert again.exit_code == 0
    assert "already there" in again.output
    assert accounts_json(demo_db) == rows


def test_history_csv(demo_db: str) -> None:
    # R30: every entry with the balance after it
    agency = next(r for r in accounts_json(demo_db) if r["kind"] == "agency")
    result = runner.invoke(
        app, ["history", str(agency["id"]), "--csv", "--limit", "1000", "--database-url", demo_db]
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == ",".join(CSV_FIELDS)
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert len(rows) >= 2
    assert rows[-1]["kind"] == "grant"  # newest first: the opening grant is last
    assert (rows[-1]["amount"], rows[-1]["balance_after"]) == ("80", "80")
    assert rows[-1]["actor"] == "system"
    # balance_after chains: each row's balance less its amount is the next row's balance
    for newer, older in itertools.pairwise(rows):
        assert int(newer["balance_after"]) - int(newer["amount"]) == int(older["balance_after"])
    assert int(rows[0]["balance_after"]) == agency["available"]
    grants = runner.invoke(
        app,
        ["history", str(agency["id"]), "--csv", "--kind", "grant", "--database-url", demo_db],
    )
    assert {r["kind"] for r in csv.DictReader(io.StringIO(grants.stdout))} == {"grant"}


def test_history_of_an_unknown_account(url: str) -> None:
    cli("db", "upgrade", "--database-url", url)
    result = runner.invoke(app, ["history", "acct_nope", "--database-url", url])
    assert result.exit_code == 2
    assert "not_found" in result.output


def test_verify_names_a_corrupted_account(demo_db: str) -> None:
    # R30: a tampered balance is found, the account named, exit code 1
    rows = accounts_json(demo_db)
    victim = next(r for r in rows if r["kind"] == "freelancer")
    engine = create_engine(demo_db)
    try:
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE accounts SET balance = balance + 7 WHERE id = :id"),
                {"id": victim["id"]},
            )
    finally:
        engine.dispose()
    result = runner.invoke(app, ["verify", "--database-url", demo_db])
    assert result.exit_code == 1
    text_out = " ".join(result.output.split())
    assert f"broken {victim['id']}" in text_out
    assert "sum of entries" in text_out
    others = [r["id"] for r in rows if r["id"] != victim["id"]]
    assert not any(str(other) in text_out for other in others)


def test_run_due(url: str) -> None:
    # R8: run-due applies the cycle that fell due while nobody ran the job
    past = datetime.now(UTC) - timedelta(days=40)
    ctx = build(Settings(database_url=url), clock=SimulatedClock(past), migrate=True)
    try:
        fay = ctx.handle(CreateUser("Fay", "fay@test.connects"))
        account = ctx.handle(OpenAccount(str(fay["id"]), "freelancer", "Fay"))
    finally:
        ctx.db.dispose()
    result = runner.invoke(app, ["run-due", "--database-url", url])
    assert result.exit_code == 0, result.output
    assert "cycles: 1; expired: 0; purchases_resumed: 0; topups: 0" in " ".join(
        result.output.split()
    )
    again = runner.invoke(app, ["run-due", "--database-url", url])
    assert "cycles: 0;" in again.output
    [row] = accounts_json(url)
    assert (row["id"], row["available"]) == (account, 20)
    assert runner.invoke(app, ["verify", "--database-url", url]).exit_code == 0


def test_demo_shows_auto_top_up_blocked_then_recovered(demo_db: str) -> None:
    """The demo sells what the product does (issue 21): auto top-up on, buying; a week
    before the end a declined card blocks it (nothing charged); the old card made the
    default again, the top-up that could not be done buys once, and it is active."""
    ctx = build(Settings(database_url=demo_db))
    agency = next(r for r in accounts_json(demo_db) if r["kind"] == "agency")
    with ctx.db.read() as conn:
        owner = Actor("user", str(person_by_email(conn, DEMO_OWNER_EMAIL)))
    items = topups.history(ctx, owner, str(agency["id"]), limit=100)["items"]
    story = [(t["status"], t["reason"], t["charged"]) for t in items]
    declined = story.index(("failed", "payment_declined", 0))
    assert declined >= 1 and story[declined - 1][0] == "succeeded"  # the retry, after it
    assert story.count(("failed", "payment_declined", 0)) == 1
    status = topups.get_settings(ctx, owner, str(agency["id"]))
    assert (status["enabled"], status["status"], status["threshold"]) == (True, "active", 15)
    assert status["card"]["last4"] == "4242"
    ctx.db.dispose()


def test_demo_shows_what_the_product_does(demo_db: str) -> None:
    """Issue 24: a year of quiet cycles (grants, forfeits above the cap), then the story:
    boosted proposals captured, views, interviews (rewarded: the demo's plans, R16),
    hires; year-old lots expire; it ends in the middle of a cycle, not on its eve."""
    engine = create_engine(demo_db)
    with engine.connect() as conn:
        kinds = dict(conn.execute(text("SELECT kind, count(*) FROM entries GROUP BY kind")).all())
        outcomes = {k for (k,) in conn.execute(text("SELECT DISTINCT kind FROM proposal_outcomes"))}
        captured = conn.execute(
            text("SELECT count(*) FROM holds WHERE status = 'captured'")
        ).scalar_one()
        hired = conn.execute(
            text("SELECT count(*) FROM proposals WHERE status = 'hired'")
        ).scalar_one()
        next_cycle = conn.execute(text("SELECT min(next_cycle_at) FROM accounts")).scalar()
    engine.dispose()
    story = ("grant", "spend", "purchase", "rollover_forfeit", "expire", "hold", "capture")
    for kind in (*story, "reward"):
        assert kinds.get(kind, 0) > 0, (kind, kinds)
    assert {"viewed", "interviewed"} <= outcomes
    assert captured > 0 and hired > 0
    nxt = datetime.fromisoformat(str(next_cycle)).replace(tzinfo=UTC)
    assert nxt - datetime.now(UTC) > timedelta(days=5)  # mid-cycle


def test_demo_reset_plays_it_anew(demo_db: str) -> None:
    before = {r["name"]: r["id"] for r in accounts_json(demo_db)}
    again = runner.invoke(app, ["demo", "--months", "1", "--reset", "--database-url", demo_db])
    assert again.exit_code == 0, again.output
    assert "playing the demo anew" in again.output
    after = {r["name"]: r["id"] for r in accounts_json(demo_db)}
    assert set(after) == set(before) and set(after.values()).isdisjoint(before.values())
    assert runner.invoke(app, ["verify", "--database-url", demo_db]).exit_code == 0
