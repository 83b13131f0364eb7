"""low-balance levels and their alerts, kept in the database (R45)

* ``low_balance_levels``: the levels an account is alerted at (several, e.g. 50 and
  20), copied from ``accounts.low_balance_threshold`` where it was above 0 (that column
  stays, holding the highest level, for the API's older field).
* ``balance_alerts``: a row per level the balance fell to or below and has not risen
  above since (level 0: ``balance_empty``); the primary key makes each alert once per
  crossing. Accounts already at or below a level start with its row, so the upgrade
  sends nothing for crossings that happened before it.

Revision ID: 0013
Revises: 0011
Create Date: 2026-12-20 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from connects.db.types import UTCDateTime

revision = "0013"
down_revision = "0011"
branch_labels = None
depends_on = None

ID = sa.String(40).with_variant(sa.String(40, collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "low_balance_levels",
        sa.Column("account_id", ID, nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.CheckConstraint("level > 0", name=op.f("ck_low_balance_levels_level_positive")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_low_balance_levels_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", "level", name=op.f("pk_low_balance_levels")),
    )
    op.create_table(
        "balance_alerts",
        sa.Column("account_id", ID, nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint("level >= 0", name=op.f("ck_balance_alerts_level_nonnegative")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_balance_alerts_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("account_id", "level", name=op.f("pk_balance_alerts")),
    )
    op.execute(
        "INSERT INTO low_balance_levels (account_id, level) "
        "SELECT id, low_balance_threshold FROM accounts WHERE low_balance_threshold > 0"
    )
    op.execute(
        "INSERT INTO balance_alerts (account_id, level, sent_at) "
        "SELECT l.account_id, l.level, CURRENT_TIMESTAMP FROM low_balance_levels l "
        "JOIN accounts a ON a.id = l.account_id WHERE a.balance <= l.level"
    )
    op.execute(
        "INSERT INTO balance_alerts (account_id, level, sent_at) "
        "SELECT id, 0, CURRENT_TIMESTAMP FROM accounts WHERE balance = 0"
    )


def downgrade() -> None:
    op.drop_table("balance_alerts")
    op.drop_table("low_balance_levels")
