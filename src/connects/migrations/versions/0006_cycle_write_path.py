"""the monthly cycle's write path: lighter entry indexes, allocations keyed by account

* ``ix_entries_account_member_at`` only holds entries made by a member (``member_id``
  set): system entries (grants, forfeits, expiry) are never looked up by member, so
  writing them into that index was pure cost.
* ``ix_entries_account_refunds``: the refunds of an account, which every rollover
  looks up (R9, R15), without reading all of the account's entries.
* ``allocations`` loses its foreign keys to ``entries`` and ``lots``: they were keyed
  on the entry and lot id alone, which a database sharded by account cannot enforce
  across shards, and each cost an index probe per row on the busiest insert path.
  ``connects verify`` checks the stronger rule instead: every allocation names an
  entry and a lot of its own account.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.drop_index("ix_entries_account_member_at")
        batch_op.create_index(
            "ix_entries_account_member_at",
            ["account_id", "member_id", "at"],
            unique=False,
            sqlite_where=sa.text("member_id IS NOT NULL"),
            postgresql_where=sa.text("member_id IS NOT NULL"),
        )
        batch_op.create_index(
            "ix_entries_account_refunds",
            ["account_id"],
            unique=False,
            sqlite_where=sa.text("kind = 'refund'"),
            postgresql_where=sa.text("kind = 'refund'"),
        )
    with op.batch_alter_table("allocations", schema=None) as batch_op:
        batch_op.drop_constraint("fk_allocations_entry_id_entries", type_="foreignkey")
        batch_op.drop_constraint("fk_allocations_lot_id_lots", type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("allocations", schema=None) as batch_op:
        batch_op.create_foreign_key("fk_allocations_lot_id_lots", "lots", ["lot_id"], ["id"])
        batch_op.create_foreign_key(
            "fk_allocations_entry_id_entries", "entries", ["entry_id"], ["id"]
        )
    with op.batch_alter_table("entries", schema=None) as batch_op:
        batch_op.drop_index("ix_entries_account_refunds")
        batch_op.drop_index("ix_entries_account_member_at")
        batch_op.create_index(
            "ix_entries_account_member_at", ["account_id", "member_id", "at"], unique=False
        )
