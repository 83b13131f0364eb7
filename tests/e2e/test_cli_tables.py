"""The command line's tables (issue 24): whole ids when piped or with ``--json``,
``--member`` by e-mail or id (an unknown one refused), names beside ids, numbers grouped.

Typer's runner captures standard output: it is not a terminal, as in ``| grep``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from connects.bootstrap import build
from connects.cli import app
from connects.config import Settings
from connects.domain.commands import (
    BuyConnects,
    CreateUser,
    CreditEarnings,
    EndJob,
    OpenAccount,
    PostJob,
    StartInterview,
    SubmitProposal,
)
from connects.domain.policy import Actor
from tests.world import add_member

runner = CliRunner()


@dataclass
class Cast:
    url: str
    agency: str
    owner: str
    mia: str


@pytest.fixture
def cast(tmp_path: Path) -> Iterator[Cast]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    ctx = build(Settings(database_url=url), migrate=True)
    owner = str(ctx.handle(CreateUser("Olga Owner", "olga@cli.test"))["id"])
    mia = str(ctx.handle(CreateUser("Mia Member", "mia@cli.test"))["id"])
    client = str(ctx.handle(CreateUser("Chloe Client", "chloe@cli.test"))["id"])
    agency = ctx.handle(OpenAccount(owner, "agency", "Northwind Studio", "agency-plus"))
    add_member(ctx, Actor("user", owner), agency, mia, "member")
    ctx.handle(CreditEarnings(agency, 10_000_000))
    ctx.handle(BuyConnects(Actor("user", owner), agency, 1_200, "earnings"))
    job = ctx.handle(PostJob(client, "Review an API", 6))
    ctx.handle(SubmitProposal(Actor("user", mia), job, agency, mia, 6))
    ctx.db.dispose()
    yield Cast(url, agency, owner, mia)


def cli(cast: Cast, *args: str) -> object:
    return runner.invoke(app, [*args, "--database-url", cast.url], catch_exceptions=False)


def test_piped_tables_show_whole_ids_and_grouped_numbers(cast: Cast) -> None:
    result = cli(cast, "accounts")
    assert result.exit_code == 0  # type: ignore[attr-defined]
    out = result.stdout  # type: ignore[attr-defined]
    assert cast.agency in out and "…" not in out
    assert "1,274" in out  # 80 granted + 1,200 bought - 6 spent


def test_history_names_who_did_what_and_groups_numbers(cast: Cast) -> None:
    out = cli(cast, "history", cast.agency).stdout  # type: ignore[attr-defined]
    assert "user:" not in out and "…" not in out
    lines = out.splitlines()
    purchase = next(line for line in lines if " purchase " in line)
    assert "+1,200" in purchase and "1,280" in purchase and "Olga Owner" in purchase
    spend = next(line for line in lines if " spend " in line)
    assert "Mia Member" in spend and "-6" in spend and "1,274" in spend


def test_member_by_email_or_id(cast: Cast) -> None:
    by_email = cli(cast, "history", cast.agency, "--member", "MIA@cli.test", "--json")
    by_id = cli(cast, "history", cast.agency, "--member", cast.mia, "--json")
    rows = json.loads(by_email.stdout)  # type: ignore[attr-defined]
    assert rows == json.loads(by_id.stdout)  # type: ignore[attr-defined]
    assert [(r["kind"], r["member_id"], r["member_name"]) for r in rows] == [
        ("spend", cast.mia, "Mia Member")
    ]
    assert rows[0]["actor"] == f"user:{cast.mia}" and rows[0]["actor_name"] == "Mia Member"


@pytest.mark.parametrize("who", ["nobody@cli.test", "usr_nobody"])
def test_an_unknown_member_is_refused(cast: Cast, who: str) -> None:
    result = cli(cast, "history", cast.agency, "--member", who)
    assert result.exit_code == 2  # type: ignore[attr-defined]
    said = " ".join(result.stderr.split())  # type: ignore[attr-defined]
    assert said.startswith("not_found: no person has the") and who in said
    assert result.stdout == ""  # type: ignore[attr-defined]


def test_history_json_has_whole_ids(cast: Cast) -> None:
    rows = json.loads(cli(cast, "history", cast.agency, "--json").stdout)  # type: ignore[attr-defined]
    assert {r["actor_name"] for r in rows} == {"system", "Olga Owner", "Mia Member"}


def test_results_by_member_with_names_and_money_at_cost(cast: Cast) -> None:
    # R39: 74 granted Connects at 0 and 6 bought at $1.00 pay for an 80-Connect
    # proposal that is hired: $6.00 per hire; with the 6 of the first proposal, 86 spent
    ctx = build(Settings(database_url=cast.url))
    client = str(ctx.handle(CreateUser("Hana Hirer", "hana@cli.test"))["id"])
    job = ctx.handle(PostJob(client, "Build it", 80))
    proposal = ctx.handle(SubmitProposal(Actor("user", cast.mia), job, cast.agency, cast.mia, 80))
    ctx.handle(StartInterview(client, proposal["id"]))
    ctx.handle(EndJob(Actor("user", client), job, "closed", hired_proposal_id=proposal["id"]))
    ctx.db.dispose()
    result = cli(cast, "results", cast.agency)
    assert result.exit_code == 0  # type: ignore[attr-defined]
    lines = result.stdout.splitlines()  # type: ignore[attr-defined]
    mia = next(line for line in lines if "Mia Member" in line)
    assert cast.mia in mia and "…" not in mia
    for cell in ("86", "86.00", "6.00 USD"):  # 2 sent, 1 interview, 1 hire
        assert cell in mia, (cell, mia)
    total = next(line for line in lines if "total" in line)
    assert "6.00 USD" in total
    as_csv = cli(cast, "results", cast.agency, "--group-by", "boost", "--csv")
    assert as_csv.stdout.splitlines()[1:] == [  # type: ignore[attr-defined]
        "not_boosted,2,86,0,1,1,1,86.0,86.0,600,USD",
        "total,2,86,0,1,1,1,86.0,86.0,600,USD",
    ]
    bad = runner.invoke(app, ["results", cast.agency, "--from", "soon", "--database-url", cast.url])
    assert bad.exit_code == 2 and "not a date" in bad.output
    wrong = cli(cast, "results", cast.agency, "--group-by", "planet")
    assert wrong.exit_code == 2  # type: ignore[attr-defined]
