"""Every kind and status column of a migrated database holds only the vocabulary's
words (R30): the database refuses any other word, takes every one of them, and its
CHECK lists exactly the enum's words, so a new enum member without a migration of its
CHECK fails here."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Table, create_engine, insert, text, update
from sqlalchemy.exc import IntegrityError

from connects.db.migrate import upgrade
from connects.db.schema import (
    accounts,
    auto_topup_settings,
    channels,
    deliveries,
    entries,
    events,
    holds,
    jobs,
    lots,
    memberships,
    metadata,
    proposal_outcomes,
    proposals,
    purchases,
    topups,
    users,
)
from connects.domain.policy import Role
from connects.domain.topup import MODES
from connects.domain.vocabulary import (
    AccountKind,
    ActorKind,
    ChannelKind,
    DeliveryStatus,
    EntryKind,
    EventType,
    HoldStatus,
    JobStatus,
    LotSource,
    OutcomeKind,
    ProposalStatus,
    PurchaseStatus,
    TopUpStatus,
    TopUpTrigger,
)
from connects.services.context import Context

# (table, column) -> the words it may hold; its CHECK is ck_<table>_<column>_known.
VOCABULARY: dict[tuple[Table, str], Iterable[str]] = {
    (accounts, "kind"): AccountKind,
    (memberships, "role"): Role,
    (lots, "source"): LotSource,
    (entries, "kind"): EntryKind,
    (entries, "actor_kind"): ActorKind,
    (jobs, "status"): JobStatus,
    (proposals, "status"): ProposalStatus,
    (purchases, "status"): PurchaseStatus,
    (purchases, "actor_kind"): ActorKind,
    (topups, "status"): TopUpStatus,
    (topups, "trigger"): TopUpTrigger,
    (events, "kind"): EventType,
    (channels, "kind"): ChannelKind,
    (deliveries, "status"): DeliveryStatus,
    (auto_topup_settings, "mode"): MODES,
    (holds, "status"): HoldStatus,  # R34
    (proposal_outcomes, "kind"): OutcomeKind,  # R38
}


def _words(values: Iterable[str]) -> list[str]:
    return [str(v) for v in values]


def _check_sql(conn: Connection, table: str, name: str) -> str:
    """The migrated database's own text of the CHECK ``name`` on ``table``."""
    if conn.dialect.name == "postgresql":
        return str(
            conn.execute(
                text(
                    "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c "
                    "WHERE c.conname = :name AND c.conrelid = CAST(:table AS regclass)"
                ),
                {"name": name, "table": table},
            ).scalar_one()
        )
    sql = str(
        conn.execute(
            text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :table"),
            {"table": table},
        ).scalar_one()
    )
    found = re.search(rf"CONSTRAINT {name} CHECK \((.*?)\)(?:,\s*$|\s*$)", sql, re.M)
    assert found, f"{table} has no CHECK {name}: {sql}"
    return found.group(1)


def test_each_check_of_the_migrated_database_lists_the_enum(any_ctx: Context) -> None:
    # R30: the words the database allows are the vocabulary's, no more, no fewer.
    with any_ctx.db.engine.connect() as conn:
        for (table, column), enum in VOCABULARY.items():
            name = f"ck_{table.name}_{column}_known"
            allowed = re.findall(r"'([^']*)'", _check_sql(conn, table.name, name))
            assert sorted(allowed) == sorted(_words(enum)), (table.name, column)


def _rows(ctx: Context) -> dict[Table, dict[str, Any]]:
    """One row in each table with a vocabulary column, in foreign-key order."""
    now = ctx.now()
    later = now + timedelta(days=365)
    account = {"account_id": "acc_v"}
    return {
        users: {"id": "usr_v", "name": "V", "email": "v@vocabulary.test", "created_at": now},
        accounts: {
            "id": "acc_v",
            "kind": "freelancer",
            "name": "V",
            "owner_id": "usr_v",
            "plan": "freelancer-basic",
            "anchor_day": 15,
            "next_cycle_at": now,
            "created_at": now,
        },
        memberships: {**account, "user_id": "usr_v", "role": "owner", "created_at": now},
        lots: {
            **account,
            "id": "lot_v",
            "source": "grant",
            "issued_at": now,
            "expires_at": later,
            "amount": 5,
            "remaining": 5,
        },
        entries: {
            **account,
            "id": "ent_v",
            "seq": 1,
            "at": now,
            "kind": "grant",
            "amount": 5,
            "balance_after": 5,
            "actor_kind": "system",
        },
        jobs: {
            "id": "job_v",
            "client_id": "usr_v",
            "title": "V",
            "connects_required": 2,
            "status": "open",
            "created_at": now,
            "updated_at": now,
        },
        proposals: {
            **account,
            "id": "prp_v",
            "job_id": "job_v",
            "freelancer_id": "usr_v",
            "submitted_by": "usr_v",
            "connects_spent": 2,
            "status": "active",
            "created_at": now,
            "updated_at": now,
            "sent_month": "2026-01",
        },
        holds: {
            **account,
            "id": "hld_v",
            "amount": 3,
            "status": "held",
            "reason": "boost",
            "bid_at": now,
            "created_at": now,
        },
        proposal_outcomes: {
            **account,
            "proposal_id": "prp_v",
            "kind": "viewed",
            "at": now,
        },
        purchases: {
            **account,
            "id": "pur_v",
            "quantity": 10,
            "amount_cents": 150,
            "currency": "USD",
            "pay_with": "card",
            "status": "pending",
            "actor_kind": "user",
            "created_at": now,
        },
        topups: {
            **account,
            "id": "top_v",
            "trigger": "threshold",
            "trigger_key": "k",
            "month": "2026-01",
            "quantity": 10,
            "amount_cents": 150,
            "currency": "USD",
            "status": "pending",
            "created_at": now,
        },
        events: {
            **account,
            "id": "evt_v",
            "kind": "balance_low",
            "payload": "{}",
            "created_at": now,
        },
        channels: {
            **account,
            "id": "chn_v",
            "kind": "webhook",
            "target_hint": "https://…",
            "created_at": now,
        },
        deliveries: {
            **account,
            "id": "dlv_v",
            "event_id": "evt_v",
            "channel_id": "chn_v",
            "event_kind": "balance_low",
            "status": "pending",
            "next_attempt_at": now,
            "created_at": now,
        },
        auto_topup_settings: {
            **account,
            "enabled": True,
            "per_topup": 10,
            "per_month": 50,
            "threshold": 5,
            "just_in_time": False,
            "mode": "fixed",
            "updated_at": now,
        },
    }


def test_the_database_refuses_other_words_and_takes_every_word(any_ctx: Context) -> None:
    # R30: a kind or status outside the vocabulary never reaches the ledger.
    rows = _rows(any_ctx)
    with any_ctx.db.begin() as conn:
        for table, row in rows.items():
            conn.execute(insert(table), row)
    with any_ctx.db.begin() as conn:
        for (table, column), enum in VOCABULARY.items():
            row = dict(rows[table])
            for word in _words(enum):
                key = [table.c[c.name] == row[c.name] for c in table.primary_key]
                conn.execute(update(table).where(*key).values({column: word}))
                row[column] = word  # the column may be part of the key (an outcome's kind)
            key = [table.c[c.name] == row[c.name] for c in table.primary_key]
            with pytest.raises(IntegrityError), conn.begin_nested():
                conn.execute(update(table).where(*key).values({column: "not_a_word"}))
            with pytest.raises(IntegrityError), conn.begin_nested():
                conn.execute(update(table).where(*key).values({column: ""}))


def _sqlite_schema(path: Path) -> dict[str, set[str] | str]:
    """Each table as the set of its column and constraint lines, each index as its SQL:
    the order a table rebuild leaves them in does not matter."""
    found: dict[str, set[str] | str] = {}
    with sqlite3.connect(path) as conn:
        for kind, name, sql in conn.execute(
            "SELECT type, name, sql FROM sqlite_master "
            "WHERE sql IS NOT NULL AND name <> 'alembic_version'"
        ):
            if kind == "table":
                body = sql[sql.index("(") + 1 : sql.rindex(")")]
                found[name] = {part.strip() for part in re.split(r",\s*(?=\n|\w+ [A-Z])", body)}
            else:
                found[name] = sql
    return found


def test_sqlite_rebuilt_tables_keep_their_indexes_and_constraints(tmp_path: Path) -> None:
    # R30: the migrated SQLite database is the metadata's, partial indexes included.
    upgrade(f"sqlite:///{tmp_path / 'migrated.db'}")
    engine = create_engine(f"sqlite:///{tmp_path / 'created.db'}")
    metadata.create_all(engine)
    engine.dispose()
    assert _sqlite_schema(tmp_path / "migrated.db") == _sqlite_schema(tmp_path / "created.db")
