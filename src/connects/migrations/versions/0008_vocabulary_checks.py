"""kinds and statuses checked by the database; cycle dedupe keys named by billing month

* Every kind, source, actor and status column that had no CHECK gets one listing the
  words of the vocabulary (``connects.domain.vocabulary``) as of this revision: a word
  the code does not know is refused by the database (R30). The words are written out
  here, frozen: a later change of an enum needs its own migration. On PostgreSQL each
  constraint is added ``NOT VALID`` outside a transaction, which holds the table's
  lock only for the catalog change, and then validated, which reads the table under a
  lock that lets reads and writes go on. SQLite cannot add a constraint, so each table
  is rebuilt (alembic's batch mode), keeping its indexes, partial ones included, and
  its other constraints.
* The grant and forfeit entries written before cycles were named by billing month
  carry ``grant:YYYY-MM-DDTHH:MM`` / ``forfeit:YYYY-MM-DDTHH:MM`` (the cycle's UTC
  instant). They are renamed ``grant:YYYY-MM`` / ``forfeit:YYYY-MM`` as
  ``connects.domain.calendar.cycle_key`` names the cycle (the billing month whose
  cycle day, in the account's zone, is nearest the instant), so the unique dedupe key
  refuses a second application of an old cycle too (R8). Where two entries of one
  account come to the same name (a grant applied twice after a zone change, the bug
  the new names fix), the first (lowest ``seq``) takes the new name and the later one
  keeps its old key, so the unique index holds; so does an old key whose new name an
  entry already carries. The downgrade drops the constraints and leaves the keys.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 10:00:00
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from connects.domain.calendar import cycle_key, zone

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# The new CHECKs, by table: name -> (column, allowed words), as of this revision.
ACTORS = ("user", "business_manager", "system", "operator")
CHECKS: dict[str, dict[str, tuple[str, tuple[str, ...]]]] = {
    "lots": {"ck_lots_source_known": ("source", ("grant", "purchase", "reward"))},
    "entries": {
        "ck_entries_kind_known": (
            "kind",
            ("grant", "purchase", "spend", "refund", "reward", "expire", "rollover_forfeit"),
        ),
        "ck_entries_actor_kind_known": ("actor_kind", ACTORS),
    },
    "events": {
        "ck_events_kind_known": (
            "kind",
            (
                "balance_low",
                "balance_empty",
                "topup_succeeded",
                "topup_failed",
                "monthly_limit_reached",
                "connects_refunded",
                "connects_purchased",
                "connects_expiring",
            ),
        )
    },
    "jobs": {
        "ck_jobs_status_known": (
            "status",
            ("open", "filled", "closed", "cancelled", "removed", "expired"),
        )
    },
    "proposals": {
        "ck_proposals_status_known": (
            "status",
            ("active", "interviewing", "withdrawn", "refunded", "hired"),
        )
    },
    "purchases": {
        "ck_purchases_status_known": ("status", ("pending", "succeeded", "failed")),
        "ck_purchases_actor_kind_known": ("actor_kind", ACTORS),
    },
    "topups": {
        "ck_topups_status_known": ("status", ("pending", "succeeded", "failed", "skipped")),
        "ck_topups_trigger_known": ("trigger", ("balance_zero", "threshold", "just_in_time")),
    },
}

# Entries read and renamed per statement while rewriting the cycle keys.
BATCH = 2000
OLD_CYCLE_KEY = re.compile(r"(grant|forfeit):(\d{4}-\d{2}-\d{2}T\d{2}:\d{2})")

_OLD_KEYS = sa.text(
    """
    SELECT e.id, e.account_id, e.seq, e.dedupe_key, a.anchor_day, a.timezone
    FROM entries e JOIN accounts a ON a.id = e.account_id
    WHERE (e.account_id, e.seq) > (:account_id, :seq)
      AND (e.dedupe_key LIKE 'grant:____-__-__T__:__'
           OR e.dedupe_key LIKE 'forfeit:____-__-__T__:__')
    ORDER BY e.account_id, e.seq
    LIMIT :n
    """
)
_TAKEN = sa.text(
    "SELECT account_id, dedupe_key FROM entries "
    "WHERE account_id IN :accounts AND dedupe_key IN :keys"
).bindparams(sa.bindparam("accounts", expanding=True), sa.bindparam("keys", expanding=True))
_RENAME = sa.text("UPDATE entries SET dedupe_key = :key WHERE id = :id")


def _condition(column: str, words: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{w}'" for w in words)
    return f"{column} IN ({quoted})"


def _new_key(row: Any) -> str | None:
    """The billing-month name of an old instant-named cycle key, or None."""
    match = OLD_CYCLE_KEY.fullmatch(row.dedupe_key)
    if match is None:
        return None
    prefix, instant = match.groups()
    cycle_at = datetime.strptime(instant, "%Y-%m-%dT%H:%M").replace(tzinfo=UTC)
    return f"{prefix}:{cycle_key(row.anchor_day, cycle_at, zone(row.timezone))}"


def _rename_cycle_keys(conn: sa.Connection) -> None:
    after: tuple[str, int] = ("", -1)
    while True:
        rows = conn.execute(_OLD_KEYS, {"account_id": after[0], "seq": after[1], "n": BATCH}).all()
        if not rows:
            return
        after = (rows[-1].account_id, rows[-1].seq)
        wanted = [(row, key) for row in rows if (key := _new_key(row)) is not None]
        if not wanted:
            continue
        taken = {
            (r.account_id, r.dedupe_key)
            for r in conn.execute(
                _TAKEN,
                {
                    "accounts": sorted({row.account_id for row, _ in wanted}),
                    "keys": sorted({key for _, key in wanted}),
                },
            )
        }
        renames = []
        for row, key in wanted:  # in (account, seq) order: the first entry wins
            if (row.account_id, key) not in taken:
                taken.add((row.account_id, key))
                renames.append({"id": row.id, "key": key})
        if renames:
            conn.execute(_RENAME, renames)


def upgrade() -> None:
    _rename_cycle_keys(op.get_bind())
    if op.get_bind().dialect.name == "postgresql":
        with op.get_context().autocommit_block():
            for table, checks in CHECKS.items():
                for name, (column, words) in checks.items():
                    # DROP IF EXISTS: a run stopped half-way can be run again.
                    op.execute(
                        f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {name}, "
                        f"ADD CONSTRAINT {name} CHECK ({_condition(column, words)}) NOT VALID"
                    )
            for table, checks in CHECKS.items():
                for name in checks:
                    op.execute(f"ALTER TABLE {table} VALIDATE CONSTRAINT {name}")
        return
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table, recreate="always") as batch_op:
            for name, (column, words) in checks.items():
                batch_op.create_check_constraint(op.f(name), _condition(column, words))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, checks in CHECKS.items():
            for name in checks:
                op.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        return
    for table, checks in CHECKS.items():
        with op.batch_alter_table(table, recreate="always") as batch_op:
            for name in checks:
                batch_op.drop_constraint(op.f(name), type_="check")
