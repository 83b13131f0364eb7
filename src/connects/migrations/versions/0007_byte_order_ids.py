"""ids in byte order on PostgreSQL; dedupe keys indexed only where set

* Every id column gets the "C" collation on PostgreSQL. The database's default
  collation follows the server's locale, so ids sorted in SQL could differ from the
  same ids sorted in Python or on SQLite (which compares bytes), and every comparison
  in a key index went through the locale's strcoll: a tenth of the monthly cycle's
  time. SQLite is unchanged: it compares bytes already.
* ``uq_entries_account_id_dedupe_key`` becomes a partial unique index over entries
  that have a dedupe key. Entries without one (spends, expiry) never collide on it,
  and no longer cost an index insert each.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 01:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

# The id columns as of this revision (frozen here: later schema changes must not
# change what this migration did).
ID_COLUMNS = {
    "users": ["id"],
    "accounts": ["id", "owner_id"],
    "memberships": ["account_id", "user_id"],
    "lots": ["id", "account_id"],
    "entries": ["id", "account_id", "member_id", "proposal_id", "purchase_id", "topup_id"],
    "allocations": ["account_id", "entry_id", "lot_id"],
    "jobs": ["id", "client_id", "hired_proposal_id"],
    "proposals": ["id", "account_id", "job_id", "freelancer_id", "submitted_by", "entry_id"],
    "billing_methods": ["id", "account_id"],
    "purchases": ["id", "account_id", "billing_method_id", "topup_id"],
    "grants": ["id", "account_id", "created_by"],
    "events": ["id", "account_id"],
    "auto_topup_settings": ["account_id"],
    "topups": ["id", "account_id", "purchase_id"],
    "channels": ["id", "account_id"],
    "notification_settings": ["account_id"],
    "deliveries": ["id", "account_id", "event_id", "channel_id"],
    "delivery_attempts": ["id", "account_id", "delivery_id"],
    "login_links": ["user_id"],
    "web_sessions": ["user_id", "account_id"],
}


def _collate(collation: str) -> None:
    for table, columns in ID_COLUMNS.items():
        changes = ", ".join(
            f"ALTER COLUMN {column} TYPE varchar(40) COLLATE {collation}" for column in columns
        )
        op.execute(f"ALTER TABLE {table} {changes}")


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _collate('"C"')
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.drop_constraint("uq_entries_account_id_dedupe_key", type_="unique")
        batch_op.create_index(
            "uq_entries_account_id_dedupe_key",
            ["account_id", "dedupe_key"],
            unique=True,
            sqlite_where=sa.text("dedupe_key IS NOT NULL"),
            postgresql_where=sa.text("dedupe_key IS NOT NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.drop_index("uq_entries_account_id_dedupe_key")
        batch_op.create_unique_constraint(
            "uq_entries_account_id_dedupe_key", ["account_id", "dedupe_key"]
        )
    if op.get_bind().dialect.name == "postgresql":
        _collate("pg_catalog.default")
