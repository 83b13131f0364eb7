"""Migration 0008 renames the cycle dedupe keys written before cycles were named by
billing month, on SQLite and PostgreSQL (R8)."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import create_engine, insert, select
from sqlalchemy.exc import IntegrityError

from connects.db.migrate import MIGRATIONS, alembic_config
from connects.db.schema import accounts, entries, users

AT = datetime(2027, 3, 20, tzinfo=UTC)


def _batch() -> int:
    """Migration 0008's batch size, so the test straddles a batch boundary."""
    path = MIGRATIONS / "versions" / "0008_vocabulary_checks.py"
    spec = importlib.util.spec_from_file_location("m0008", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return int(module.BATCH)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'k.db'}"
    return str(request.getfixturevalue("pg_url"))


def _account(i: str, timezone: str, anchor_day: int) -> tuple[dict[str, Any], dict[str, Any]]:
    user = {"id": f"usr_{i}", "name": i, "email": f"{i}@keys.test", "created_at": AT}
    account = {
        "id": f"acc_{i}",
        "kind": "freelancer",
        "name": i,
        "owner_id": f"usr_{i}",
        "plan": "freelancer-basic",
        "timezone": timezone,
        "anchor_day": anchor_day,
        "next_cycle_at": AT,
        "created_at": AT,
    }
    return user, account


def _entry(account: str, seq: int, kind: str, key: str | None) -> dict[str, Any]:
    return {
        "id": f"ent_{account}_{seq}",
        "account_id": f"acc_{account}",
        "seq": seq,
        "at": AT,
        "kind": kind,
        "amount": 1,
        "balance_after": seq,
        "actor_kind": "system",
        "dedupe_key": key,
    }


# Tokyo, anchor day 15: each cycle starts at 15:00 UTC on the 14th.
TOKYO = [
    _entry("tokyo", 1, "grant", "grant:2027-01-14T15:00"),
    _entry("tokyo", 2, "rollover_forfeit", "forfeit:2027-02-14T15:00"),
    _entry("tokyo", 3, "grant", "grant:2027-02-14T15:00"),
    # The old bug: the February cycle again, at midnight New York (the former zone).
    _entry("tokyo", 4, "grant", "grant:2027-02-15T05:00"),
    _entry("tokyo", 5, "spend", None),
    _entry("tokyo", 6, "refund", "refund:prp_1"),
    # Written by the current code, then an old key naming the same cycle.
    _entry("tokyo", 7, "grant", "grant:2027-03"),
    _entry("tokyo", 8, "grant", "grant:2027-03-14T15:00"),
]
# Auckland, anchor day 1: March's cycle starts on February 28th in UTC.
AUCKLAND = [
    _entry("auckland", 1, "grant", "grant:2027-02-28T11:00"),
    _entry("auckland", 2, "rollover_forfeit", "forfeit:2027-02-28T11:00"),
]
# UTC, anchor day 31: February's cycle day is clamped to the 28th.
CLAMPED = [_entry("clamped", 1, "grant", "grant:2027-02-28T00:00")]

EXPECTED = {
    "ent_tokyo_1": "grant:2027-01",
    "ent_tokyo_2": "forfeit:2027-02",
    "ent_tokyo_3": "grant:2027-02",
    "ent_tokyo_4": "grant:2027-02-15T05:00",  # a duplicate keeps its old key
    "ent_tokyo_5": None,
    "ent_tokyo_6": "refund:prp_1",
    "ent_tokyo_7": "grant:2027-03",
    "ent_tokyo_8": "grant:2027-03-14T15:00",  # its new name was taken
    "ent_auckland_1": "grant:2027-03",
    "ent_auckland_2": "forfeit:2027-03",
    "ent_clamped_1": "grant:2027-02",
}


def test_old_cycle_keys_are_renamed_by_billing_month(url: str) -> None:
    # R8: one grant and one forfeit per billing month, old cycles included.
    cfg = alembic_config(url)
    command.upgrade(cfg, "0007")
    # Accounts sorting before Tokyo's ("acc_a0...", then Auckland's and the clamped one)
    # fill the first batch up to Tokyo's third entry: its duplicate opens the next one.
    filler = [f"a{n:05d}" for n in range(_batch() - len(AUCKLAND) - len(CLAMPED) - 3)]
    made = [_account(i, "UTC", 1) for i in filler]
    made += [
        _account("tokyo", "Asia/Tokyo", 15),
        _account("auckland", "Pacific/Auckland", 1),
        _account("clamped", "UTC", 31),
    ]
    rows = [_entry(i, 1, "grant", "grant:2027-01-01T00:00") for i in filler]
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(insert(users), [user for user, _ in made])
            conn.execute(insert(accounts), [account for _, account in made])
            conn.execute(insert(entries), rows + TOKYO + AUCKLAND + CLAMPED)
        command.upgrade(cfg, "head")
        with engine.connect() as conn:
            keys = {
                r.id: r.dedupe_key for r in conn.execute(select(entries.c.id, entries.c.dedupe_key))
            }
        assert {k: keys[k] for k in EXPECTED} == EXPECTED
        assert {keys[f"ent_{i}_1"] for i in filler} == {"grant:2027-01"}
        # The renamed key now refuses the old cycle's grant a second time.
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(insert(entries), _entry("auckland", 3, "grant", "grant:2027-03"))
    finally:
        engine.dispose()
