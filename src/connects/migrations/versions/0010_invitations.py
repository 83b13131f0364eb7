"""membership by consent: invitations; an e-mail address no longer unique (R49)

* ``invitations``: adding a member to an agency writes an invitation that the invited
  person accepts (the membership is written then) or declines. At most one open
  invitation per person and agency (a partial unique index).
* ``users.email`` loses its UNIQUE constraint (a plain index takes its place): sign-up
  answers the same whether or not an address is registered, so a second person may
  give an address already held; sign-in links go to its first holder. On SQLite the
  table is rebuilt (alembic's batch mode). The downgrade restores the constraint and
  fails if two people now share an address.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-10 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from connects.db.types import UTCDateTime

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

ID = sa.String(40).with_variant(sa.String(40, collation="C"), "postgresql")
ROLES = "'owner', 'admin', 'manager', 'member'"
STATUSES = "'invited', 'accepted', 'declined'"


def upgrade() -> None:
    op.create_table(
        "invitations",
        sa.Column("id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("invited_by", ID, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("answered_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint(f"role IN ({ROLES})", name=op.f("ck_invitations_role_known")),
        sa.CheckConstraint(f"status IN ({STATUSES})", name=op.f("ck_invitations_status_known")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_invitations_account_id_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_invitations_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
    )
    op.create_index(
        "uq_invitations_open",
        "invitations",
        ["account_id", "user_id"],
        unique=True,
        sqlite_where=sa.text("status = 'invited'"),
        postgresql_where=sa.text("status = 'invited'"),
    )
    op.create_index("ix_invitations_user_id", "invitations", ["user_id", "created_at"])
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_constraint(op.f("uq_users_email"), type_="unique")
    op.create_index("ix_users_email", "users", ["email", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_users_email", table_name="users")
    with op.batch_alter_table("users") as batch_op:
        batch_op.create_unique_constraint(op.f("uq_users_email"), ["email"])
    op.drop_index("ix_invitations_user_id", table_name="invitations")
    op.drop_index("uq_invitations_open", table_name="invitations")
    op.drop_table("invitations")
