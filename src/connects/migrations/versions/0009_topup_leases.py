"""top-ups are claimed under a lease instead of a row lock held while they run

``topups.claimed_by`` and ``topups.claimed_until`` (both nullable): an executor takes a
pending top-up by setting them in a transaction of its own and commits at once, then
buys with no transaction open, so it never holds one pooled connection while the
purchase and the gateway check out others. Rows written before have no claim, so any
executor may take them.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-10 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import connects.db.types

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("topups", sa.Column("claimed_by", sa.String(40), nullable=True))
    op.add_column(
        "topups", sa.Column("claimed_until", connects.db.types.UTCDateTime(), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("topups") as batch_op:
        batch_op.drop_column("claimed_until")
        batch_op.drop_column("claimed_by")
