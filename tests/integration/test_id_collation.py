"""Migration 0007: ids compare byte by byte on PostgreSQL, as on SQLite and in Python;
the entries' dedupe key is unique where set and spends stay out of its index."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from connects.bootstrap import build
from connects.config import Settings
from connects.db.migrate import downgrade, upgrade
from connects.db.schema import ID, metadata
from connects.domain.commands import CreateUser, OpenAccount


def _id_columns() -> set[tuple[str, str]]:
    return {(t.name, c.name) for t in metadata.tables.values() for c in t.columns if c.type is ID}


def _collations(url: str) -> dict[tuple[str, str], str | None]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT table_name, column_name, collation_name "
                    "FROM information_schema.columns WHERE table_schema = current_schema()"
                )
            )
            return {(r.table_name, r.column_name): r.collation_name for r in rows}
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_every_id_column_is_in_byte_order_and_downgrade_restores_the_default(
    pg_url: str,
) -> None:
    upgrade(pg_url)
    found = _collations(pg_url)
    ids = _id_columns()
    assert len(ids) > 50
    assert {col: found[col] for col in ids} == dict.fromkeys(ids, "C")
    downgrade(pg_url, "0006")
    after = _collations(pg_url)
    # Tables of later revisions are gone after the downgrade.
    assert {after[col] for col in ids if col in after} == {None}
    upgrade(pg_url)


@pytest.mark.parametrize(
    "dialect", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_dedupe_key_is_unique_where_set(  # R8, R15: a grant or refund applied twice collides
    dialect: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'd.db'}"
        if dialect == "sqlite"
        else str(request.getfixturevalue("pg_url"))
    )
    ctx = build(Settings(database_url=url), migrate=True)
    owner = ctx.handle(CreateUser("Owner", "owner@dedupe.test"))
    account = ctx.handle(OpenAccount(str(owner["id"]), "freelancer", "Owner", "freelancer-basic"))
    insert = text(
        "INSERT INTO entries (id, account_id, seq, at, kind, amount, balance_after, "
        "actor_kind, dedupe_key) VALUES (:id, :account, :seq, :at, 'grant', 1, "
        ":seq, 'system', :key)"
    )
    at = datetime(2027, 1, 1)
    index = {i["name"]: i for i in inspect(ctx.db.engine).get_indexes("entries")}[
        "uq_entries_account_id_dedupe_key"
    ]
    assert index["unique"]
    assert "dedupe_key IS NOT NULL" in str(index["dialect_options"][f"{dialect}_where"])
    try:
        with ctx.db.begin() as conn:
            for seq, key in [(101, None), (102, None), (103, "grant:2027-01")]:
                conn.execute(
                    insert,
                    {"id": f"ent_{seq}", "account": account, "seq": seq, "at": at, "key": key},
                )
            with pytest.raises(IntegrityError, match=r"(?i)unique"), conn.begin_nested():
                conn.execute(
                    insert,
                    {
                        "id": "ent_104",
                        "account": account,
                        "seq": 104,
                        "at": at,
                        "key": "grant:2027-01",
                    },
                )
    finally:
        ctx.db.dispose()
